"""Peak resident memory of the `offline` profile with every tab's models used once: before/after, side by side.

Each side runs in a fresh subprocess: the model manager of that code loads every role of its own offline profile
through `manager.use` (the way the tabs call models) and makes one real call with it (a short greedy generation,
an embedding, a 1-step image and clip, a CLIP score, a ViT forward; safetensors weights are memory-mapped and only
become resident when used). "before" is a git ref (default `main`) exported with `git archive` into a temporary
folder, "after" is this checkout. Printed: per role, the weights the manager counts and the process RSS after it;
then per side, how many copies of each base model are loaded, the RSS at the end and the peak RSS (ru_maxrss),
and the after/before ratio. A plain `import torch, transformers, diffusers` process is the floor.

    python -m bench.bench_offline_memory [--before main] [--after .]

Target (issue 23): each base model in memory once, peak RSS at most 60% of before.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import os
os.chdir(sys.argv[1])
import psutil
if sys.argv[2] == "baseline":
    import torch, transformers, diffusers
    print(json.dumps({"rows": [], "copies": {}, "rss": psutil.Process().memory_info().rss,
                      "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    raise SystemExit
from workbench.models import ModelManager
from workbench.profiles import load_profiles
profile = load_profiles()["offline"]
manager = ModelManager(device="cpu", budget_bytes=64 * 1024**3)  # nothing evicted: every tab's models at once
from PIL import Image
from backends.base import GenerationSettings, ImageSettings, VideoSettings
img = Image.new("RGB", (64, 64), "gray")
greedy = GenerationSettings(max_new_tokens=4, do_sample=False)
use = {  # one real call per backend kind, so every weight page is touched
    "transformers-lm": lambda b: b.generate([[{"role": "user", "content": "Describe a cat in one line."}]], greedy),
    "sentence-embeddings": lambda b: b.embed(["a cat on a sofa"]),
    "diffusers-t2i": lambda b: b.generate(["a cat"], ImageSettings(steps=1, width=32, height=32)),
    "diffusers-t2v": lambda b: b.generate(["a cat"], VideoSettings(steps=1, width=32, height=32, num_frames=2)),
    "clip-scorer": lambda b: b.image_text_similarity([img], ["a cat"]),
    "vit": lambda b: b.forward([img]),
}
rows = []
for role, spec in profile.roles.items():
    t = time.perf_counter()
    if spec.backend not in use:
        rows.append([role, spec.model_id, 0.0, 0, psutil.Process().memory_info().rss, "skipped: " + spec.backend])
        continue
    with manager.use(spec) as backend:
        use[spec.backend](backend)
    status = manager.status(spec)
    rows.append([role, spec.model_id, time.perf_counter() - t, status.memory_bytes, psutil.Process().memory_info().rss,
                 "random" if status.random_weights else "pretrained"])
copies = {}
if hasattr(manager, "loaded_bases"):
    for status, _ in manager.loaded_bases():
        mid = status.model_id.replace(sys.argv[1].rstrip("/") + "/", "")  # a shipped folder named by absolute path
        copies[mid] = copies.get(mid, 0) + 1
else:  # the code before: one loaded copy per spec key
    for status in manager.loaded():
        mid = status.model_id.replace(sys.argv[1].rstrip("/") + "/", "")  # a shipped folder named by absolute path
        copies[mid] = copies.get(mid, 0) + 1
print(json.dumps({"rows": rows, "copies": copies, "resident": manager.resident_bytes(),
                  "rss": psutil.Process().memory_info().rss,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def run(code_dir: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k.startswith(("WORKBENCH", "HOME", "HF_", "TRANSFORMERS"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    out = subprocess.run([sys.executable, "-c", CHILD, str(code_dir), mode], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{mode} run in {code_dir} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def export_ref(ref: str, into: Path) -> Path:
    """The tree of git `ref` as files (git archive), without touching this checkout or the repository's worktrees."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="main", help="git ref of the code before (default: main)")
    parser.add_argument("--after", default=str(ROOT), help="folder of the code after (default: this checkout)")
    parser.add_argument("--json", default="", help="also write both runs to this file")
    args = parser.parse_args(argv)
    gib = 1024**3
    tmp = Path(tempfile.mkdtemp(prefix="bench-offline-memory-"))
    try:
        before_dir = export_ref(args.before, tmp)
        floor = run(ROOT, "baseline")
        before = run(before_dir, "offline")
        after = run(Path(args.after), "offline")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, result in ((f"before ({args.before})", before), ("after (this checkout)", after)):
        print(f"\n{name}: offline profile, every role used once in one process (CPU, float32)")
        print(f"{'role':<14}{'model':<50}{'load+1 call s':>14}{'weights MiB':>13}{'RSS after GiB':>15}  weights")
        for role, model, seconds, weight_bytes, rss, kind in result["rows"]:
            print(f"{role:<14}{model[:48]:<50}{seconds:>14.1f}{weight_bytes / 2**20:>13.1f}{rss / gib:>15.2f}  {kind}")
    print(f"\n{'copies of each base model loaded':<50}{'before':>8}{'after':>8}")
    for model in sorted(set(before["copies"]) | set(after["copies"])):
        print(f"{model[:48]:<50}{before['copies'].get(model, 0):>8}{after['copies'].get(model, 0):>8}")
    print(f"\n{'process':<44}{'RSS GiB':>10}{'peak GiB':>10}{'peak ratio':>12}")
    print(f"{'floor: import torch, transformers, diffusers':<44}{floor['rss'] / gib:>10.2f}{floor['peak'] / gib:>10.2f}"
          f"{'':>12}")
    print(f"{'before: ' + args.before:<44}{before['rss'] / gib:>10.2f}{before['peak'] / gib:>10.2f}{1.0:>12.2f}")
    ratio = after["peak"] / before["peak"]
    print(f"{'after: this checkout':<44}{after['rss'] / gib:>10.2f}{after['peak'] / gib:>10.2f}{ratio:>12.2f}")
    once = all(n == 1 for n in after["copies"].values())
    print(f"\nafter: each base model loaded once: {'yes' if once else 'NO'}; peak RSS {ratio:.0%} of before "
          f"(target at most 60%): {'met' if ratio <= 0.60 else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"floor": floor, "before": before, "after": after}, indent=1))


if __name__ == "__main__":
    main()
