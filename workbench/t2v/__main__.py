"""`python -m workbench.t2v evolve PROMPTS --out DIR` evolves every prompt of a file and writes SFT/DPO pairs
(resumable; shards under `accelerate launch -m workbench.t2v evolve ...`); `export DIR` re-exports the pairs with
other filters; `train --sft ... --dpo ...` runs SFT then DPO with LoRA on the profile's chat model."""

from __future__ import annotations

import argparse
import json
import sys

from workbench.common.choice import MODEL_KINDS as REWRITER_KINDS
from workbench.t2v.service import RewriterChoice
from workbench.t2v.evolve import EvolveSettings
from workbench.t2v.pairs import PairFilter
from workbench.t2v.rewards import DEFAULT_WEIGHTS


def _pairs(text: str | None, base: dict[str, float] | None = None, flag: str = "--weights") -> dict[str, float]:
    out = dict(base or {})
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{flag} takes metric=value pairs separated by commas, got {part!r}") from None
    return out


def _filter(args: argparse.Namespace) -> PairFilter:
    return PairFilter(thresholds=_pairs(args.thresholds, flag="--thresholds"), min_margin=args.min_margin,
                      max_words=args.max_words)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench.t2v", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add_filter(p: argparse.ArgumentParser) -> None:
        p.add_argument("--thresholds", default="", help="chosen minimums, e.g. align_original=0.2,temporal=0.5")
        p.add_argument("--min-margin", type=float, default=0.02, help="chosen total - rejected total")
        p.add_argument("--max-words", type=int, default=130, help="longest chosen prompt")

    e = sub.add_parser("evolve", help="evolve every prompt of a file, then export SFT/DPO pairs")
    e.add_argument("prompts", help="a .txt file (one idea per line) or .jsonl with a 'prompt' field")
    e.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    e.add_argument("--profile", default=None)
    e.add_argument("--device", default=None)
    e.add_argument("--rounds", type=int, default=3)
    e.add_argument("--population", type=int, default=3)
    e.add_argument("--top-k", type=int, default=3)
    e.add_argument("--patience", type=int, default=1)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--temperature", type=float, default=0.9)
    e.add_argument("--rewriter", choices=[k for k in REWRITER_KINDS if k != "baseline"], default="profile")
    e.add_argument("--role", default="", help="profile role of the rewriter (default: the profile's video rewriter, "
                   "as in the tab: t2v_rewriter on offline, else chat)")
    e.add_argument("--base-url", default="")
    e.add_argument("--model", default="")
    e.add_argument("--weights", default="", help="e.g. align_original=1.3,dynamic=1.1")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--no-previews", action="store_true")
    add_filter(e)

    x = sub.add_parser("export", help="write sft.jsonl and dpo.jsonl from an evolve folder with other filters")
    x.add_argument("--profile", default=None, help="whose safety role re-checks every exported prompt")
    x.add_argument("out", help="the folder `evolve` wrote")
    add_filter(x)

    t = sub.add_parser("train", help="SFT then DPO with LoRA (TRL + peft) on the profile's chat model")
    t.add_argument("--profile", default=None)
    t.add_argument("--role", default="chat")
    t.add_argument("--sft", default=None, help="sft.jsonl (prompt/completion)")
    t.add_argument("--dpo", default=None, help="dpo.jsonl (prompt/chosen/rejected)")
    t.add_argument("--out", required=True, help="adapter folder to write")
    t.add_argument("--sft-steps", type=int, default=50)
    t.add_argument("--dpo-steps", type=int, default=50)
    t.add_argument("--batch-size", type=int, default=2)
    t.add_argument("--max-length", type=int, default=256)
    t.add_argument("--beta", type=float, default=0.1)
    v = sub.add_parser("eval", help="compare the video rewriters on the held-out ideas and the unsafe ideas (one "
                       "table)")
    v.add_argument("--profile", default=None)
    v.add_argument("--limit", type=int, default=None, help="evaluate the first K held-out ideas only")
    v.add_argument("--unsafe-limit", type=int, default=None, help="evaluate the first K unsafe ideas only")
    v.add_argument("--n", type=int, default=2, help="rewrites per idea for the diversity column")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--systems", default="", help="comma list of rows to run (default: all)")
    v.add_argument("--adapter", default="", help="the adapter row's LoRA folder (default: the profile's role)")
    v.add_argument("--json", default="", help="also write the rows (with examples) to this file")
    r = sub.add_parser("train-rewriter", help="LoRA-train the video-prompt rewriter on idea -> video prompt pairs "
                       "(the T2I adapter's recipe: peft + TRL SFT)")
    r.add_argument("--profile", default=None)
    r.add_argument("--role", default="chat", help="the profile role whose model is adapted")
    r.add_argument("--out", required=True, help="folder for the peft adapter")
    r.add_argument("--pairs", default=None, help="idea/prompt jsonl (default: assets/t2v_pairs/pairs.jsonl)")
    r.add_argument("--heldout", default=None, help="ids never trained on (default: assets/t2v_pairs/heldout_ids.txt)")
    r.add_argument("--max-steps", type=int, default=150)
    r.add_argument("--batch-size", type=int, default=4)
    r.add_argument("--lr", type=float, default=3e-4)
    r.add_argument("--lora-r", type=int, default=8)
    r.add_argument("--lora-alpha", type=int, default=16)
    r.add_argument("--target-modules", default="all-linear", help="comma list, or all-linear")
    r.add_argument("--max-length", type=int, default=192)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-minutes", type=float, default=0, help="stop after this many minutes of training (0: none)")
    return parser


def _eval(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from workbench.context import build_context
    from workbench.t2v.evaluate import SYSTEMS, evaluate, table

    ctx = build_context(args.profile)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip()) or SYSTEMS
    rows = evaluate(ctx, ctx.default_profile if args.profile is None else args.profile, n=args.n, limit=args.limit,
                    seed=args.seed, systems=systems, adapter_dir=Path(args.adapter) if args.adapter else None,
                    unsafe_limit=args.unsafe_limit, progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(f"profile {args.profile or ctx.default_profile}, {rows[0].prompts if rows else 0} held-out ideas, "
          f"{max((r.unsafe_prompts for r in rows), default=0)} unsafe ideas, n={args.n}, seed {args.seed}")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, ensure_ascii=False),
                                   encoding="utf-8")
    return 0


def _train_rewriter(args: argparse.Namespace) -> int:
    from workbench.context import build_context
    from workbench.common.rewriter_train import TrainConfig, train_rewriter
    from workbench.t2v.rewriter import VIDEO_HELDOUT_FILE, VIDEO_PAIRS_FILE, VIDEO_REWRITER_TEMPLATE

    ctx = build_context(args.profile)
    modules = args.target_modules if args.target_modules == "all-linear" else tuple(
        m.strip() for m in args.target_modules.split(",") if m.strip())
    config = TrainConfig(base=ctx.profile(args.profile).spec(args.role), out_dir=args.out,
                         pairs_file=args.pairs or str(VIDEO_PAIRS_FILE),
                         heldout_file=args.heldout or str(VIDEO_HELDOUT_FILE),
                         prompt_template=VIDEO_REWRITER_TEMPLATE, system_template="", max_steps=args.max_steps,
                         batch_size=args.batch_size, learning_rate=args.lr, lora_r=args.lora_r,
                         lora_alpha=args.lora_alpha, target_modules=modules, max_length=args.max_length,
                         seed=args.seed, max_seconds=args.max_minutes * 60)
    result = train_rewriter(config, progress=True)
    print(json.dumps({"adapter": result.adapter_dir, "steps": len(result.losses), "max_steps": result.sft_steps,
                      "first_loss": result.losses[0] if result.losses else None,
                      "last_loss": result.losses[-1] if result.losses else None,
                      "seconds": result.provenance.settings.get("seconds")}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train-rewriter":
            return _train_rewriter(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "export":
            from workbench.context import build_context
            from workbench.safety import checker
            from workbench.t2v.batch import export_from_records

            safety = checker(build_context(args.profile), args.profile)
            print(json.dumps({k: v for k, v in export_from_records(args.out, _filter(args), safety).items()},
                             indent=2))
            return 0
        from workbench.context import build_context

        if args.command == "evolve":
            from workbench.t2v.batch import T2VBatchConfig, run_batch

            ctx = build_context(args.profile, args.device)
            config = T2VBatchConfig(
                prompts_file=args.prompts, out_dir=args.out, profile=args.profile,
                rewriter=RewriterChoice(kind=args.rewriter, role=args.role, base_url=args.base_url, model=args.model),
                evolve=EvolveSettings(rounds=args.rounds, population=args.population, top_k=args.top_k,
                                      patience=args.patience, seed=args.seed, temperature=args.temperature),
                weights=_pairs(args.weights, DEFAULT_WEIGHTS), pair_filter=_filter(args),
                save_previews=not args.no_previews, limit=args.limit)
            summary = run_batch(ctx, config)
            print(json.dumps(vars(summary), indent=2, default=str))
            return 0 if summary.failed == 0 else 1
        from workbench.t2v.train import T2VTrainConfig, train_rewriter

        ctx = build_context(args.profile)
        result = train_rewriter(T2VTrainConfig(base=ctx.profile(args.profile).spec(args.role), out_dir=args.out,
                                               sft_file=args.sft, dpo_file=args.dpo, sft_steps=args.sft_steps,
                                               dpo_steps=args.dpo_steps, batch_size=args.batch_size,
                                               max_length=args.max_length, beta=args.beta))
        print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=2))
        return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
