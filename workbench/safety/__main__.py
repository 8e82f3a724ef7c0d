"""python -m workbench.safety train | eval | check "some text"

train: the offline safety head on the labelled set's training split (assets/safety/head)
finetune: the offline safety encoder, fine-tuned end to end on the same split (assets/safety/encoder);
       --validate: its validation run
eval:  the tables of fresh9 (held out), fresh8 ... fresh3, fresh2 and fresh (trained on since the ninth ... fourth
       passes), the first split (seen once, never trained on) and the rewriter corpora's held-out prompts (plain
       safe): per category precision and recall for the keyword rule alone, the classifier alone and the classifier +
       rule (the offline check), and false refusals on the hard and the plain safe prompts
check: one text through a profile's safety check, printed as the user would see it
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.safety", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train the offline safety head")
    p_train.add_argument("--out", default=None, help="folder for head.safetensors + head.json")
    p_train.add_argument("--model", default=None, help="the embedder's model (default: the offline safety role's)")
    from workbench.safety.train import LM_EMBEDDER

    p_train.add_argument("--embedder-backend", default=LM_EMBEDDER[0],
                         choices=("lm-layer-embeddings", "sentence-embeddings"),
                         help="lm-layer-embeddings (a causal LM's layer, mean-pooled: safety-head-v5 to -v7) or "
                              "sentence-embeddings (MiniLM: safety-head-v4's recipe)")
    p_train.add_argument("--layer", type=int, default=LM_EMBEDDER[1],
                         help="lm-layer-embeddings: the decoder layer read (1..)")
    p_ft = sub.add_parser("finetune", help="fine-tune the encoder end to end (the offline safety-encoder)")
    p_ft.add_argument("--validate", action="store_true",
                      help="the validation run (fresh + fresh2 carved out; thresholds on fresh3 + fresh4)")
    p_ft.add_argument("--epochs", type=int, default=None)
    p_ft.add_argument("--lr", type=float, default=None)
    p_ft.add_argument("--out", default=None, help="the folder (final) or the JSON report (--validate)")
    p_ft.add_argument("--checkpoints", default=None, help="--validate: save each epoch's classifier here")
    p_eval = sub.add_parser("eval", help="print the held-out table")
    p_eval.add_argument("--profile", default="offline")
    p_eval.add_argument("--split", choices=("fresh9", "fresh8", "fresh7", "fresh6", "fresh5", "fresh4", "fresh3",
                                            "fresh2", "fresh", "first", "rewrites", "all"),
                        default="all")
    p_eval.add_argument("--encoder", default=None,
                        help="score this fine-tuned encoder folder (safety-encoder) instead of the profile's "
                             "safety role")
    p_eval.add_argument("--head", default=None,
                        help="score this head folder (safety-head) instead of the profile's safety role")
    p_eval.add_argument("--model", default=None,
                        help="with --head or --encoder: the embedder's model (default: the profile's safety role's)")
    p_eval.add_argument("--mistakes", action="store_true",
                        help="also list the held-out prompts each row got wrong (read them, never tune on them)")
    p_check = sub.add_parser("check", help="check one text")
    p_check.add_argument("text")
    p_check.add_argument("--profile", default="offline")
    args = parser.parse_args(argv)

    from workbench.context import build_context

    if args.command == "train":
        from workbench.safety.data import SAFETY_ASSETS
        from workbench.safety.train import train

        ctx = build_context("offline")
        model_id = args.model or ctx.profile("offline").spec("safety").model_id
        layer = args.layer if args.embedder_backend == "lm-layer-embeddings" else None
        config = train(ctx.manager, model_id, args.out or SAFETY_ASSETS / "head",
                       embedder=(args.embedder_backend, layer))
        print({k: config[k] for k in ("train_prompts", "folds", "thresholds", "oof_recall", "oof_hard_refusals",
                                      "oof_plain_refusals", "weak_rule_threshold", "oof_combined_recall",
                                      "oof_combined_hard_refusals", "oof_rule_only_hard_refusals",
                                      "train_seconds")})
        return 0
    if args.command == "finetune":
        import dataclasses
        import json

        from workbench.safety.data import SAFETY_ASSETS
        from workbench.safety.finetune import EncoderSettings, final, validate

        settings = EncoderSettings()
        changes = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None}
        settings = dataclasses.replace(settings, **changes)
        if args.validate:
            report = validate(settings, args.out or "safety_validation.json", checkpoints=args.checkpoints)
            print(json.dumps({k: v for k, v in report.items() if k != "epochs"}, indent=1))
        else:
            config = final(settings, args.out or SAFETY_ASSETS / "encoder")
            print(json.dumps({k: config[k] for k in ("train_prompts", "thresholds", "weak_rule_threshold",
                                                     "epoch_losses", "threshold_set_scores", "train_seconds")}))
        return 0
    ctx = build_context(args.profile)
    if args.command == "eval" and (args.encoder or args.head):
        from backends.base import ModelSpec

        prof = ctx.profile(args.profile)
        backend, option = ("safety-encoder", "weights") if args.encoder else ("safety-head", "head")
        spec = ModelSpec(role="safety", backend=backend, model_id=args.model or prof.spec("safety").model_id,
                         options=((option, args.encoder or args.head),))
        ctx.profiles[prof.name] = prof.with_role("safety", spec)
    if args.command == "eval":
        from workbench.safety.evaluate import evaluate, format_table

        splits = (("fresh9", "fresh8", "fresh7", "fresh6", "fresh5", "fresh4", "fresh3", "fresh2", "fresh",
                   "first", "rewrites")
                  if args.split == "all" else (args.split,))
        print("\n\n".join(format_table(evaluate(ctx, args.profile, s), show_mistakes=args.mistakes) for s in splits))
        return 0
    from workbench.safety import check_text

    verdict = check_text(ctx, args.text, args.profile)
    print("safe" if verdict.safe else verdict.message())
    for reason in verdict.reasons:
        print("  -", reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
