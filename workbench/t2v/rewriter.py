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
    "Write a text-to-video prompt of 25 to 45 words for this idea. Keep every word of the idea; add its motion, "
    "the camera, the light and a style.\nIdea: {query}\nVideo prompt:"
)
UNSAFE_IDEAS_FILE = ASSETS / "t2v_pairs" / "unsafe_ideas.txt"

# The keyword baseline for video (Promptist / MagicPrompt style: the idea followed by modifiers), one modifier from
# each group, written for this project.
VIDEO_MODIFIERS: dict[str, tuple[str, ...]] = {
    "camera": ("slow tracking shot", "aerial drone shot", "close-up shot", "wide establishing shot",
               "handheld camera", "slow dolly-in", "low-angle shot", "smooth pan"),
    "motion": ("smooth motion", "slow motion", "gentle movement", "dynamic motion", "fluid movement"),
    "lighting": ("golden hour light", "soft natural light", "dramatic lighting", "volumetric light",
                 "moody lighting", "bright sunlight"),
    "style": ("cinematic", "photorealistic", "4k", "documentary style", "film grain", "highly detailed"),
}


def keyword_video_rewrites(idea: str, n: int = 1, seed: int = 0) -> list[str]:
    """`n` distinct rewrites: the idea plus one modifier from each group, from a seeded RNG (same on any
    machine)."""
    import random

    from workbench.common.inputs import check_count, check_prompt

    idea = check_prompt(idea, "video idea").rstrip(" .,;")
    n = check_count(n, "n", 1, 8)
    rng = random.Random(f"{seed}|{idea}")
    out: list[str] = []
    for _ in range(n * 20):
        text = ", ".join([idea] + [rng.choice(words) for words in VIDEO_MODIFIERS.values()])
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    return out


def unsafe_ideas(path: str | Path = UNSAFE_IDEAS_FILE) -> list[tuple[str, str]]:
    """(category, idea) per line of the unsafe-ideas file ('[category] idea'; '#' lines are comments)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("[") or "]" not in line:
            raise ValueError(f"{path}: each line is '[category] idea', got {line!r}")
        category, _, idea = line[1:].partition("]")
        out.append((category.strip(), idea.strip()))
    return out
