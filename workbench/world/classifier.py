"""The attribute classifier, the world's ground-truth scorer: a small CNN that reads a rendered still as the 3x3
grid the world places objects on (each cell empty or holding one object with a shape, colour, size and finish)
plus the background kind and colour, the effect and the style.

Weights are safetensors with a JSON config beside them (never a pickle). Uses torch directly (no backend): the
world stays below every tab and reaches no backend module (the import-linter contract in pyproject.toml)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from workbench.world.data import CELL_LABELS, SCENE_LABELS

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = REPO_ROOT / "assets" / "world" / "classifier"
WEIGHTS, CONFIG = "model.safetensors", "config.json"


def build_network(config: dict) -> Any:
    import torch
    from torch import nn

    class AttributeNet(nn.Module):
        """Convolutions down to an 8x8 map (receptive field wider than a grid cell), max-pooled onto the 3x3 grid
        (max, not mean: a mean over the cell dilutes the object's shape features with background, and shape was
        then barely learned); one head shared by the nine cells (with a learned embedding of the cell) reads each
        cell, a second head reads the globally pooled map for the scene labels."""

        def __init__(self, cfg: dict):
            super().__init__()
            chans, c_in, layers = cfg["channels"], 3, []
            for i, c in enumerate(chans):
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                if i < cfg["pools"]:
                    layers.append(nn.MaxPool2d(2))
                c_in = c
            self.features = nn.Sequential(*layers)
            self.grid = nn.AdaptiveMaxPool2d(3)
            self.cell_embedding = nn.Parameter(torch.zeros(9, c_in))
            self.n_classes = {k: len(v) for k, v in cfg["classes"].items()}
            hidden = cfg["hidden"]
            self.cell_head = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(inplace=True),
                                           nn.Linear(hidden, sum(self.n_classes[k] for k in CELL_LABELS)))
            self.scene_head = nn.Sequential(nn.Linear(2 * c_in, hidden), nn.ReLU(inplace=True),
                                            nn.Linear(hidden, sum(self.n_classes[k] for k in SCENE_LABELS)))

        def forward(self, x: "torch.Tensor") -> dict[str, "torch.Tensor"]:
            """x: (N, 3, H, W) floats in [0, 1] -> logits: (N, 9, C) per cell label, (N, C) per scene label."""
            f = self.features(x * 2 - 1)
            cells = self.grid(f).flatten(2).transpose(1, 2) + self.cell_embedding  # (N, 9, C), row-major
            h = self.cell_head(cells)
            g = self.scene_head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))
            out, i = {}, 0
            for k in CELL_LABELS:
                c = self.n_classes[k]
                out[k] = h[..., i:i + c]
                i += c
            i = 0
            for k in SCENE_LABELS:
                c = self.n_classes[k]
                out[k] = g[:, i:i + c]
                i += c
            return out

    return AttributeNet(config)


def to_tensor(images: Sequence[Any] | np.ndarray) -> Any:
    """RGB images (uint8 arrays, PIL images, or one (N, H, W, 3) array) -> (N, 3, H, W) float tensor in [0, 1]."""
    import torch

    if isinstance(images, np.ndarray) and images.ndim == 4:
        arr = images
    else:
        arr = np.stack([np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im) for im in images])
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"images must be RGB images of shape (H, W, 3), got an array of shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0


@dataclass
class AttributeClassifier:
    network: Any
    config: dict
    path: str

    @classmethod
    def load(cls, path: str | Path = SHIPPED) -> "AttributeClassifier":
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / WEIGHTS).exists() or not (path / CONFIG).exists():
            raise ValueError(f"path must be a folder holding {WEIGHTS} and {CONFIG}, got {str(path)!r}")
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
        net = build_network(config)
        net.load_state_dict(load_file(str(path / WEIGHTS)))
        net.eval()
        return cls(net, config, str(path))

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    def _prepare(self, images) -> Any:
        import torch

        x = to_tensor(images)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="area")
        return x

    def probabilities(self, images, batch_size: int = 256) -> dict[str, np.ndarray]:
        import torch

        x = self._prepare(images)
        outs: dict[str, list] = {}
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                for k, logits in self.network(x[i:i + batch_size]).items():
                    outs.setdefault(k, []).append(torch.softmax(logits, -1).numpy())
        return {k: np.concatenate(v) for k, v in outs.items()}

    def read(self, images) -> list[dict]:
        """What each image shows: {"objects": [{shape, colour, size, finish, position: [column, row],
        confidence}], "background", "background_colour", "effect", "style"}; an object is a cell read as non-empty."""
        p = self.probabilities(images)
        names = self.config["classes"]
        empty = names["shape"].index("empty")
        out = []
        for n in range(len(p["shape"])):
            objects = []
            for cell in range(9):
                s = int(p["shape"][n, cell].argmax())
                if s == empty:
                    continue
                obj = {"shape": names["shape"][s], "colour": names["colour"][int(p["colour"][n, cell].argmax())],
                       "size": names["size"][int(p["size"][n, cell].argmax())],
                       "finish": names["finish"][int(p["finish"][n, cell].argmax())],
                       "position": [cell % 3, cell // 3], "confidence": float(p["shape"][n, cell, s])}
                objects.append(obj)
            d = {"objects": objects}
            for k in SCENE_LABELS:
                d[k] = names[k][int(p[k][n].argmax())]
            out.append(d)
        return out


def evaluate(clf: AttributeClassifier, batch) -> dict[str, float]:
    """Held-out accuracy per attribute. Per object (in its true cell): position (the cell is read as holding an
    object: a recall, which a model reading every cell as occupied would also pass), shape, colour, size, finish.
    Per cell: read as occupied or empty, rightly. Per scene: exact set of occupied cells, background kind and
    colour, effect, style."""
    p = clf.probabilities(batch.images)
    pred = {k: v.argmax(-1) for k, v in p.items()}
    lab = batch.labels
    empty = len(clf.config["classes"]["shape"]) - 1
    occupied = lab["shape"] != empty
    out = {"position": float((pred["shape"][occupied] != empty).mean())}
    for k in CELL_LABELS:
        out[k] = float((pred[k][occupied] == lab[k][occupied]).mean())
    out["cells (occupied or empty)"] = float(((pred["shape"] != empty) == occupied).mean())
    out["occupied cells (scene)"] = float(((pred["shape"] != empty) == occupied).all(axis=1).mean())
    for k in SCENE_LABELS:
        out[k] = float((pred[k] == lab[k]).mean())
    out["objects"] = int(occupied.sum())
    out["scenes"] = int(len(batch.images))
    return out
