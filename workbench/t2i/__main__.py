"""`python -m workbench.t2i batch ...` refines, renders and scores a prompt file (resumable; shards under
`accelerate launch -m workbench.t2i batch ...`); `python -m workbench.t2i train ...` trains a LoRA rewriter;
`python -m workbench.t2i eval` compares rewriters on held-out prompts, `eval-world` on held-out world captions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from backends.base import ImageSettings, ModelSpec
from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE, PAIRS_FILE
from workbench.t2i.scoring import DEFAULT_WEIGHTS
from workbench.t2i.service import REWRITER_KINDS, RewriterChoice


def _weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    weights = dict(DEFAULT_WEIGHTS)
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--weights takes metric=value pairs separated by commas, got {part!r}") from None
    return weights


def _template(path: str | None) -> str:
    if not path:
        return DEFAULT_SYSTEM_TEMPLATE
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="offline, cpu, gpu, paper, fake (default: chosen by machine)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps or auto")
    p.add_argument("--steps", type=int, default=20, help="diffusion steps")
    p.add_argument("--size", type=int, default=512, help="image width and height (multiple of 8)")
    p.add_argument("--image-seed", type=int, default=0, help="one seed for the original and every candidate")
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--weights", default=None, help="weighted total, e.g. align_original=1,aesthetic=0.5")
    p.add_argument("--system-template", default=None, help="a text file with the rewriter's system template")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench.t2i", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("batch", help="refine, render and score every prompt of a file")
    b.add_argument("prompts", help="a .txt file (one prompt per line) or .jsonl with a 'prompt' field")
    b.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    b.add_argument("--candidates", "--n", dest="n", type=int, default=4, help="candidates per prompt (1-8)")
    b.add_argument("--diversity", type=float, default=None, help="MMR trade-off, 0-1 (default: the T2I default)")
    b.add_argument("--few-shot", type=int, default=3)
    b.add_argument("--seed", type=int, default=0, help="rewriter sampling seed")
    b.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the T2I default)")
    b.add_argument("--max-new-tokens", type=int, default=96)
    b.add_argument("--facets", default="all", help="facets, one per candidate (assets/t2i_facets.yaml): 'all' (the "
                   "default), 'none' for undirected rewrites, or names joined by '+' or ',', e.g. lighting+style")
    b.add_argument("--rewriter", choices=REWRITER_KINDS, default="profile")
    b.add_argument("--role", default="", help="profile role of the rewriter (default: the role the profile names in "
                   "settings.t2i_refine.rewriter_role, else chat)")
    b.add_argument("--adapter", default="", help="a LoRA adapter folder from `train`")
    b.add_argument("--base-url", default="", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    b.add_argument("--model", default="", help="model name on that server")
    b.add_argument("--no-render", action="store_true", help="refine and flag only")
    b.add_argument("--limit", type=int, default=None, help="process at most this many new prompts")
    _add_common(b)
    t = sub.add_parser("train", help="LoRA-train a rewriter on coarse->fine pairs (+ optional rejection sampling)")
    t.add_argument("--out", required=True, help="folder for the peft adapter")
    t.add_argument("--model", default=None, help="model id (default: the profile's chat model)")
    t.add_argument("--pairs", default=str(PAIRS_FILE))
    t.add_argument("--max-steps", type=int, default=100)
    t.add_argument("--batch-size", type=int, default=2)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--lora-r", type=int, default=8)
    t.add_argument("--lora-alpha", type=int, default=16)
    t.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj", help="comma list, or all-linear")
    t.add_argument("--max-length", type=int, default=256)
    t.add_argument("--limit-pairs", type=int, default=None)
    t.add_argument("--include-heldout", action="store_true", help="also train on the evaluation's held-out pairs")
    t.add_argument("--max-fine-words", type=int, default=0,
                   help="train only on fine prompts of at most this many words (0: all; 55 fits CLIP's 77 tokens)")
    t.add_argument("--facet-pairs", default="", help="facet-tagged pairs to train on as well (each asked for with its "
                   "facet's instruction), e.g. assets/t2i_pairs/facet_pairs.jsonl")
    t.add_argument("--exclude-ids", action="append", default=[], metavar="FILE",
                   help="an ids file whose pairs are never trained on (repeatable), e.g. the validation split")
    t.add_argument("--max-seconds", type=float, default=0,
                   help="stop training after the step that passes this much wall-clock (0: no limit)")
    t.add_argument("--init-adapter", default="", help="an adapter folder from an earlier `train` to go on training "
                   "(e.g. one stopped by --max-seconds; use another --seed so the rows come in another order)")
    t.add_argument("--prompt-template", default="", help="a fixed instruction with {query}, sent as the one user turn "
                   "instead of the system template (a role's option prompt_template: train on exactly that request)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--rejection-k", type=int, default=0, help="rewrites sampled per prompt for the image reward (0: off)")
    t.add_argument("--rejection-prompts", type=int, default=8)
    t.add_argument("--rejection-steps", type=int, default=20)
    _add_common(t)
    e = sub.add_parser("eval", help="compare the rewriters on the held-out coarse prompts (one table)")
    e.add_argument("--profile", default=None, help="offline, cpu, gpu, paper, fake (default: chosen by machine)")
    e.add_argument("--n", type=int, default=4, help="candidates per prompt")
    e.add_argument("--limit", type=int, default=None, help="evaluate the first K held-out prompts only")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--offset", type=int, default=0, help="skip the first K held-out prompts (confirm on others)")
    e.add_argument("--split", default="heldout", choices=("heldout", "validation", "dev"),
                   help="heldout (final figures only), dev (prompts with no pair, settings are chosen on them) or "
                        "validation (training pairs, the earlier choice split)")
    e.add_argument("--no-further", action="store_true", help="skip the refine-further round (its diversity column)")
    e.add_argument("--systems", default="", help="comma list of rows to run (default: all)")
    e.add_argument("--json", default="", help="also write the rows (with example candidates) to this file")
    e.add_argument("--adapter", default="", help="the adapter row's LoRA folder (default: the shipped adapter)")
    e.add_argument("--set", default="", metavar="KEY=VALUE,...",
                   help="refiner settings for the guarded rows, e.g. diversity=0.3,intent_floor=0.55 (a sweep)")
    w = sub.add_parser("eval-world", help="the rewriters on held-out miniature-world coarse captions, through the "
                                          "tab's Refine, measured against the world (one table)")
    w.add_argument("--n", type=int, default=4, help="candidates per caption")
    w.add_argument("--limit", type=int, default=10, help="distinct held-out coarse captions")
    w.add_argument("--offset", type=int, default=0, help="skip the first K of them")
    w.add_argument("--seed", type=int, default=0, help="rewriter seed of the first caption (then + its index)")
    w.add_argument("--systems", default="", help="comma list of rows to run (default: all): " + ", ".join(
        ["SmolLM2-135M-Instruct", "+ offline T2I adapter", "+ world adapter (world profile default)"]))
    w.add_argument("--json", default="", help="also write the rows (with example candidates) to this file")
    w.add_argument("--level", choices=["coarse", "partial"], default="coarse",
                   help="coarse: held-out coarse captions through Refine; partial: held-out fine captions with some "
                        "attributes left out, through Refine further (are the stated ones kept?)")
    w.add_argument("--adapter", default="", help="the world adapter row's LoRA folder (default: the shipped one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "eval":
            return _eval(args)
        if args.command == "eval-world":
            return _eval_world(args)
        image = ImageSettings(steps=args.steps, width=args.size, height=args.size, seed=args.image_seed,
                              guidance_scale=args.guidance).check()
        if args.command == "batch":
            return _batch(args, image)
        return _train(args, image)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _eval(args: argparse.Namespace) -> int:
    import dataclasses

    from workbench.context import build_context
    from workbench.t2i.evaluate import SYSTEMS, evaluate, parse_overrides, table
    from workbench.t2i.service import prompt_window

    ctx = build_context(profile=args.profile)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip()) or SYSTEMS
    extra = {"adapter_dir": Path(args.adapter)} if args.adapter else {}
    rows = evaluate(ctx, ctx.default_profile, n=args.n, limit=args.limit, seed=args.seed, systems=systems,
                    progress=lambda text: print(text, file=sys.stderr, flush=True),
                    overrides=parse_overrides(args.set), offset=args.offset, further=not args.no_further,
                    split=args.split, **extra)
    window = prompt_window(ctx, ctx.default_profile)
    print(f"profile {ctx.default_profile}, {rows[0].prompts if rows else 0} {args.split} prompts from #{args.offset + 1}, "
          f"N={args.n}, "
          f"seed {args.seed}" + (f", guarded rows with {args.set}" if args.set else ""))
    print(table(rows, getattr(window, "limit", None)))
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, ensure_ascii=False),
                                   encoding="utf-8")
    return 0


def _eval_world(args: argparse.Namespace) -> int:
    import dataclasses

    from workbench.context import build_context
    from workbench.t2i.world_eval import SYSTEMS, evaluate_world
    from workbench.world.rewriter import format_rewriter_table

    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip()) or tuple(SYSTEMS)
    ctx = build_context(profile="world")
    rows = evaluate_world(ctx, systems, n=args.n, limit=args.limit, offset=args.offset, seed=args.seed,
                          progress=lambda text: print(text, file=sys.stderr, flush=True), level=args.level,
                          adapter=args.adapter)
    what = ("coarse captions", "Refine") if args.level == "coarse" else \
        ("partial captions (fine with some attributes left out)", "Refine further")
    print(f"{rows[0].prompts} held-out world {what[0]} from #{args.offset + 1} "
          f"(assets/world/rewriter_pairs/heldout_ids.txt), N={args.n}, seed {args.seed} + caption index, the T2I "
          f"tab's {what[1]}")
    print(format_rewriter_table(rows))
    for r in rows:
        p = r.provenance
        print(f"- {r.system}: profile {p['profile']}, role {p['role']}, {p['model']}"
              + (f" + adapter {p['adapter']}" if p["adapter"] else "") + (f"; {len(r.failures)} caption(s) without "
                                                                          f"a candidate" if r.failures else ""))
    for r in rows:
        for ex in r.examples[:2]:
            print(f"  {r.system} | {ex['coarse']!r} -> " + " || ".join(c["text"] for c in ex["candidates"][:2]))
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, ensure_ascii=False),
                                   encoding="utf-8")
    return 0


def _batch(args: argparse.Namespace, image: ImageSettings) -> int:
    from workbench.context import build_context
    from workbench.models import ModelLoadError
    from workbench.t2i.batch import BatchConfig, partial_state, run_batch
    from workbench.t2i.defaults import parse_facets, t2i_refine_settings

    state = partial_state()
    device = args.device
    if device is None and getattr(state, "num_processes", 1) > 1:
        device = str(state.device)  # one GPU per process under accelerate launch
    ctx = build_context(profile=args.profile, device=device)
    ctx.manager.budget_bytes  # a bad WORKBENCH_MEMORY_BUDGET_GB stops the batch here, not once per prompt
    config = BatchConfig(
        prompts_file=args.prompts, out_dir=args.out, profile=ctx.default_profile,
        rewriter=RewriterChoice(kind=args.rewriter, role=args.role, base_url=args.base_url, model=args.model,
                                adapter=args.adapter),
        refine=t2i_refine_settings(n=args.n, diversity=args.diversity, few_shot=args.few_shot, seed=args.seed,
                                   temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                                   facets=parse_facets(args.facets)),
        image=image, weights=_weights(args.weights), system_template=_template(args.system_template),
        render=not args.no_render, limit=args.limit,
    )
    try:
        summary = run_batch(ctx, config, state)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if state.is_main_process:
        print(json.dumps({"prompts": summary.total, "skipped (already done)": summary.skipped,
                          "done now (this process)": summary.done, "failed": summary.failed, **summary.outputs}, indent=2))
    return 0


def _train(args: argparse.Namespace, image: ImageSettings) -> int:
    from workbench.profiles import choose_profile, load_profiles
    from workbench.t2i.train import TrainConfig, train_rewriter

    profiles = load_profiles()
    profile = profiles[choose_profile(profiles, args.profile)]
    base = (ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": args.model, "device": args.device})
            if args.model else profile.spec("chat"))
    targets = args.target_modules if args.target_modules == "all-linear" else tuple(
        t.strip() for t in args.target_modules.split(",") if t.strip())
    config = TrainConfig(
        base=base, out_dir=args.out, pairs_file=args.pairs, max_steps=args.max_steps, batch_size=args.batch_size,
        learning_rate=args.lr, lora_r=args.lora_r, lora_alpha=args.lora_alpha, target_modules=targets,
        max_length=args.max_length, limit_pairs=args.limit_pairs, seed=args.seed,
        exclude_heldout=not args.include_heldout, max_fine_words=args.max_fine_words,
        facet_pairs_file=args.facet_pairs, exclude_ids_files=tuple(args.exclude_ids), max_seconds=args.max_seconds,
        init_adapter=args.init_adapter, system_template=_template(args.system_template),
        prompt_template=args.prompt_template, rejection_k=args.rejection_k,
        rejection_prompts=args.rejection_prompts, rejection_steps=args.rejection_steps,
        t2i=profile.spec("t2i") if args.rejection_k else None,
        scorer=profile.spec("image_text") if args.rejection_k else None,
        embedder=profile.spec("embeddings") if args.rejection_k else None,
        image=image, weights=_weights(args.weights),
    )
    result = train_rewriter(config, progress=True)
    print(json.dumps({"adapter": result.adapter_dir, "losses": result.losses[-5:], "kept": len(result.kept),
                      "use_it": f"tab: rewriter 'profile' + adapter path {result.adapter_dir}"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
