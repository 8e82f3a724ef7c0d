"""Promptor from the command line:

  python -m workbench.promptor scripts [--profile offline] [--no-capable] [--only NAME ...]
      run the scripted designers (assets/promptor/designers.yaml) and print the table
  python -m workbench.promptor corpus [--profile offline] [--split heldout] [--misses]
      the offline interpreter's intent and field accuracy on the labelled corpus (assets/promptor/corpus.yaml)
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.promptor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    scripts = sub.add_parser("scripts", help="run the scripted designers and print the table")
    scripts.add_argument("--profile", default="offline")
    scripts.add_argument("--no-capable", action="store_true", help="skip the capable (OpenAI API) stand-in")
    scripts.add_argument("--only", nargs="*", default=None, help="script names")
    corpus = sub.add_parser("corpus", help="interpreter accuracy on the labelled corpus")
    corpus.add_argument("--profile", default="offline")
    corpus.add_argument("--split", default="heldout", choices=("train", "heldout", "both"))
    corpus.add_argument("--misses", action="store_true", help="print every wrong intent or field")
    args = parser.parse_args(argv)

    from workbench.context import build_context

    ctx = build_context(profile=args.profile)
    if args.command == "scripts":
        from workbench.promptor.scripts import run_all, table

        results = run_all(ctx, args.profile, capable=not args.no_capable, names=args.only)
        print(table(results))
        failed = [f"{r.name} ({r.backend})" for r in results if not r.passed]
        print(f"\n{len(results) - len(failed)}/{len(results)} runs met their expectations"
              + (": failed " + ", ".join(failed) if failed else ""))
        return 1 if failed else 0
    from workbench.promptor import corpus as corpus_mod
    from workbench.promptor.flows import PromptorService
    from workbench.promptor.rules import LocalInterpreter

    items = corpus_mod.load_corpus()
    splits = ["train", "heldout"] if args.split == "both" else [args.split]
    local = PromptorService(ctx).local_interpreter(args.profile)
    scores = []
    for split in splits:
        scores.append(corpus_mod.evaluate(local, items, split))
        scores.append(corpus_mod.evaluate(LocalInterpreter(corpus=[]), items, split))  # the rules alone
    n_train = sum(1 for m in items if m["split"] == "train")
    print(f"{len(items)} labelled messages ({n_train} train, {len(items) - n_train} held out)\n")
    print(corpus_mod.table(scores))
    if args.misses:
        for s in scores:
            print(f"\n{s.split} · {s.interpreter}:")
            print("\n".join("  " + m for m in s.misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
