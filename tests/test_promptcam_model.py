"""Prompt-CAM model, checkpoints, explanations and input checks on tiny random ViTs (2 layers, hidden 32, 4 heads)
and, where trained weights matter, the small shipped backbone."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT


def tiny(seed: int = 0, kind: str = "vit", classes: int = 3):
    from backends.tiny import tiny_vit
    from workbench.promptcam.model import PromptCAM

    backbone, _ = tiny_vit(seed=seed, image_size=32, patch_size=8, kind=kind)
    return PromptCAM(backbone, classes, seed=seed).eval()


@pytest.mark.parametrize("kind", ["vit", "dinov2"])
def test_prompts_are_inserted_at_every_layer(kind):
    model = tiny(kind=kind)
    seen = []

    def grab(module, args):
        seen.append(args[0].detach().clone())

    handles = [layer.register_forward_pre_hook(grab) for layer in model.layers]
    try:
        out = model(torch.randn(2, 3, 32, 32), record=True)
    finally:
        for h in handles:
            h.remove()
    C, prefix, patches = 3, 1, 16  # 32 px / 8 px patches = 4 x 4
    assert len(seen) == model.num_layers == 2
    for i, x in enumerate(seen):
        assert x.shape == (2, C + prefix + patches, 32)
        assert torch.equal(x[0, :C], model.prompts[i].detach())  # layer i's own prompts, replacing the last ones
    assert out.logits.shape == (2, C)
    assert out.attention.shape == (2, 4, C + prefix + patches, C + prefix + patches)
    assert out.grid == (4, 4)
    assert all(not h for h in (model.layers[0]._forward_pre_hooks,))


def test_backbone_stays_frozen_while_prompts_train():
    model = tiny()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    prompts_before = model.prompts.detach().clone()
    assert all(not p.requires_grad for p in model.backbone.parameters())
    opt = torch.optim.SGD([model.prompts, *model.head.parameters()], lr=0.5, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    model.train()
    assert not model.backbone.training  # frozen: dropout and drop-path stay off
    for _ in range(3):
        x, y = torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 3, (4,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(prompts_before, model.prompts.detach())


def test_head_ranking_is_deterministic_and_follows_greedy_blurring():
    from workbench.promptcam.explain import rank_heads

    model = tiny(seed=3)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    first = rank_heads(model, x, target=2, keep=1)
    second = rank_heads(model, x, target=2, keep=1)
    assert first.order == second.order and sorted(first.order) == [0, 1, 2, 3]
    assert first.steps == second.steps
    # The first head blurred is the one whose blurring keeps the class probability highest (the least important),
    # so it ranks last.
    step0 = first.steps[0]["probabilities"]
    assert first.order[-1] == max(step0, key=lambda h: (round(step0[h], 7), -h))
    # Blurring sets that head's prompt row to uniform attention, as the official code does.
    blur = torch.zeros(1, 4, dtype=torch.bool)
    blur[0, 1] = True
    att = model(x, record=True, blur=blur, blur_rows=torch.tensor([2])).attention
    assert torch.allclose(att[0, 1, 2], torch.full_like(att[0, 1, 2], 1 / att.shape[-1]))
    with pytest.raises(ValueError, match="keep must be between 1 and 4"):
        rank_heads(model, x, target=0, keep=9)


@pytest.mark.numerical
def test_maps_are_distributions_over_patches_and_display_in_unit_range():
    from workbench.promptcam.explain import attention_rollout, display_map, grad_cam, normalise_map

    model = tiny(seed=1)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    _, maps = model.head_maps(x, 1)
    assert maps.shape == (2, 4, 4, 4)
    assert torch.allclose(maps.sum((-1, -2)), torch.ones(2, 4), atol=1e-5) and (maps >= 0).all()
    for m in (grad_cam(model, x, 1), attention_rollout(model.backbone, x)):
        assert m.shape == (2, 4, 4) and (m >= 0).all()
        assert np.allclose(m.sum((-1, -2)), 1.0, atol=1e-6)
    assert not model.tap._forward_hooks and not model.tap._forward_pre_hooks  # captum removed its hooks
    d = display_map(np.array([[1.0, 3.0], [2.0, 5.0]]))
    assert d.min() == 0.0 and d.max() == 1.0
    assert np.all(display_map(np.ones((2, 2))) == 0)
    assert np.allclose(normalise_map(np.zeros((2, 2))), 0.25)
    assert np.allclose(normalise_map(np.array([[-1.0, 1.0], [1.0, 2.0]])), [[0, 0.25], [0.25, 0.5]])


def test_measures_on_known_maps():
    from workbench.promptcam.explain import auc, energy_in_mask, pointing_hit

    mask = np.zeros((4, 4))
    mask[1, 2] = 1.0
    hot = np.zeros((4, 4))
    hot[1, 2] = 1.0
    assert pointing_hit(hot, mask) and energy_in_mask(hot, mask) == 1.0
    assert energy_in_mask(np.ones((4, 4)), mask) == pytest.approx(1 / 16)  # uniform = the mask's area share
    assert auc(np.array([1.0, 1.0])) == 1.0 and auc(np.array([1.0, 0.0])) == 0.5


def test_checkpoint_round_trip_is_safetensors_and_json(tmp_path):
    from workbench.promptcam.model import (
        CheckpointMeta, backbone_fingerprint, backbone_summary, load_promptcam, save_checkpoint,
    )

    model = tiny(seed=0)
    with torch.no_grad():
        model.prompts.add_(0.3)
    meta = CheckpointMeta(backbone="tiny:vit", backbone_config=backbone_summary(model.backbone.config),
                          backbone_fingerprint=backbone_fingerprint(model.backbone), class_names=["a", "b", "c"],
                          preprocess={"size": 32})
    save_checkpoint(model, tmp_path / "ck", meta)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["promptcam.json", "prompts.safetensors"]
    again, meta2 = load_promptcam(tiny(seed=0).backbone, tmp_path / "ck")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x).logits, again(x).logits, atol=1e-6)
    assert meta2.class_names == ["a", "b", "c"]


def test_mismatched_checkpoints_are_refused_with_the_reason(tmp_path):
    from workbench.promptcam.model import (
        CheckpointMeta, backbone_fingerprint, backbone_summary, load_promptcam, save_checkpoint,
    )

    model = tiny(seed=0)
    meta = CheckpointMeta(backbone="tiny:vit", backbone_config=backbone_summary(model.backbone.config),
                          backbone_fingerprint=backbone_fingerprint(model.backbone), class_names=["a", "b", "c"],
                          preprocess={})
    save_checkpoint(model, tmp_path / "ck", meta)
    with pytest.raises(ValueError, match="backbone weights differ"):
        load_promptcam(tiny(seed=5).backbone, tmp_path / "ck")
    with pytest.raises(ValueError, match="model_type: checkpoint 'vit', backbone 'dinov2'"):
        load_promptcam(tiny(kind="dinov2").backbone, tmp_path / "ck")
    meta.class_names = ["a", "b"]  # the JSON says 2 classes, the tensors hold 3
    save_checkpoint(model, tmp_path / "ck2", meta)
    with pytest.raises(ValueError, match=r"prompt tensor \(2, 3, 32\), expected .* \(2, 2, 32\)"):
        load_promptcam(tiny(seed=0).backbone, tmp_path / "ck2")
    with pytest.raises(ValueError, match="is not a Prompt-CAM checkpoint"):
        load_promptcam(tiny().backbone, tmp_path)


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG" if img.mode != "CMYK" else "JPEG")
    return buf.getvalue()


def test_bad_images_get_clear_messages_and_odd_modes_are_converted(tmp_path):
    from PIL import Image

    from workbench.promptcam.inputs import check_image

    with pytest.raises(ValueError, match="not an image"):
        check_image(b"this is not an image at all")
    bad = tmp_path / "broken.png"
    bad.write_bytes(_png(Image.new("RGB", (64, 64), "red"))[:80])
    with pytest.raises(ValueError, match="damaged or truncated|not an image"):
        check_image(bad)
    with pytest.raises(ValueError, match=r"2000x2000 = 4.0 megapixels; the limit is 1 megapixels"):
        check_image(_png(Image.new("L", (2000, 2000))), max_megapixels=1)
    with pytest.raises(ValueError, match="empty"):
        check_image(b"")
    cases = {
        "L": (Image.new("L", (16, 16), 128), "grayscale"),
        "RGBA": (Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "transparency"),
        "I;16": (Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)), "16-bit"),
        "CMYK": (Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "CMYK"),
        "P": (Image.new("RGB", (16, 16), "blue").convert("P"), "P to RGB"),
    }
    for mode, (img, note) in cases.items():
        checked = check_image(_png(img))
        assert checked.image.mode == "RGB", mode
        assert any(note in n for n in checked.notes), (mode, checked.notes)
    assert np.asarray(check_image(_png(cases["I;16"][0])).image).max() == 255  # scaled, not clipped
    assert np.asarray(check_image(_png(cases["RGBA"][0])).image)[0, 0].tolist() == [255, 255, 255]


def test_class_choice_is_checked():
    from workbench.promptcam.flows import resolve_class

    names = ["a", "b", "c"]
    assert resolve_class("predicted", names, 2, None) == 2
    assert resolve_class("b", names, 0, None) == 1
    assert resolve_class("2", names, 0, None) == 2
    assert resolve_class("true class", names, 0, "c") == 2
    with pytest.raises(ValueError, match=r"class index must be between 0 and 2 \(this checkpoint has 3 classes\)"):
        resolve_class("7", names, 0, None)
    with pytest.raises(ValueError, match="known only for the shipped examples"):
        resolve_class("true class", names, 0, None)
    with pytest.raises(ValueError, match="one of a, b, c"):
        resolve_class("zebra", names, 0, None)


def test_generator_is_deterministic_and_masks_mark_small_traits():
    from workbench.promptcam.data import DatasetSettings, iter_split

    s = DatasetSettings(seed=7, per_class={"train": 2, "val": 0, "test": 0})
    a = [(label, np.asarray(img), mask) for label, _, img, mask in iter_split(s, "train")]
    b = [(label, np.asarray(img), mask) for label, _, img, mask in iter_split(s, "train")]
    assert len(a) == 8 and all(np.array_equal(x[1], y[1]) and np.array_equal(x[2], y[2]) for x, y in zip(a, b))
    for label, img, mask in a:
        assert img.shape == (64, 64, 3) and 0 < mask.mean() < 0.05  # the trait is small and always present
    with pytest.raises(ValueError, match="num_classes must be between 2 and 6"):
        DatasetSettings(num_classes=9).check()


def test_tiny_training_run_beats_chance_and_resumes(tmp_path):
    """End to end through the CLI on the shipped (trained) backbone: fresh prompts, a few epochs, then --resume."""
    import json

    from workbench.promptcam.__main__ import main
    from workbench.promptcam.data import DatasetSettings, write_dataset

    backbone = ROOT / "assets/promptcam/backbone"
    data = write_dataset(tmp_path / "data", DatasetSettings(seed=11, per_class={"train": 16, "val": 10, "test": 0}))
    out = tmp_path / "ck"
    common = ["train", "--data", str(data), "--backbone", str(backbone), "--out", str(out), "--warmup-epochs", "0",
              "--lr", "0.05", "--batch-size", "16", "--cpu"]
    assert main(common + ["--epochs", "3"]) == 0
    assert main(common + ["--epochs", "4", "--resume"]) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    meta = json.loads((out / "promptcam.json").read_text())
    assert meta["training"]["best_val_accuracy"] > 0.25 + 0.2  # 4 classes: chance is 0.25
    assert (out / "prompts.safetensors").exists() and not list(Path(out).rglob("*.pt*"))
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--backbone", str(backbone), "--out",
                 str(tmp_path / "x")]) == 2
