"""Command line for studies: check study files, migrate the database, export results.

    python -m workbench.studies check assets/studies/refiner_ab.yaml
    python -m workbench.studies migrate                       # create/upgrade the database (DATABASE_URL, ...)
    python -m workbench.studies export REFINER-AB responses.csv --out exports/
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.studies", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate study files; every mistake is reported with its line")
    check.add_argument("files", nargs="+")
    migrate = sub.add_parser("migrate", help="create or upgrade the study database")
    migrate.add_argument("--url", default=None, help="SQLAlchemy URL (default: DATABASE_URL, WORKBENCH_STUDIES_DB, ...)")
    export = sub.add_parser("export", help="write a study's results")
    export.add_argument("code")
    export.add_argument("what", help="responses.csv|.jsonl|.parquet, events.csv|.jsonl|.parquet or dpo_pairs.jsonl")
    export.add_argument("--out", default=".")
    export.add_argument("--url", default=None)
    args = parser.parse_args(argv)

    if args.command == "check":
        from workbench.studies.definition import StudyError, load_study

        failed = 0
        for path in args.files:
            try:
                study = load_study(path)
            except StudyError as exc:
                failed += 1
                print(exc, file=sys.stderr)
            else:
                print(f"{path}: OK (code {study.code}, {len(study.conditions)} conditions, {study.design} subjects, "
                      f"{study.method}, seed {study.seed}, {len(study.steps)} steps)")
        return 1 if failed else 0

    from workbench.studies.store import StudyStore, current_revision

    store = StudyStore(args.url)
    if args.command == "migrate":
        print(f"{store.url}: schema at revision {current_revision(store.engine)}")
        return 0
    from workbench.studies import results
    from workbench.studies.definition import parse_study

    text = store.study_text(args.code)
    if text is None:
        print(f"error: no data for study '{args.code}' in {store.url}", file=sys.stderr)
        return 1
    try:
        path = results.export(store, parse_study(text, source=args.code, check_files=False), args.what, args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
