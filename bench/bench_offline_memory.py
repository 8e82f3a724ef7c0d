"""Resident memory of the `offline` profile with all its models loaded (target: under 4 GiB).

Loads every role through the ModelManager in a fresh process, makes one real call with each (safetensors
weights are memory-mapped and only become resident when used), and prints, per role, the time, the weight
bytes the manager counts, and the process RSS after it; then the peak RSS. A plain `import torch`
process is measured first, side by side, as the baseline.

    python bench/bench_offline_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
import psutil
rows = []
if sys.argv[2] == "baseline":
    import torch, transformers, diffusers
    print(json.dumps({"rows": [], "rss": psutil.Process().memory_info().rss,
                      "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    raise SystemExit
from workbench.models import ModelManager
from workbench.profiles import load_profiles
profile = load_profiles()["offline"]
manager = ModelManager(device="cpu")
from PIL import Image
from backends.base import GenerationSettings, ImageSettings, VideoSettings
img = Image.new("RGB", (64, 64), "gray")
use = {  # one real call per role, so every weight page is touched (safetensors loads are memory-mapped)
    "chat": lambda b: b.generate(["Hello"], GenerationSettings(max_new_tokens=2, do_sample=False)),
    "lm_base": lambda b: b.generate(["Hello"], GenerationSettings(max_new_tokens=2, do_sample=False)),
    "lm_instruct": lambda b: b.generate(["Hello"], GenerationSettings(max_new_tokens=2, do_sample=False)),
    "embeddings": lambda b: b.embed(["a cat on a sofa"]),
    "t2i": lambda b: b.generate(["a cat"], ImageSettings(steps=1, width=32, height=32)),
    "t2v": lambda b: b.generate(["a cat"], VideoSettings(steps=1, width=32, height=32, num_frames=2)),
    "image_text": lambda b: b.image_text_similarity([img], ["a cat"]),
    "vit": lambda b: b.forward([img]),
}
for role, spec in profile.roles.items():
    t = time.perf_counter()
    use[role](manager.get(spec))
    status = manager.status(spec)
    rows.append([role, spec.model_id, time.perf_counter() - t, status.memory_bytes, psutil.Process().memory_info().rss,
                 status.random_weights])
print(json.dumps({"rows": rows, "rss": psutil.Process().memory_info().rss,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def run(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode], capture_output=True, text=True, check=True,
                         env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                              **{k: v for k, v in __import__("os").environ.items() if k.startswith(("WORKBENCH", "HOME"))}})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    gib = 1024**3
    base = run("baseline")
    full = run("offline")
    print("\nOffline profile, every role loaded in one process (CPU, float32)")
    print(f"{'role':<12}{'model':<52}{'load+1 call s':>14}{'weights MiB':>13}{'RSS after GiB':>15}  weights")
    for role, model, seconds, weight_bytes, rss, random in full["rows"]:
        print(f"{role:<12}{model[:50]:<52}{seconds:>14.1f}{weight_bytes / 2**20:>13.1f}{rss / gib:>15.2f}  "
              f"{'random' if random else 'pretrained'}")
    print(f"\n{'process':<40}{'RSS GiB':>10}{'peak GiB':>10}")
    print(f"{'baseline: import torch, transformers':<40}{base['rss'] / gib:>10.2f}{base['peak'] / gib:>10.2f}")
    print(f"{'offline profile, all roles loaded':<40}{full['rss'] / gib:>10.2f}{full['peak'] / gib:>10.2f}")
    verdict = "met" if full["peak"] < 4 * gib else "NOT met"
    print(f"\npeak RSS {full['peak'] / gib:.2f} GiB (target < 4 GiB): {verdict}")


if __name__ == "__main__":
    main()
