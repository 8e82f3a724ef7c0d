"""One loaded base per base model: LoRA adapters are named peft adapters on it, switched per call (issue 23)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from backends.base import GenerationSettings, ModelSpec

ROOT = Path(__file__).resolve().parent.parent
GREEDY = GenerationSettings(max_new_tokens=12, do_sample=False)
PROMPT = ["a cat on a sofa"]


def _spec(role: str, model: str = "tiny:causal-lm", **options) -> ModelSpec:
    return ModelSpec.from_dict(role, {"backend": "transformers-lm", "model": model, "options": options})


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory):
    """Two random LoRA adapters on the tiny LM with different target modules (attention; MLP + o_proj), strong
    enough that greedy outputs differ visibly from the base and from each other."""
    import torch
    from peft import LoraConfig, get_peft_model

    from backends import tiny

    folders = []
    for i, (targets, seed) in enumerate(((["q_proj", "v_proj"], 1), (["gate_proj", "up_proj", "down_proj", "o_proj"], 2))):
        model, _ = tiny.tiny_causal_lm()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=32, target_modules=targets, init_lora_weights=False))
        folder = tmp_path_factory.mktemp("adapters") / f"adapter{i}"
        peft.save_pretrained(str(folder))
        folders.append(str(folder))
    return folders


def _alone(spec: ModelSpec):
    """A copy loaded on its own, outside any manager (the reference)."""
    from backends.transformers_lm import TransformersCausalLM

    return TransformersCausalLM.load(spec, device="cpu", dtype="float32")


def test_adapters_share_one_base_and_match_separate_copies(two_adapters):
    from workbench.models import ModelManager

    manager = ModelManager(budget_bytes=4 * 1024**3, device="cpu")
    specs = [_spec("chat"), _spec("a0", adapter=two_adapters[0]), _spec("a1", adapter=two_adapters[1], max_words=3)]
    outs = {}
    for spec in specs:
        with manager.use(spec) as backend:
            outs[spec.role] = backend.generate(PROMPT, GREEDY)[0][0].text
    assert len(set(outs.values())) == 3, outs  # the adapters visibly change greedy output
    for spec in specs:  # identical to a copy loaded separately, with the other adapters also on the shared base
        assert _alone(spec).generate(PROMPT, GREEDY)[0][0].text == outs[spec.role], spec.role
    # the base is loaded once; each adapter is its own entry, counted on its own
    bases = manager.loaded_bases()
    assert len(bases) == 1 and sorted(Path(f).name for f, _ in bases[0][1]) == ["adapter0", "adapter1"]
    base_status, adapters = bases[0]
    assert list(manager.load_count.values()).count(1) == 3 and len(manager.load_count) == 3
    adapter_bytes = [s.memory_bytes for _, s in adapters]
    assert all(0 < b < base_status.memory_bytes / 4 for b in adapter_bytes)
    assert manager.resident_bytes() == base_status.memory_bytes + sum(adapter_bytes)
    # provenance names the adapter for its role, none for the base
    with manager.use(specs[1]) as backend:
        assert backend.generate(PROMPT, GREEDY)[0][0].provenance.settings["adapter"] == two_adapters[0]
    with manager.use(specs[0]) as backend:
        assert "adapter" not in backend.generate(PROMPT, GREEDY)[0][0].provenance.settings
    # unloading an adapter leaves the base and the other adapter as they were
    assert manager.unload(specs[1])
    assert manager.is_loaded(specs[0]) and manager.is_loaded(specs[2]) and not manager.is_loaded(specs[1])
    for spec in (specs[2], specs[0]):
        with manager.use(spec) as backend:
            assert backend.generate(PROMPT, GREEDY)[0][0].text == outs[spec.role]
    # loading it again attaches it again (the base stays loaded once)
    with manager.use(specs[1]) as backend:
        assert backend.generate(PROMPT, GREEDY)[0][0].text == outs["a0"]
    assert manager.load_count[manager.key_of(specs[0])] == 1
    # unloading the base takes its adapters with it
    assert manager.unload(specs[0]) and manager.loaded() == []


def test_concurrent_calls_with_different_adapters_on_one_base(two_adapters):
    from workbench.models import ManagedModel, ModelManager

    manager = ModelManager(budget_bytes=4 * 1024**3, device="cpu")
    specs = [_spec("chat"), _spec("a0", adapter=two_adapters[0]), _spec("a1", adapter=two_adapters[1])]
    expected = {s.role: _alone(s).generate(PROMPT, GREEDY)[0][0].text for s in specs}
    assert len(set(expected.values())) == 3
    seen: dict[str, list[str]] = {s.role: [] for s in specs}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work(spec: ModelSpec) -> None:
        try:
            model = ManagedModel(manager, spec)  # the way the tabs call models: held per call
            start.wait()
            for _ in range(4):
                seen[spec.role].append(model.generate(PROMPT, GREEDY)[0][0].text)
                with manager.use(spec) as backend:  # and the way white-box code holds one
                    seen[spec.role].append(backend.generate(PROMPT, GREEDY)[0][0].text)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in specs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for role, texts in seen.items():
        assert len(texts) == 16 and set(texts) == {expected[role]}, role
    assert len(manager.loaded_bases()) == 1


def test_adapter_switch_inside_a_held_view_is_kept(two_adapters):
    """The behaviour-shift pair holds the instruct view and switches its adapter off: calls inside that context
    see the base, and the switch comes back on afterwards."""
    import torch

    from workbench.models import ModelManager

    manager = ModelManager(budget_bytes=4 * 1024**3, device="cpu")
    base, inst = _spec("lm_base"), _spec("lm_instruct", adapter=two_adapters[0])
    with manager.use(base) as b:
        reference = b.generate(PROMPT, GREEDY)[0][0].text
    with manager.use(inst) as backend:
        tuned = backend.generate(PROMPT, GREEDY)[0][0].text
        with backend.adapter_enabled(False):
            assert backend.generate(PROMPT, GREEDY)[0][0].text == reference
            with manager.use(inst) as again:  # a nested call for the same role keeps the switch off
                assert again.generate(PROMPT, GREEDY)[0][0].text == reference
        assert backend.generate(PROMPT, GREEDY)[0][0].text == tuned != reference
        batch = backend.encode(PROMPT)
        with torch.inference_mode():
            on = backend.model(**batch).logits
            with manager.use(base) as b:  # the base held inside: adapters off for it, back on after
                off = b.model(**batch).logits
            assert torch.equal(backend.model(**batch).logits, on)
    assert not torch.allclose(on, off)


def test_budget_evicts_adapters_with_their_base(two_adapters):
    from workbench.models import ModelManager

    probe = ModelManager(budget_bytes=4 * 1024**3, device="cpu")
    probe.get(_spec("chat"))
    base_bytes = probe.resident_bytes()
    # room for the tiny LM and its adapters, not for a second model of that size
    manager = ModelManager(budget_bytes=int(base_bytes * 1.5), device="cpu")
    a0 = _spec("a0", adapter=two_adapters[0])
    manager.get(a0)
    assert manager.resident_bytes() > base_bytes
    manager.get(_spec("t", "tiny:causal-lm", attn_implementation="eager"))
    # a second base (another load option) did not fit next to the first: the first went with its adapter
    assert not manager.is_loaded(a0) and not manager.is_loaded(_spec("chat"))
    assert len(manager.loaded_bases()) == 1


def _shipped_adapters() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "assets" / "adapters").glob("*/adapter_config.json"))


def test_the_shipped_adapters_are_found():
    names = [p.name for p in _shipped_adapters()]
    assert "gemma3-270m-instruct-lora" in names and "smollm2-135m-t2i-rewriter-lora" in names


@pytest.mark.parametrize("folder", _shipped_adapters(), ids=lambda p: p.name)
def test_every_shipped_adapter_on_the_shared_base_matches_a_separate_copy(folder, real_manager):
    """Every adapter under assets/adapters, attached to its base model (read from its adapter_config.json) in the
    shared manager next to the other adapters on that base, gives the same greedy output as a copy loaded alone,
    and the base served by the manager gives the base's output."""
    base_id = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    spec = _spec("adapter_under_test", base_id, adapter=str(folder.relative_to(ROOT)))
    base = _spec("base_under_test", base_id)
    others = [_spec(f"other{i}", base_id, adapter=str(p)) for i, p in enumerate(_shipped_adapters())
              if p != folder and json.loads((p / "adapter_config.json").read_text())["base_model_name_or_path"] == base_id]
    for other in others:  # the other adapters on this base are loaded too
        real_manager.get(other)
    prompt = [[{"role": "user", "content": "Write a short prompt for a picture of a lighthouse at dusk."}]]
    settings = GenerationSettings(max_new_tokens=16, do_sample=False)
    with real_manager.use(spec) as backend:
        shared = backend.generate(prompt, settings)[0][0].text
    with real_manager.use(base) as backend:
        shared_base = backend.generate(prompt, settings)[0][0].text
    alone = _alone(dataclasses.replace(spec))
    try:
        assert alone.generate(prompt, settings)[0][0].text == shared
        with alone.adapter_enabled(False):
            assert alone.generate(prompt, settings)[0][0].text == shared_base
    finally:
        alone.unload()
    assert shared != shared_base  # the adapter changes the output (else the test would not see a wrong switch)
    # (the offline safety role's classifier reads Gemma too, through its own six-layer copy: another backend)
    bases = [b for b, adapters in real_manager.loaded_bases() if b.model_id == base_id and b.backend == "transformers-lm"]
    assert len(bases) == 1  # one copy of the base, whatever roles and adapters use it


def test_models_tab_shows_promptcam_loaded_after_the_tab_used_it(fake_ctx):
    """The Prompt-CAM tab loads its backbone by absolute path without the checkpoint option; the Models tab's row
    for the profile's `promptcam` role (relative path + checkpoint) is that same loaded model."""
    from workbench import model_table as mt
    from workbench.promptcam import flows

    row = {r["role"]: r for r in mt.model_records(fake_ctx, "fake")}["promptcam"]
    assert row["state"] == "not loaded"
    example = flows.list_examples()[0]["file"]
    flows.analyse(fake_ctx, None, "fake", None, example, "", "predicted")
    row = {r["role"]: r for r in mt.model_records(fake_ctx, "fake")}["promptcam"]
    assert row["state"] == "loaded" and row["weights"] == "pretrained" and row["memory MiB"] > 0
    assert mt.unload_role(fake_ctx, "fake", "promptcam") == "Unloaded promptcam: assets/promptcam/backbone."
    assert fake_ctx.manager.loaded() == []

