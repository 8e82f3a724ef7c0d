"""The field's reward models behind the image_text interface (PickScore, ImageReward, HPSv2.1), each loaded on a
tiny random model of its own architecture class, and the checkpoint conversions checked against reference
computations written from the authors' architectures (nothing downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from backends.base import ModelSpec
from backends.clip_scorer import ClipScorer
from backends.hpsv2 import HPSv2, open_clip_to_transformers
from backends.image_reward import REWARD_MEAN, REWARD_STD, ImageReward, convert_image_reward
from backends.pickscore import PickScore


def _spec(backend: str, model: str, **options) -> ModelSpec:
    return ModelSpec(role="image_text", backend=backend, model_id=model, random_weights=True,
                     options=tuple(sorted(options.items())))


IMAGES = [Image.new("RGB", (40, 40), (200, 30, 30)), Image.new("RGB", (40, 40), (20, 40, 220))]
TEXTS = ["a red square", "a blue square"]


def test_pickscore_is_the_logit_scale_times_the_clip_cosine():
    clip = ClipScorer.load(_spec("clip-scorer", "tiny:clip"), device="cpu", dtype="float32")
    pick = PickScore.load(_spec("pickscore", "tiny:clip"), device="cpu", dtype="float32")
    cos = clip.image_text_similarity(IMAGES, TEXTS)
    scale = float(pick.model.logit_scale.exp())
    assert scale > 1.0  # CLIP's initial logit scale is exp(2.6592) = 14.3
    np.testing.assert_allclose(pick.image_text_similarity(IMAGES, TEXTS), cos * scale, rtol=1e-5)
    assert pick.aesthetic(IMAGES) is None
    assert PickScore.default_processor == "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


# ---------------------------------------------------------------------------- HPSv2.1: open_clip -> CLIPModel


def _open_clip_state(model, seed: int = 3) -> dict[str, torch.Tensor]:
    """A random state dict in open_clip's CLIP layout with the tiny CLIP's sizes (what HPS_v2.1 holds for ViT-H-14)."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    v, t, d = cfg.vision_config, cfg.text_config, cfg.projection_dim

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    grid = (v.image_size // v.patch_size) ** 2
    state = {"visual.conv1.weight": r(v.hidden_size, 3, v.patch_size, v.patch_size),
             "visual.class_embedding": r(v.hidden_size), "visual.positional_embedding": r(grid + 1, v.hidden_size),
             "visual.ln_pre.weight": 1 + r(v.hidden_size), "visual.ln_pre.bias": r(v.hidden_size),
             "visual.ln_post.weight": 1 + r(v.hidden_size), "visual.ln_post.bias": r(v.hidden_size),
             "visual.proj": r(v.hidden_size, d),
             "token_embedding.weight": r(t.vocab_size, t.hidden_size),
             "positional_embedding": r(t.max_position_embeddings, t.hidden_size),
             "ln_final.weight": 1 + r(t.hidden_size), "ln_final.bias": r(t.hidden_size),
             "text_projection": r(t.hidden_size, d), "logit_scale": torch.tensor(4.6052)}
    for prefix, c in (("visual.transformer", v), ("transformer", t)):
        w, m = c.hidden_size, c.intermediate_size
        for i in range(c.num_hidden_layers):
            b = f"{prefix}.resblocks.{i}."
            state.update({b + "ln_1.weight": 1 + r(w), b + "ln_1.bias": r(w), b + "ln_2.weight": 1 + r(w),
                          b + "ln_2.bias": r(w), b + "attn.in_proj_weight": r(3 * w, w), b + "attn.in_proj_bias": r(3 * w),
                          b + "attn.out_proj.weight": r(w, w), b + "attn.out_proj.bias": r(w),
                          b + "mlp.c_fc.weight": r(m, w), b + "mlp.c_fc.bias": r(m),
                          b + "mlp.c_proj.weight": r(w, m), b + "mlp.c_proj.bias": r(w)})
    return state


def _act(name: str):
    return (lambda x: x * torch.sigmoid(1.702 * x)) if name == "quick_gelu" else torch.nn.functional.gelu


def _open_clip_blocks(state, prefix, x, layers, heads, act, causal=False):
    """open_clip's ResidualAttentionBlock: x + attn(ln_1(x)), then x + mlp(ln_2(x)); attention is
    torch's MultiheadAttention with the stacked in_proj weights."""
    w = x.shape[-1]
    ln = torch.nn.functional.layer_norm
    mask = torch.full((x.shape[1], x.shape[1]), float("-inf")).triu(1) if causal else None
    for i in range(layers):
        b = f"{prefix}.resblocks.{i}."
        attn = torch.nn.MultiheadAttention(w, heads, batch_first=True)
        attn.load_state_dict({"in_proj_weight": state[b + "attn.in_proj_weight"],
                              "in_proj_bias": state[b + "attn.in_proj_bias"],
                              "out_proj.weight": state[b + "attn.out_proj.weight"],
                              "out_proj.bias": state[b + "attn.out_proj.bias"]})
        h = ln(x, (w,), state[b + "ln_1.weight"], state[b + "ln_1.bias"])
        x = x + attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        h = ln(x, (w,), state[b + "ln_2.weight"], state[b + "ln_2.bias"])
        h = act(h @ state[b + "mlp.c_fc.weight"].T + state[b + "mlp.c_fc.bias"])
        x = x + h @ state[b + "mlp.c_proj.weight"].T + state[b + "mlp.c_proj.bias"]
    return x


def _open_clip_image(state, pixels, cfg):
    v = cfg.vision_config
    ln = torch.nn.functional.layer_norm
    x = torch.nn.functional.conv2d(pixels, state["visual.conv1.weight"], stride=v.patch_size)
    x = x.flatten(2).transpose(1, 2)
    cls = state["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + state["visual.positional_embedding"]
    x = ln(x, (v.hidden_size,), state["visual.ln_pre.weight"], state["visual.ln_pre.bias"])
    x = _open_clip_blocks(state, "visual.transformer", x, v.num_hidden_layers, v.num_attention_heads, _act(v.hidden_act))
    x = ln(x[:, 0], (v.hidden_size,), state["visual.ln_post.weight"], state["visual.ln_post.bias"])
    return x @ state["visual.proj"]


def _open_clip_text(state, ids, cfg):
    t = cfg.text_config
    x = state["token_embedding.weight"][ids] + state["positional_embedding"][: ids.shape[1]]
    x = _open_clip_blocks(state, "transformer", x, t.num_hidden_layers, t.num_attention_heads, _act(t.hidden_act),
                          causal=True)
    x = torch.nn.functional.layer_norm(x, (t.hidden_size,), state["ln_final.weight"], state["ln_final.bias"])
    return x[torch.arange(ids.shape[0]), ids.argmax(-1)] @ state["text_projection"]  # pooled at end-of-text


def test_open_clip_weights_give_the_same_embeddings_in_transformers_clip(tmp_path):
    from safetensors.torch import save_file

    from backends import tiny

    model, _, _ = tiny.build("clip")
    state = _open_clip_state(model)
    file = tmp_path / "hps_tiny.safetensors"
    save_file(state, str(file))
    scorer = HPSv2.load(_spec("hpsv2", "tiny:clip", checkpoint=str(file)), device="cpu", dtype="float32")
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[0, 5, 9, 300], [0, 7, 400, 11]])  # end-of-text = the highest id (open_clip's pooling)
    with torch.inference_mode():
        got_image = scorer.model.get_image_features(pixel_values=pixels)
        got_text = scorer.model.get_text_features(input_ids=ids)
    got_image = getattr(got_image, "pooler_output", got_image)
    got_text = getattr(got_text, "pooler_output", got_text)
    torch.testing.assert_close(got_image, _open_clip_image(state, pixels, scorer.model.config), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_text, _open_clip_text(state, ids, scorer.model.config), rtol=1e-4, atol=1e-4)
    assert float(scorer.model.logit_scale) == pytest.approx(4.6052)
    # the HPS score is the cosine of the normalised embeddings, as HPSv2's own code computes it
    sims = scorer.image_text_similarity(IMAGES, TEXTS)
    img, txt = scorer.image_embeddings(IMAGES), scorer.text_embeddings(TEXTS)
    np.testing.assert_allclose(sims, (img * txt).sum(-1).numpy(), rtol=1e-5)
    assert np.all(np.abs(sims) <= 1.0 + 1e-6) and scorer.aesthetic(IMAGES) is None


def test_open_clip_conversion_refuses_what_it_cannot_map():
    with pytest.raises(ValueError, match="unknown keys"):
        open_clip_to_transformers({"visual.trunk.blocks.0.weight": torch.zeros(1)})


def test_hps_checkpoint_of_another_shape_does_not_load(tmp_path):
    from backends import tiny

    model, _, _ = tiny.build("clip")
    state = _open_clip_state(model)
    del state["visual.transformer.resblocks.1.mlp.c_fc.weight"]
    file = tmp_path / "broken.pt"
    torch.save({"state_dict": state}, str(file))  # the layout HPS_v2.1_compressed.pt uses
    with pytest.raises(ValueError, match="does not fit"):
        HPSv2.load(_spec("hpsv2", "tiny:clip", checkpoint=str(file)), device="cpu", dtype="float32")


# ---------------------------------------------------------------------------- ImageReward: BLIP + MLP


def _image_reward_state(seed: int = 5) -> dict[str, torch.Tensor]:
    """A random ImageReward.pt-layout state dict (BLIP ViT names, BERT names, mlp.layers) at the tiny sizes."""
    from backends import tiny

    g = torch.Generator().manual_seed(seed)
    vision, text, mlp, _, _ = tiny.build("blip-reward")

    def r(t):
        return torch.randn(t.shape, generator=g) * 0.2

    w = vision.config.hidden_size
    grid = (vision.config.image_size // vision.config.patch_size) ** 2
    state = {"blip.visual_encoder.cls_token": torch.randn(1, 1, w, generator=g) * 0.2,
             "blip.visual_encoder.pos_embed": torch.randn(1, grid + 1, w, generator=g) * 0.2,
             "blip.visual_encoder.patch_embed.proj.weight": r(vision.embeddings.patch_embedding.weight),
             "blip.visual_encoder.patch_embed.proj.bias": r(vision.embeddings.patch_embedding.bias),
             "blip.visual_encoder.norm.weight": 1 + torch.randn(w, generator=g) * 0.1,
             "blip.visual_encoder.norm.bias": torch.randn(w, generator=g) * 0.1}
    for i, layer in enumerate(vision.encoder.layers):
        b = f"blip.visual_encoder.blocks.{i}."
        state.update({b + "norm1.weight": 1 + r(layer.layer_norm1.weight), b + "norm1.bias": r(layer.layer_norm1.bias),
                      b + "norm2.weight": 1 + r(layer.layer_norm2.weight), b + "norm2.bias": r(layer.layer_norm2.bias),
                      b + "attn.qkv.weight": r(layer.self_attn.qkv.weight), b + "attn.qkv.bias": r(layer.self_attn.qkv.bias),
                      b + "attn.proj.weight": r(layer.self_attn.projection.weight),
                      b + "attn.proj.bias": r(layer.self_attn.projection.bias),
                      b + "mlp.fc1.weight": r(layer.mlp.fc1.weight), b + "mlp.fc1.bias": r(layer.mlp.fc1.bias),
                      b + "mlp.fc2.weight": r(layer.mlp.fc2.weight), b + "mlp.fc2.bias": r(layer.mlp.fc2.bias)})
    state.update({"blip.text_encoder." + k: r(v) for k, v in text.state_dict().items() if "position_ids" not in k})
    state.update({"mlp.layers." + k: r(v) for k, v in mlp.state_dict().items()})
    state["blip.text_decoder.cls.predictions.bias"] = torch.zeros(3)  # in BLIP checkpoints, unused by the score
    return state


def _blip_vit_cls(state, pixels, heads: int, eps: float = 1e-6):
    """BLIP's VisionTransformer (timm-style pre-norm blocks with a fused qkv), its final-normed [CLS] token."""
    p = "blip.visual_encoder."
    ln = torch.nn.functional.layer_norm
    w = state[p + "cls_token"].shape[-1]
    x = torch.nn.functional.conv2d(pixels, state[p + "patch_embed.proj.weight"], state[p + "patch_embed.proj.bias"],
                                   stride=state[p + "patch_embed.proj.weight"].shape[-1])
    x = torch.cat([state[p + "cls_token"].expand(x.shape[0], 1, -1), x.flatten(2).transpose(1, 2)], 1)
    x = x + state[p + "pos_embed"]
    i = 0
    while f"{p}blocks.{i}.norm1.weight" in state:
        b = f"{p}blocks.{i}."
        h = ln(x, (w,), state[b + "norm1.weight"], state[b + "norm1.bias"], eps)
        qkv = (h @ state[b + "attn.qkv.weight"].T + state[b + "attn.qkv.bias"]).reshape(x.shape[0], x.shape[1], 3, heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, -1) @ v
        a = a.transpose(1, 2).reshape(x.shape)
        x = x + a @ state[b + "attn.proj.weight"].T + state[b + "attn.proj.bias"]
        h = ln(x, (w,), state[b + "norm2.weight"], state[b + "norm2.bias"], eps)
        h = torch.nn.functional.gelu(h @ state[b + "mlp.fc1.weight"].T + state[b + "mlp.fc1.bias"])
        x = x + h @ state[b + "mlp.fc2.weight"].T + state[b + "mlp.fc2.bias"]
        i += 1
    return ln(x, (w,), state[p + "norm.weight"], state[p + "norm.bias"], eps)[:, 0]


def test_image_reward_checkpoint_loads_into_transformers_blip_and_scores_as_its_authors(tmp_path):
    state = _image_reward_state()
    file = tmp_path / "ImageReward_tiny.pt"
    torch.save(state, str(file))
    scorer = ImageReward.load(_spec("image-reward", "tiny:blip-reward", checkpoint=str(file)), device="cpu",
                              dtype="float32")
    # the vision tower computes BLIP's ViT on the converted weights
    pixels = scorer._pixels(IMAGES)
    want = torch.nn.functional.normalize(_blip_vit_cls(state, pixels, heads=4), dim=-1)
    torch.testing.assert_close(scorer.image_embeddings(IMAGES), want, rtol=1e-4, atol=1e-4)
    # the head is the checkpoint's MLP (no activations) and the reward is normalised by the authors' mean and std
    mlp = [state[f"mlp.layers.{i}.weight"] for i in (0, 2, 4, 6, 7)], [state[f"mlp.layers.{i}.bias"] for i in (0, 2, 4, 6, 7)]
    with torch.inference_mode():
        image_embeds = scorer.vision(pixel_values=pixels).last_hidden_state
        tokens = scorer._tokens(TEXTS)
        cls = scorer.text(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                          encoder_hidden_states=image_embeds).last_hidden_state[:, 0]
    h = cls
    for weight, bias in zip(*mlp):
        h = h @ weight.T + bias
    want_reward = ((h.squeeze(-1) - REWARD_MEAN) / REWARD_STD).numpy()
    np.testing.assert_allclose(scorer.image_text_similarity(IMAGES, TEXTS), want_reward, rtol=1e-4, atol=1e-5)
    assert tokens["input_ids"].shape[1] == 35  # padded to 35 tokens, as ImageReward's score() does
    # the reward depends on the prompt through the cross-attending text encoder
    other = scorer.image_text_similarity(IMAGES, ["a green triangle on grass", "night city"])
    assert not np.allclose(other, want_reward)
    assert scorer.aesthetic(IMAGES) is None


def test_image_reward_conversion_names_keys_it_cannot_map():
    with pytest.raises(ValueError, match="cannot map"):
        convert_image_reward({"blip.visual_encoder.blocks.0.ls1.gamma": torch.zeros(1)})
    parts = convert_image_reward({"blip.visual_encoder.blocks.3.attn.proj.weight": torch.zeros(2, 2),
                                  "blip.text_encoder.encoder.layer.0.crossattention.self.query.bias": torch.zeros(2),
                                  "mlp.layers.7.bias": torch.zeros(1)})
    assert list(parts["vision"]) == ["encoder.layers.3.self_attn.projection.weight"]
    assert list(parts["text"]) == ["encoder.layer.0.crossattention.self.query.bias"]
    assert list(parts["mlp"]) == ["7.bias"]


# ---------------------------------------------------------------------------- the score panel with rewards


def test_score_panel_shows_the_profiles_reward_metrics_with_checkpoint_and_total_of_those_present(manager, make_spec):
    from workbench.models import ManagedModel
    from workbench.t2i.scoring import METRICS, metrics_present, score_images, score_markdown

    scorer = ManagedModel(manager, make_spec("image_text", "clip-scorer", "tiny:clip"))
    embedder = ManagedModel(manager, make_spec("embeddings", "sentence-embeddings", "tiny:text-embedder"))
    rewards = {"pickscore": ManagedModel(manager, make_spec("pickscore", "pickscore", "tiny:clip",
                                                            version="PickScore_v1")),
               "image_reward": ManagedModel(manager, make_spec("image_reward", "image-reward", "tiny:blip-reward",
                                                               version="ImageReward-v1.0"))}
    items = score_images(scorer, embedder, "a red square", ["a red square, oil painting", "a red square, 35mm"],
                         IMAGES, rewards=rewards)
    assert metrics_present(items) == ["align_original", "align_refined", "aesthetic", "intent", "image_diversity",
                                      "pickscore", "image_reward"]  # no hps: this "profile" names no HPS model
    first = items[0].scores
    # each reward is scored with the ORIGINAL prompt, on its own scale, with its checkpoint and versions recorded
    direct = rewards["pickscore"].image_text_similarity(IMAGES, ["a red square"] * 2)
    assert first["pickscore"].value == pytest.approx(float(direct[0]), rel=1e-5)
    prov = first["image_reward"].provenance
    assert prov.settings["checkpoint"] == {"version": "ImageReward-v1.0"} and prov.settings["text"] == "original"
    assert prov.model_id == "tiny:blip-reward" and "transformers" in prov.versions and prov.random_weights
    assert "random weights" in first["pickscore"].note
    # the total uses the metrics present, PickScore scaled by 1/20 and ImageReward by 1/4
    note = items[0].total.note
    assert "0.5xpickscore /20" in note and "0.5ximage_reward /4" in note and "hps" not in note
    assert "| pickscore |" in score_markdown(items[0]) and "hps" not in score_markdown(items[0])
    assert "hps" in METRICS  # known, but only shown where a profile names it


def test_video_rewards_reuse_an_image_reward_per_frame(manager, make_spec):
    from workbench.models import ManagedModel
    from workbench.t2v.rewards import AESTHETIC_FRAMES, score_videos, sample_indices

    scorer = ManagedModel(manager, make_spec("image_text", "clip-scorer", "tiny:clip"))
    hps = ManagedModel(manager, make_spec("hpsv2", "hpsv2", "tiny:clip", version="HPSv2.1"))
    frames = [Image.new("RGB", (32, 32), (20 * i, 100, 255 - 20 * i)) for i in range(8)]
    [item] = score_videos(scorer, "a sunrise", ["a sunrise, timelapse"], [frames], rewards={"hps": hps})
    picked = [frames[i] for i in sample_indices(len(frames), AESTHETIC_FRAMES)]
    want = float(np.mean(hps.image_text_similarity(picked, ["a sunrise"] * len(picked))))
    assert item.scores["hps"].value == pytest.approx(want, rel=1e-5)  # mean over 4 frames, original prompt
    assert item.scores["hps"].provenance.settings["frames_sampled"] == sample_indices(len(frames), AESTHETIC_FRAMES)
    assert "pickscore" not in item.scores and "hps" in item.total.note


def test_weights_files_are_named_by_path_hub_file_or_https_only(tmp_path, monkeypatch):
    from backends.sources import resolve_file

    head = tmp_path / "head.pt"
    torch.save({"weight": torch.zeros(1, 4), "bias": torch.zeros(1)}, str(head))
    assert resolve_file(str(head)) == head
    with pytest.raises(ValueError, match="must read hf:<org>/<repo>/<file>"):
        resolve_file("hf:THUDM/ImageReward")
    with pytest.raises(ValueError, match="https only"):
        resolve_file("http://example.com/head.pth")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1 forbids fetching it"):
        resolve_file("https://github.com/LAION-AI/aesthetic-predictor/blob/main/sa_0_4_vit_l_14_linear.pth?raw=true")
    cached = tmp_path / "cache" / "files"
    cached.mkdir(parents=True)
    import hashlib

    url = "https://example.org/x/sa_head.pth?raw=true"
    target = cached / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-sa_head.pth"
    target.write_bytes(head.read_bytes())
    assert resolve_file(url) == target  # fetched once, then read from the cache (its name without the query)
