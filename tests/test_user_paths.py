"""Every input that takes a path or a name, probed with `../` and absolute paths: the server reads only from its
data folders (workbench/user_paths.py) or refuses with a message naming the input. Flows are the UI's entry
points, so the probes go through them (the Gradio and Streamlit pages call exactly these)."""

from __future__ import annotations

import os
import re

import pytest

from workbench.user_paths import ROOT, confined_folder, user_roots

OUTSIDE = "outside the folders this app reads from"
PROBES = ["../../../../etc", "/etc", "/", "assets/../..", "~", "assets/../../../../../../root/.ssh",
          "./../" + os.path.basename(ROOT)]


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_PERSISTENT_ROOT", str(tmp_path / "no-such-volume"))
    monkeypatch.delenv("WORKBENCH_USER_PATHS", raising=False)
    return tmp_path / "data"


@pytest.mark.parametrize("probe", PROBES)
def test_t2i_adapter_path_is_confined(probe, data_root):
    from workbench.t2i.flows import RewriterInputs

    with pytest.raises(ValueError, match=f"adapter folder .*{OUTSIDE}"):
        RewriterInputs(adapter=probe).parse()


def test_t2i_shipped_adapter_and_one_in_the_data_folder_are_accepted(data_root):
    from workbench.t2i.flows import RewriterInputs

    shipped = "assets/adapters/smollm2-135m-t2i-rewriter-lora"
    assert RewriterInputs(adapter=shipped).parse()[0].adapter == str(ROOT / shipped)
    mine = data_root / "adapters" / "mine"
    mine.mkdir(parents=True)
    (mine / "adapter_config.json").write_text("{}")
    assert RewriterInputs(adapter=str(mine)).parse()[0].adapter == str(mine.resolve())


@pytest.mark.parametrize("probe", PROBES)
def test_promptcam_checkpoint_box_is_confined(probe, fake_ctx, data_root):
    from workbench.promptcam import flows

    with pytest.raises(ValueError, match=f"checkpoint folder .*{OUTSIDE}"):
        flows.analyse(fake_ctx, None, "fake", None, None, probe, "predicted")


def test_a_symlink_out_of_a_data_folder_is_refused(data_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    data_root.mkdir(parents=True, exist_ok=True)
    (data_root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match=OUTSIDE):
        confined_folder(data_root / "link", "checkpoint folder")
    assert confined_folder(data_root, "checkpoint folder") == data_root.resolve()
    assert data_root.resolve() in user_roots()


@pytest.mark.parametrize("probe", PROBES + ["../workbench-t2v-other"])
def test_t2v_reopen_is_confined_to_the_runs_folder(probe, fake_ctx):
    from workbench.t2v import flows

    with pytest.raises(ValueError, match=f"T2V run folder .*{OUTSIDE}"):
        flows.reopen(fake_ctx, "fake", None, str(flows.RUNS_ROOT / probe) if probe.startswith("..") else probe)


def test_t2v_reopen_echoes_a_short_preview_of_a_long_folder(fake_ctx):
    from workbench.t2v import flows

    with pytest.raises(ValueError) as info:
        flows.reopen(fake_ctx, "fake", None, "/" + "x" * 10_000)
    assert len(str(info.value)) < 400 and "10,001 characters" in str(info.value)


@pytest.mark.parametrize("code, what, message", [
    ("../../etc/passwd", "responses.csv", "No data for study"),
    ("/etc", "responses.csv", "No data for study"),
    ("REFINER-AB", "../../../tmp/x.csv", "unknown export"),
    ("REFINER-AB", "/etc/passwd", "unknown export"),
    ("REFINER-AB", "responses.csv/../../x", "unknown export"),
])
def test_study_export_names_are_refused_unless_known(code, what, message, fake_ctx, tmp_path, monkeypatch):
    from workbench.studies import flows

    monkeypatch.setenv("WORKBENCH_RESEARCHER_TOKEN", "tok")
    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "s.sqlite"))
    with pytest.raises(ValueError, match=re.escape(message)):
        flows.export(fake_ctx, "tok", code, what)


@pytest.mark.parametrize("code", ["../../assets/studies/refiner_ab", "/work", "refiner_ab.yaml", "x" * 10_000])
def test_study_codes_are_codes_not_paths(code, monkeypatch):
    from workbench.studies.definition import find_study

    with pytest.raises(ValueError, match="No study has the code") as info:
        find_study(code)
    assert len(str(info.value)) < 300
