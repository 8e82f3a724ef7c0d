"""A synthetic fine-grained dataset ("synthetic birds") with ground-truth trait masks, and image-folder loading.

Every image shows one object type (a bird: body, head, tail, beak, eye) at a random position, size and facing over a
cluttered background. Classes differ only by one small localized trait (the colour or the place of a small part), so
a classifier must find that part; each image comes with the trait's pixel mask. Deterministic from a seed: image i of
class c in split s is drawn from `numpy.random.default_rng([seed, split, c, i])`, so the same call writes the same
files on any machine.

Layout written by `write_dataset(root, ...)` (torchvision ImageFolder style, one folder per class):
    root/dataset.json                      settings, class names, counts
    root/<split>/<class>/<i>.png           RGB images
    root/masks/<split>/<class>/<i>.png     trait masks (L, 255 = trait)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_INDEX = {name: i for i, name in enumerate(SPLITS)}

# (name, part, rgb): classes 0/1 differ only by the crown's colour, 2/3 by where the yellow mark sits, 4/5 likewise.
TRAITS: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("red_crown", "crown", (220, 30, 30)),
    ("blue_crown", "crown", (40, 70, 230)),
    ("yellow_wingbar", "wingbar", (240, 210, 20)),
    ("yellow_tailtip", "tailtip", (240, 210, 20)),
    ("orange_breast", "breast", (245, 130, 20)),
    ("white_eyering", "eyering", (250, 250, 250)),
)
BODY_COLOURS = ((120, 90, 60), (95, 80, 70), (140, 120, 90), (80, 70, 55), (110, 105, 95), (150, 110, 70))
TRAIT_COLOURS = tuple(t[2] for t in TRAITS)


@dataclass(frozen=True)
class DatasetSettings:
    seed: int = 0  # every image is a pure function of (seed, split, class, index)
    num_classes: int = 4  # the first N traits above; at most len(TRAITS)
    image_size: int = 64  # small enough to train a ViT from scratch on 2 CPU cores in minutes
    per_class: dict[str, int] = field(default_factory=lambda: {"train": 300, "val": 30, "test": 40})
    clutter: int = 10  # background shapes per image
    decoy_prob: float = 0.25  # chance of one trait-coloured decoy blob in the background (colour alone is not enough)

    def check(self) -> "DatasetSettings":
        if not 2 <= self.num_classes <= len(TRAITS):
            raise ValueError(f"num_classes must be between 2 and {len(TRAITS)}, got {self.num_classes}")
        if not 32 <= self.image_size <= 512:
            raise ValueError(f"image_size must be between 32 and 512, got {self.image_size}")
        for split, n in self.per_class.items():
            if split not in SPLITS:
                raise ValueError(f"per_class split must be one of {SPLITS}, got {split!r}")
            if not 0 <= int(n) <= 100_000:
                raise ValueError(f"per_class[{split}] must be between 0 and 100000, got {n}")
        if not 0 <= self.clutter <= 100:
            raise ValueError(f"clutter must be between 0 and 100, got {self.clutter}")
        if not 0.0 <= self.decoy_prob <= 1.0:
            raise ValueError(f"decoy_prob must be between 0 and 1, got {self.decoy_prob}")
        return self

    @property
    def class_names(self) -> list[str]:
        return [t[0] for t in TRAITS[: self.num_classes]]


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    """A background colour far from every trait colour (muted, mid-range)."""
    while True:
        c = rng.integers(40, 200, size=3)
        sat = int(c.max() - c.min())
        if sat < 90 and all(np.abs(c - np.array(t)).sum() > 150 for t in TRAIT_COLOURS):
            return int(c[0]), int(c[1]), int(c[2])


def render_sample(settings: DatasetSettings, label: int, rng: np.random.Generator):
    """(RGB PIL image, bool mask of the trait) for one image of class `label`."""
    from PIL import Image, ImageDraw, ImageFilter

    S = settings.image_size
    k = S / 64.0  # geometry is designed at 64 px and scaled
    img = Image.new("RGB", (S, S), _muted(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(settings.clutter):
        x0, y0 = rng.uniform(-0.1, 1.0, size=2) * S
        w, h = rng.uniform(0.08, 0.35, size=2) * S
        shape = rng.integers(0, 3)
        colour = _muted(rng)
        if shape == 0:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
        elif shape == 1:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            draw.line([x0, y0, x0 + w, y0 + h], fill=colour, width=max(1, int(2 * k)))
    if rng.random() < settings.decoy_prob:  # a blob in a trait colour, away from the bird's parts
        colour = TRAIT_COLOURS[int(rng.integers(0, settings.num_classes))]
        r = 2.5 * k
        cx, cy = rng.choice([0.08, 0.92]) * S, rng.uniform(0.1, 0.9) * S
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)

    # The bird: body ellipse, head circle in front, tail wedge behind; facing left or right.
    scale = rng.uniform(0.85, 1.15) * k
    face = 1 if rng.random() < 0.5 else -1
    bw, bh = 15 * scale, 9 * scale  # body half-axes
    cx = rng.uniform(bw + 9 * scale, S - bw - 9 * scale)
    cy = rng.uniform(bh + 12 * scale, S - bh - 4 * scale)
    body = BODY_COLOURS[int(rng.integers(0, len(BODY_COLOURS)))]
    dark = tuple(max(0, c - 45) for c in body)
    hr = 6.5 * scale
    hx, hy = cx + face * (bw - 1 * scale), cy - bh + 1 * scale
    tail_base = cx - face * (bw - 2 * scale)
    tail_end = tail_base - face * 10 * scale
    tail = [(tail_base, cy - 3 * scale), (tail_end, cy - 7 * scale), (tail_end, cy + 3 * scale)]
    draw.polygon(tail, fill=dark)
    draw.ellipse([cx - bw, cy - bh, cx + bw, cy + bh], fill=body)
    draw.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=body)
    beak = [(hx + face * hr * 0.8, hy - 1.5 * scale), (hx + face * (hr + 5 * scale), hy + 0.5 * scale),
            (hx + face * hr * 0.8, hy + 2 * scale)]
    draw.polygon(beak, fill=(70, 60, 50))
    ex, ey, er = hx + face * 2.2 * scale, hy - 1.2 * scale, 1.3 * scale

    mask = Image.new("L", (S, S), 0)
    mdraw = ImageDraw.Draw(mask)
    name, part, colour = TRAITS[label]
    jitter = rng.uniform(-1.0, 1.0)
    t = 1.25 * scale  # trait size: about one 8-pixel patch at 64 px

    def both(fn_name: str, xy: Any, **kw: Any) -> None:
        getattr(draw, fn_name)(xy, fill=colour, **kw)
        getattr(mdraw, fn_name)(xy, fill=255, **kw)

    if part == "crown":  # a cap on the top of the head
        cr = 3.6 * t
        both("pieslice", [hx - cr - face * 1 * scale, hy - hr - cr * 0.4, hx + cr - face * 1 * scale,
                          hy - hr + cr * 1.6], start=180, end=360)
    elif part == "wingbar":  # a short bar on the wing, position jittered along the body
        wx = cx - face * (3 + 2 * jitter) * scale
        both("rectangle", [wx - 4 * t, cy - 2.5 * t, wx + 4 * t, cy + 0.5 * t])
    elif part == "tailtip":  # the tail's tip
        tip = [(tail_end + face * 4 * t, cy - 6.4 * scale), (tail_end, cy - 7 * scale), (tail_end, cy + 3 * scale),
               (tail_end + face * 4 * t, cy + 1.6 * scale)]
        both("polygon", tip)
    elif part == "breast":  # a patch on the lower front of the body
        bx = cx + face * (bw - 6 * scale)
        both("ellipse", [bx - 4 * t, cy + 1 * scale, bx + 4 * t, cy + 1 * scale + 6 * t])
    elif part == "eyering":  # a ring round the eye (drawn before the eye)
        rr = er + 1.6 * t
        both("ellipse", [ex - rr, ey - rr, ex + rr, ey + rr])
    draw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=(15, 15, 15))
    if part == "eyering":
        mdraw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=255)
    img = img.filter(ImageFilter.GaussianBlur(radius=0.4 * k))
    arr = np.asarray(img).astype(np.int16) + rng.normal(0, 6, size=(S, S, 3)).round().astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), np.asarray(mask) > 127


def iter_split(settings: DatasetSettings, split: str) -> Iterator[tuple[int, int, Any, np.ndarray]]:
    """(class, index, image, mask) for every image of a split, deterministic from the seed."""
    settings.check()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    for label in range(settings.num_classes):
        for i in range(int(settings.per_class.get(split, 0))):
            rng = np.random.default_rng([settings.seed, SPLIT_INDEX[split], label, i])
            img, mask = render_sample(settings, label, rng)
            yield label, i, img, mask


def write_dataset(root: str | Path, settings: DatasetSettings | None = None) -> Path:
    """Write every split's images and masks under `root` (see the module docstring); returns the root."""
    settings = (settings or DatasetSettings()).check()
    from PIL import Image

    root = Path(root)
    for split in SPLITS:
        for label, i, img, mask in iter_split(settings, split):
            name = settings.class_names[label]
            (root / split / name).mkdir(parents=True, exist_ok=True)
            (root / "masks" / split / name).mkdir(parents=True, exist_ok=True)
            img.save(root / split / name / f"{i:05d}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / split / name / f"{i:05d}.png")
    meta = {"generator": "workbench.promptcam.data", "settings": asdict(settings), "class_names": settings.class_names,
            "traits": {t[0]: {"part": t[1], "rgb": list(t[2])} for t in TRAITS[: settings.num_classes]}}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------- loading an image folder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class ImageFolder:
    """One folder per class (sorted names = class indices); masks found beside it when the generator wrote them."""

    root: Path
    class_names: list[str]
    items: list[tuple[Path, int]]
    mask_root: Path | None = None

    @classmethod
    def open(cls, root: str | Path, class_names: list[str] | None = None) -> "ImageFolder":
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"dataset folder '{root}' does not exist; write one with "
                             "`python -m workbench.promptcam generate --out DIR`")
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        if class_names is None:
            class_names = found
        elif sorted(class_names) != sorted(n for n in found if n in class_names) or set(class_names) - set(found):
            raise ValueError(f"dataset folder '{root}' has classes {found}; expected {class_names}")
        if len(class_names) < 2:
            raise ValueError(f"dataset folder '{root}' needs at least 2 class folders, found {found}")
        items = [(p, label) for label, name in enumerate(class_names)
                 for p in sorted((root / name).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not items:
            raise ValueError(f"dataset folder '{root}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
        mask_root = root.parent / "masks" / root.name
        return cls(root, list(class_names), items, mask_root if mask_root.is_dir() else None)

    def __len__(self) -> int:
        return len(self.items)

    def image(self, i: int):
        from PIL import Image

        with Image.open(self.items[i][0]) as im:
            return im.convert("RGB")

    def mask(self, i: int) -> np.ndarray | None:
        if self.mask_root is None:
            return None
        path, label = self.items[i]
        mpath = self.mask_root / self.class_names[label] / path.name
        if not mpath.exists():
            return None
        from PIL import Image

        with Image.open(mpath) as im:
            return np.asarray(im.convert("L")) > 127


def class_counts(folder: ImageFolder) -> dict[str, int]:
    counts = {name: 0 for name in folder.class_names}
    for _, label in folder.items:
        counts[folder.class_names[label]] += 1
    return counts


def mask_to_grid(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Fraction of each patch's pixels inside the mask, shape `grid` (mask size must divide by the grid)."""
    h, w = mask.shape
    gh, gw = grid
    if h % gh or w % gw:
        raise ValueError(f"mask size {h}x{w} is not a multiple of the patch grid {gh}x{gw}")
    return mask.reshape(gh, h // gh, gw, w // gw).mean(axis=(1, 3))


def trait_grid(mask: np.ndarray, image_size: int, patch: int) -> np.ndarray:
    """A trait mask resized (nearest) to the model's input size, as the share of each patch that is trait."""
    from PIL import Image

    if mask.shape != (image_size, image_size):
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((image_size, image_size),
                                                                              Image.NEAREST)) > 127
    return mask_to_grid(mask, (image_size // patch, image_size // patch))
