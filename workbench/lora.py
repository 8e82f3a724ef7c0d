"""Saving a trained LoRA adapter the way the app ships them (both training recipes use it)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def save_adapter(model: Any, out_dir: str | Path, model_id: str) -> Path:
    """Save a peft model's adapter to `out_dir`, naming the profile's `model_id` as its base (not this machine's
    cache path), without peft's empty model-card template (the folder's TRAINING.md documents it)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for config in model.peft_config.values():
        config.base_model_name_or_path = model_id
    with warnings.catch_warnings():
        # peft looks for a config.json at that id to see whether the vocabulary grew; we never resize it
        warnings.filterwarnings("ignore", message="Could not find a config file")
        model.save_pretrained(str(out), safe_serialization=True)
    (out / "README.md").unlink(missing_ok=True)
    return out
