"""The Prompt-CAM model: a frozen transformers ViT / DINO / DINOv2 backbone with one learnable prompt per class inserted
at every layer (VPT-deep: each layer's prompt outputs are dropped and replaced by the next layer's prompts), and a
shared linear head scoring each class from its own prompt's final output (Imageomics/Prompt_CAM, `train_type:
prompt_cam`). Checkpoints hold only the prompts and head (safetensors) plus a JSON naming the backbone and its config.

Attention is read with a registered eager attention function ("promptcam_eager"): identical to eager attention, but
a call can ask it to record the last layer's attention and to "blur" heads of one class's prompt row (the official
code sets those pre-softmax scores to 0, i.e. uniform attention), which is how heads are ranked.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

ATTN_IMPLEMENTATION = "promptcam_eager"
CHECKPOINT_WEIGHTS = "prompts.safetensors"
CHECKPOINT_META = "promptcam.json"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- the attention function


@dataclass
class AttentionCall:
    """Per-call instructions to the attention function of one layer (passed as a keyword, never global)."""

    record: list[torch.Tensor] | None = None  # appended with the attention probabilities (B, H, T, T)
    blur: torch.Tensor | None = None  # (B, H) bool: heads whose `rows` row is made uniform
    rows: torch.Tensor | None = None  # (B,) long: the query row (a class prompt's position) to blur per sample


def promptcam_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                        promptcam: AttentionCall | None = None, **kwargs: Any):
    """transformers' eager attention, plus the Prompt-CAM blur and record hooks when `promptcam` is given."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    if promptcam is not None and promptcam.blur is not None:
        b_idx, h_idx = promptcam.blur.nonzero(as_tuple=True)
        if len(b_idx):
            scores = scores.clone()
            scores[b_idx, h_idx, promptcam.rows[b_idx], :] = 0.0  # uniform after softmax, as the official code
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if promptcam is not None and promptcam.record is not None:
        promptcam.record.append(probs)
    probs_dropped = nn.functional.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs_dropped, value).transpose(1, 2).contiguous()
    return out, probs


def use_promptcam_attention(backbone: nn.Module) -> None:
    """Switch a transformers vision model to the eager-equivalent attention function that Prompt-CAM reads."""
    from transformers import AttentionInterface

    if ATTN_IMPLEMENTATION not in AttentionInterface._global_mapping:
        AttentionInterface.register(ATTN_IMPLEMENTATION, promptcam_attention)
    try:
        backbone.set_attn_implementation(ATTN_IMPLEMENTATION)
    except (ValueError, TypeError, AttributeError):
        backbone.config._attn_implementation = ATTN_IMPLEMENTATION


# --------------------------------------------------------------------------- backbone anatomy (data, not branches)


# Where each supported architecture keeps its parts: (layers path, final norm path). Patch grid and prefix tokens come
# from the config (CLS + registers), never hard-coded.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "vit": ("layers", "layernorm"),
    "dinov2": ("encoder.layer", "layernorm"),
    "dinov2_with_registers": ("encoder.layer", "layernorm"),
}


def _get(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def backbone_parts(backbone: nn.Module) -> tuple[nn.ModuleList, nn.Module]:
    kind = getattr(backbone.config, "model_type", "")
    if kind not in ARCHITECTURES:
        raise ValueError(f"Prompt-CAM supports backbones of type {', '.join(sorted(ARCHITECTURES))}; "
                         f"this one is '{kind}'")
    layers_path, norm_path = ARCHITECTURES[kind]
    return _get(backbone, layers_path), _get(backbone, norm_path)


def prefix_tokens(config: Any) -> int:
    """CLS plus register tokens (DINOv2 with registers)."""
    return 1 + int(getattr(config, "num_register_tokens", 0) or 0)


def patch_size(config: Any) -> int:
    p = config.patch_size
    return int(p if isinstance(p, int) else p[0])


def patch_grid(config: Any, height: int, width: int) -> tuple[int, int]:
    p = patch_size(config)
    return height // p, width // p


def backbone_summary(config: Any) -> dict[str, Any]:
    """The config fields a checkpoint must agree with."""
    return {"model_type": config.model_type, "hidden_size": int(config.hidden_size),
            "num_hidden_layers": int(config.num_hidden_layers), "num_attention_heads": int(config.num_attention_heads),
            "patch_size": patch_size(config), "image_size": int(config.image_size),
            "num_register_tokens": int(getattr(config, "num_register_tokens", 0) or 0)}


def backbone_fingerprint(backbone: nn.Module) -> str:
    """sha256 of the patch-embedding and final-norm weights: cheap, and tells one trained backbone from another."""
    _, norm = backbone_parts(backbone)
    h = hashlib.sha256()
    for name, tensor in sorted(backbone.embeddings.state_dict().items()) + sorted(norm.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class Preprocess:
    """Resize to the backbone's square input and normalise (the image processor's mean/std)."""

    size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def for_backbone(cls, config: Any, processor: Any = None) -> "Preprocess":
        mean = tuple(getattr(processor, "image_mean", None) or (0.5, 0.5, 0.5))
        std = tuple(getattr(processor, "image_std", None) or (0.5, 0.5, 0.5))
        size = int(config.image_size)
        p = patch_size(config)
        if size % p:
            raise ValueError(f"backbone image_size {size} is not a multiple of its patch size {p}")
        return cls(size, mean, std)  # type: ignore[arg-type]

    def resize(self, image: Any):
        from PIL import Image

        image = image.convert("RGB")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.BILINEAR)
        return image

    def __call__(self, images: Sequence[Any]) -> torch.Tensor:
        arrays = [np.asarray(self.resize(im), dtype=np.float32) / 255.0 for im in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std

    def denormalise(self, pixels: torch.Tensor) -> np.ndarray:
        """(B,3,H,W) normalised -> (B,H,W,3) uint8."""
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        x = (pixels.detach().cpu().float() * std + mean).clamp(0, 1)
        return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


# --------------------------------------------------------------------------- the model


class GridTap(nn.Module):
    """Identity on the patch tokens laid out as (B, D, h, w): the layer Grad-CAM differentiates (the input of the
    last block, where patch tokens still reach the class prompts)."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return grid


@dataclass
class PromptCamOutput:
    logits: torch.Tensor  # (B, C): class c scored from prompt c's final output
    attention: torch.Tensor | None = None  # last layer (B, H, T, T) when recorded; T = C + prefix + patches
    grid: tuple[int, int] = (0, 0)


class PromptCAM(nn.Module):
    """Frozen backbone + `num_classes` prompts per layer + a shared `Linear(hidden, 1)` head."""

    def __init__(self, backbone: nn.Module, num_classes: int, prompt_dropout: float = 0.1, seed: int = 0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.backbone = backbone
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()
        use_promptcam_attention(self.backbone)
        config = backbone.config
        self.layers, self.final_norm = backbone_parts(backbone)
        self.num_classes = int(num_classes)
        self.num_layers = len(self.layers)
        self.num_heads = int(config.num_attention_heads)
        self.prefix = prefix_tokens(config)
        dim = int(config.hidden_size)
        # VPT's initialisation: uniform(-v, v), v = sqrt(6 / (3 * patch^2 + dim)) (xavier over the patch embedding)
        bound = math.sqrt(6.0 / float(3 * patch_size(config) ** 2 + dim))
        g = torch.Generator().manual_seed(seed)
        self.prompts = nn.Parameter((torch.rand(self.num_layers, self.num_classes, dim, generator=g) * 2 - 1) * bound)
        self.prompt_dropout = nn.Dropout(prompt_dropout)  # the official vpt_dropout 0.1
        self.head = nn.Linear(dim, 1)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, dim, generator=g) * 0.02)
            self.head.bias.zero_()
        self.tap = GridTap()
        params = inspect.signature(backbone.embeddings.forward).parameters
        self._interpolate_kw = "interpolate_pos_encoding" in params

    def train(self, mode: bool = True) -> "PromptCAM":
        super().train(mode)
        self.backbone.eval()  # frozen: no dropout / drop-path in the backbone, ever
        return self

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {"prompts": self.prompts.detach().cpu().contiguous(),
                "head.weight": self.head.weight.detach().cpu().contiguous(),
                "head.bias": self.head.bias.detach().cpu().contiguous()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.prompts.copy_(state["prompts"].to(self.prompts))
            self.head.weight.copy_(state["head.weight"].to(self.head.weight))
            self.head.bias.copy_(state["head.bias"].to(self.head.bias))

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        config = self.backbone.config
        if self._interpolate_kw:
            same = tuple(pixel_values.shape[-2:]) == (config.image_size, config.image_size)
            return self.backbone.embeddings(pixel_values, interpolate_pos_encoding=not same)
        return self.backbone.embeddings(pixel_values)

    def forward(self, pixel_values: torch.Tensor, *, record: bool = False, blur: torch.Tensor | None = None,
                blur_rows: torch.Tensor | None = None) -> PromptCamOutput:
        """Class scores (B, C). `record`: keep the last layer's attention. `blur` (B, H) bool with `blur_rows` (B,):
        make those heads of those class prompts' rows uniform in the last layer (head ranking)."""
        B = pixel_values.shape[0]
        C = self.num_classes
        grid = patch_grid(self.backbone.config, pixel_values.shape[-2], pixel_values.shape[-1])
        x = self.embed(pixel_values.to(self.prompts.dtype))
        recorded: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            prompts = self.prompt_dropout(self.prompts[i]).unsqueeze(0).expand(B, -1, -1)
            x = torch.cat([prompts, x if i == 0 else x[:, C:]], dim=1)
            kwargs: dict[str, Any] = {}
            if i == self.num_layers - 1:
                head = x[:, : C + self.prefix]
                patches = x[:, C + self.prefix:]
                tapped = self.tap(patches.transpose(1, 2).reshape(B, -1, grid[0], grid[1]))
                x = torch.cat([head, tapped.flatten(2).transpose(1, 2)], dim=1)
                kwargs["promptcam"] = AttentionCall(record=recorded if record else None, blur=blur, rows=blur_rows)
            x = layer(x, None, **kwargs)
        x = self.final_norm(x[:, :C])
        logits = self.head(x).squeeze(-1)
        return PromptCamOutput(logits=logits, attention=recorded[-1] if recorded else None, grid=grid)

    def head_maps(self, pixel_values: torch.Tensor, target: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, maps): `maps` (B, H, h, w) is each head's last-layer attention of class `target`'s prompt over
        the patches, renormalised to sum 1 per head (see explain.normalise_map)."""
        out = self.forward(pixel_values, record=True)
        B = pixel_values.shape[0]
        rows = torch.as_tensor(target, device=pixel_values.device).long().reshape(-1).expand(B)
        att = out.attention[torch.arange(B), :, rows, self.num_classes + self.prefix:]  # (B, H, N)
        att = att / att.sum(-1, keepdim=True).clamp_min(1e-12)
        return out.logits, att.reshape(B, self.num_heads, *out.grid)


# --------------------------------------------------------------------------- checkpoints


@dataclass
class CheckpointMeta:
    backbone: str  # the backbone's id or path, as given to the trainer
    backbone_config: dict[str, Any]  # backbone_summary(config)
    backbone_fingerprint: str
    class_names: list[str]
    preprocess: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)  # settings, epochs, accuracy, timings, versions
    format_version: int = FORMAT_VERSION


def save_checkpoint(model: PromptCAM, folder: str | Path, meta: CheckpointMeta,
                    extra: dict[str, torch.Tensor] | None = None) -> Path:
    """prompts + head as safetensors, and promptcam.json; written beside, then renamed (no half-written files)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {**model.trainable_state(), **(extra or {})}
    tmp = folder / (CHECKPOINT_WEIGHTS + ".partial")
    save_file(tensors, str(tmp), metadata={"format": "promptcam", "format_version": str(FORMAT_VERSION)})
    tmp.replace(folder / CHECKPOINT_WEIGHTS)
    tmp_meta = folder / (CHECKPOINT_META + ".partial")
    tmp_meta.write_text(json.dumps(asdict(meta), indent=2) + "\n", encoding="utf-8")
    tmp_meta.replace(folder / CHECKPOINT_META)
    return folder


def read_checkpoint_meta(folder: str | Path) -> CheckpointMeta:
    folder = Path(folder)
    weights, meta_path = folder / CHECKPOINT_WEIGHTS, folder / CHECKPOINT_META
    if not weights.is_file() or not meta_path.is_file():
        raise ValueError(f"'{folder}' is not a Prompt-CAM checkpoint: it needs {CHECKPOINT_WEIGHTS} and "
                         f"{CHECKPOINT_META}")
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
        meta = CheckpointMeta(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"'{meta_path}' is not a valid Prompt-CAM checkpoint description: {exc}") from None
    if meta.format_version != FORMAT_VERSION:
        raise ValueError(f"checkpoint format {meta.format_version} is not supported (this version reads "
                         f"{FORMAT_VERSION})")
    return meta


def read_checkpoint(folder: str | Path) -> tuple[CheckpointMeta, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(folder)
    weights = Path(folder) / CHECKPOINT_WEIGHTS
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ValueError(f"'{weights}' could not be read as safetensors: {exc}") from None
    missing = {"prompts", "head.weight", "head.bias"} - set(tensors)
    if missing:
        raise ValueError(f"'{weights}' lacks {sorted(missing)}")
    return meta, tensors


def check_compatible(meta: CheckpointMeta, tensors: dict[str, torch.Tensor], backbone: nn.Module,
                     where: str = "checkpoint") -> None:
    """Raise ValueError naming each mismatch between a checkpoint and the loaded backbone."""
    have = backbone_summary(backbone.config)
    problems = [f"{k}: checkpoint {meta.backbone_config.get(k)!r}, backbone {v!r}"
                for k, v in have.items() if k in meta.backbone_config and meta.backbone_config[k] != v]
    prompts = tensors["prompts"]
    expect = (have["num_hidden_layers"], len(meta.class_names), have["hidden_size"])
    if tuple(prompts.shape) != expect:
        problems.append(f"prompt tensor {tuple(prompts.shape)}, expected (layers, classes, hidden) = {expect}")
    if not problems:
        fp = backbone_fingerprint(backbone)
        if meta.backbone_fingerprint and fp != meta.backbone_fingerprint:
            problems.append(f"backbone weights differ (fingerprint {fp}, checkpoint trained on "
                            f"{meta.backbone_fingerprint})")
    if problems:
        raise ValueError(f"the {where} was trained for backbone '{meta.backbone}' with {len(meta.class_names)} "
                         f"classes and does not match the loaded backbone: " + "; ".join(problems) +
                         ". Choose the backbone it was trained on, or train prompts for this one "
                         "(python -m workbench.promptcam train).")


def load_promptcam(backbone: nn.Module, folder: str | Path) -> tuple[PromptCAM, CheckpointMeta]:
    meta, tensors = read_checkpoint(folder)
    check_compatible(meta, tensors, backbone, where=f"checkpoint '{folder}'")
    model = PromptCAM(backbone, len(meta.class_names))
    model.load_trainable_state(tensors)
    return model.eval(), meta
