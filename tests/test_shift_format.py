"""Format-constraint probes: the automatic checks, the data files they check, and the CLI (no model loaded)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DATA = ROOT / "assets" / "instruct_data"


@pytest.mark.parametrize("answer, check, ok", [
    ("THE SKY IS BLUE.", {"kind": "upper"}, True),
    ("The sky is blue.", {"kind": "upper"}, False),
    ("42", {"kind": "upper"}, False),  # no letters: nothing was capitalised
    ("the sky is blue.", {"kind": "lower"}, True),
    ("the Sky is blue.", {"kind": "lower"}, False),
    ("Red\nBlue\nGreen", {"kind": "lines", "n": 3}, True),
    ("Red\n\nBlue\nGreen\n", {"kind": "lines", "n": 3}, True),  # blank lines do not count
    ("Red, blue, green", {"kind": "lines", "n": 3}, False),
    ("- Red\n- Blue\n- Green", {"kind": "lines", "n": 3}, False),  # bullets are not plain lines
    ("1. Red\n2. Blue\n3. Green", {"kind": "lines", "n": 3}, False),
    ("- Red\n- Blue\n- Green", {"kind": "bullets", "n": 3}, True),
    ("- Red\n- Blue", {"kind": "bullets", "n": 3}, False),
    ("* Red\n* Blue\n* Green", {"kind": "bullets", "n": 3}, False),
    ("Reply: Lisbon.", {"kind": "starts", "prefix": "Reply:"}, True),
    ("Reply:", {"kind": "starts", "prefix": "Reply:"}, False),  # nothing after the prefix
    ("The answer. Reply: Lisbon", {"kind": "starts", "prefix": "Reply:"}, False),
    ("A cat has four legs.", {"kind": "max_words", "n": 5}, True),
    ("A cat has got four legs.", {"kind": "max_words", "n": 5}, False),
    ("  Meet me by the fountain   at noon. ", {"kind": "repeat", "text": "Meet me by the fountain at noon."}, True),
    ("Meet me by the fountain at noon", {"kind": "repeat", "text": "Meet me by the fountain at noon."}, False),
    ("", {"kind": "max_words", "n": 5}, False),
])
def test_check_answer(answer, check, ok):
    from workbench.shift.format_probes import check_answer

    assert check_answer(answer, check) is ok


def test_unknown_check_kind_is_named():
    from workbench.shift.format_probes import check_answer

    with pytest.raises(ValueError, match="check kind must be one of upper, lower"):
        check_answer("x", {"kind": "json"})


def test_data_files_pass_their_own_checks_and_probes_are_held_out():
    from workbench.shift.format_probes import KINDS, check_answer, load_probes

    train = [json.loads(line) for line in (DATA / "format_train.jsonl").read_text().splitlines()]
    probes = load_probes()
    assert len(train) >= 300 and len(probes) == 70
    for item in train + probes:
        assert check_answer(item["response"], item["check"]), item["id"]
    for kind in KINDS:
        assert sum(p["check"]["kind"] == kind for p in probes) == 10
    seen = {(t["instruction"], t["input"]) for t in train}
    assert not [p["id"] for p in probes if (p["instruction"], p["input"]) in seen]
    out = subprocess.run([sys.executable, str(DATA / "check_data.py")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "FORMAT TOTAL         315      70" in out.stdout


def test_build_is_reproducible(tmp_path):
    """The script rebuilds the shipped files byte for byte."""
    import shutil

    for name in ("build_format_data.py",):
        shutil.copy(DATA / name, tmp_path / name)
    subprocess.run([sys.executable, str(tmp_path / "build_format_data.py")], check=True, capture_output=True)
    for name in ("format_train.jsonl", "format_probes.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_run_probes_and_table_with_a_scripted_backend():
    from backends.base import Generation
    from workbench.shift.format_probes import run_probes, table

    probes = [
        {"id": "p1", "instruction": "Say it loud.", "input": "", "check": {"kind": "upper"}},
        {"id": "p2", "instruction": "Repeat exactly: hi there", "input": "", "check": {"kind": "repeat", "text": "hi there"}},
    ]

    class Scripted:
        def __init__(self):
            self.seen = []

        def generate(self, convs, settings):
            self.seen.append((convs, settings))
            return [[Generation(text=t, prompt="", num_tokens=1, finish_reason="stop", provenance=None)] for t in ("HELLO", "hi  there!")]

    backend = Scripted()
    run = run_probes(backend, probes, "scripted", max_new_tokens=16)
    assert run.passed == [True, False] and run.rate(probes) == 0.5
    settings = backend.seen[0][1]
    assert settings.do_sample is False and settings.max_new_tokens == 16 and "\n###" in settings.stop
    text = table([run], probes)
    assert "| upper | 1 | 100% |" in text and "**50%** (1/2)" in text


def test_cli_help_and_bad_models():
    out = subprocess.run([sys.executable, "-m", "workbench.shift.format_probes", "--help"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0 and "--models" in out.stdout and "SmolLM2" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "workbench.shift.format_probes", "--models", "gpt"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "--models must be among base, tuned, smollm2" in bad.stderr
