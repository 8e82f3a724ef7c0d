"""What the behaviour-shift tab's three views show for the offline pair on the tab's default example, for one or
more instruction adapters side by side (the adapter's TRAINING.md reports it):

    OMP_NUM_THREADS=1 python -m workbench.shift.views_report ADAPTER_FOLDER [ADAPTER_FOLDER ...]

Per adapter, the tab's own flow (`flows.run_analysis`, the widgets' defaults) on `flows.EXAMPLE`: both answers;
attribution (gradient x input: the instruction's share of the importance, and the importance density); attention
(the instruction's share of attention, mean over heads and layers, and the largest per-layer difference); and the
feed-forward concepts' token overlap between base and instruct per layer (1.0 = identical tokens).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any


def report(folder: str, profile_name: str = "offline") -> dict[str, Any]:
    import numpy as np

    from workbench.context import AppContext
    from workbench.models import ModelManager
    from workbench.profiles import load_profiles
    from workbench.shift import flows
    from workbench.shift.pairs import PAIR_ROLES

    profiles = load_profiles()
    profile = profiles[profile_name]
    role = PAIR_ROLES["instruct"]
    spec = profile.roles[role]
    options = tuple((k, v) for k, v in spec.options if k != "adapter") + (("adapter", str(Path(folder).resolve())),)
    profile = dataclasses.replace(profile, roles={**profile.roles, role: dataclasses.replace(spec, options=options)})
    ctx = AppContext(manager=ModelManager(device="cpu"), profiles={**profiles, profile_name: profile},
                     default_profile=profile_name)
    started = time.perf_counter()
    d = flows.DEFAULTS
    result = flows.run_analysis(ctx, profile_name, flows.EXAMPLE, "", True, d.max_new_tokens, d.ig_steps,
                                ["gradient_x_input"], list(flows.PARTS))
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"adapter": folder, "seconds": seconds}
    for side in ("base", "instruct"):
        out[f"answer_{side}"] = result.sides[side].output_text
        out[f"instruction_share_{side}"] = float(np.mean(result.instruction_share(side, "gradient_x_input")))
        out[f"density_{side}"] = float(np.mean(result.density(side).per_input))
    attn_b, attn_i = (np.asarray(result.sides[s].attention.instruction_share) for s in ("base", "instruct"))
    out["attention_share_base"] = float(attn_b.mean())
    out["attention_share_instruct"] = float(attn_i.mean())
    out["attention_max_layer_difference"] = float(np.abs(attn_i.mean(axis=1) - attn_b.mean(axis=1)).max())
    out["ffn_overlap"] = [round(x, 3) for x in result.ffn_overlap()]
    ctx.manager.unload_all()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("adapters", nargs="+", help="adapter folders (adapter_config.json + safetensors)")
    args = parser.parse_args(argv)
    rows = [report(folder) for folder in args.adapters]
    names = [Path(r["adapter"]).name for r in rows]
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(rows))
    for key in ("answer_base", "answer_instruct", "instruction_share_base", "instruction_share_instruct",
                "density_base", "density_instruct",
                "attention_share_base", "attention_share_instruct", "attention_max_layer_difference", "seconds"):
        cells = [f"{r[key]!r}" if isinstance(r[key], str) else f"{r[key]:.3f}" for r in rows]
        print(f"| {key} | " + " | ".join(cells) + " |")
    print("\nFeed-forward concepts, token overlap base vs instruct per layer (Jaccard, 1.0 = identical):\n")
    print("| layer | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(rows))
    for layer in range(len(rows[0]["ffn_overlap"])):
        print(f"| {layer} | " + " | ".join(f"{r['ffn_overlap'][layer]:.3f}" for r in rows) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
