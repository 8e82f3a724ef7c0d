"""Preference data end to end: the batch CLI evolves a prompt file on the fake profile (resumable, sharded),
exports SFT/DPO JSONL, and the training CLI runs TRL's SFTTrainer then DPOTrainer with LoRA on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    from workbench.t2v.__main__ import main

    out = tmp_path_factory.mktemp("t2v-batch")
    prompts = out / "ideas.txt"
    prompts.write_text("a dog running on a beach\n# a comment\n\na red kite over a hill\n   \n", encoding="utf-8")
    assert main(["evolve", str(prompts), "--out", str(out), "--profile", "fake", "--rounds", "2", "--population",
                 "3", "--patience", "2", "--min-margin", "0.005"]) == 0
    return out, prompts


def test_batch_cli_evolves_resumes_and_exports(evolved, capsys):
    from workbench.t2i.batch import shard
    from workbench.t2v.__main__ import main
    from workbench.t2v.batch import load_results

    out, prompts = evolved
    records = [json.loads(line) for line in (out / "shards" / "rank-000.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["a dog running on a beach", "a red kite over a hill"]  # blanks skipped
    assert all(len(r["result"]["rounds"]) == 2 for r in records)
    assert len(load_results(out)) == 2 and (out / "previews" / records[0]["id"] / "r1c1.gif").is_file()
    dpo = [json.loads(line) for line in (out / "dpo.jsonl").read_text().splitlines()]
    assert dpo and all({"prompt", "chosen", "rejected", "provenance"} == set(r) for r in dpo)
    assert json.loads(dpo[0]["provenance"])["chosen"]["scores"]["scores"]["align_original"]["provenance"]
    capsys.readouterr()
    assert main(["evolve", str(prompts), "--out", str(out), "--profile", "fake", "--rounds", "2"]) == 0
    assert '"skipped": 2' in capsys.readouterr().out  # resumed: nothing redone
    assert main(["export", str(out), "--thresholds", "total=5"]) == 0
    assert (out / "dpo.jsonl").read_text() == ""  # nobody reaches a total of 5
    assert [i.index for i in shard(list(__import__("workbench.t2i.batch").t2i.batch.read_prompts(prompts)), 1, 2)] == [1]
    assert main(["export", str(out), "--thresholds", "beauty=1"]) == 2


@pytest.mark.slow
def test_export_loads_into_trl_sft_then_dpo_with_lora(evolved, tmp_path, capsys):
    from workbench.t2v.__main__ import main

    out, _ = evolved
    assert main(["export", str(out), "--min-margin", "0.0"]) == 0
    adapter = tmp_path / "adapter"
    code = main(["train", "--profile", "fake", "--role", "lm_base", "--sft", str(out / "sft.jsonl"), "--dpo",
                 str(out / "dpo.jsonl"), "--out", str(adapter), "--sft-steps", "2", "--dpo-steps", "2",
                 "--max-length", "256"])
    assert code == 0
    training = json.loads((adapter / "training.json").read_text())
    assert len(training["losses"]["sft"]) == 2 and len(training["losses"]["dpo"]) == 2
    assert training["losses"]["dpo"][0] == pytest.approx(0.6931, abs=1e-3)  # DPO starts at log 2
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert training["provenance"]["settings"]["dpo_rows"] >= 1
    # the adapter loads back onto the base the tabs use
    from peft import PeftModel

    from backends import tiny

    model, _tok = tiny.build("causal-lm", (("seed", "0"),))
    assert isinstance(PeftModel.from_pretrained(model, str(adapter)), PeftModel)


def test_training_refuses_bad_files(tmp_path, profiles):
    from workbench.t2v.train import T2VTrainConfig, train_rewriter

    spec = profiles["fake"].spec("lm_base")
    with pytest.raises(ValueError, match="nothing to train"):
        train_rewriter(T2VTrainConfig(base=spec, out_dir=str(tmp_path)))
    bad = tmp_path / "dpo.jsonl"
    bad.write_text(json.dumps({"prompt": "a", "chosen": "b"}) + "\n")
    with pytest.raises(ValueError, match=r"lacks text fields \['rejected'\]"):
        train_rewriter(T2VTrainConfig(base=spec, out_dir=str(tmp_path / "a"), dpo_file=str(bad)))
    with pytest.raises(ValueError, match="transformers-lm backend"):
        train_rewriter(T2VTrainConfig(base=profiles["fake"].spec("chat"), out_dir=str(tmp_path), dpo_file=str(bad)))
