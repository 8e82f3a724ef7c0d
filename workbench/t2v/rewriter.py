"""The trained video-prompt rewriter: its corpus (assets/t2v_pairs: short ideas -> 25-45-word video prompts,
written for this project), its held-out split, and the one instruction it was trained on. The offline profile's
`t2v_rewriter` role carries that instruction as its `prompt_template` (data, like VPO's in the paper profile),
so Evolve's first round and Principles send the adapter exactly what it saw in training."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
VIDEO_PAIRS_FILE = ASSETS / "t2v_pairs" / "pairs.jsonl"
VIDEO_HELDOUT_FILE = ASSETS / "t2v_pairs" / "heldout_ids.txt"
VIDEO_ADAPTER_DIR = ASSETS / "adapters" / "smollm2-135m-t2v-rewriter-lora"

# Must equal the offline profile's t2v_rewriter `prompt_template` (tests/test_t2v_rewriter.py checks it).
VIDEO_REWRITER_TEMPLATE = (
    "Rewrite this short video idea as one text-to-video prompt of 25 to 45 words. Keep every word of the idea. "
    "Describe the subject, its action and motion, the setting, the camera, the light and a style.\n\n"
    "Idea: {query}\n\nVideo prompt:"
)
