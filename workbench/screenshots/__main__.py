"""python -m workbench.screenshots SCENARIO.yaml [--url URL] [--only NAME ...] [--out DIR]

Starts the app on the scenario's profile (or uses the running one at --url), drives it in Debian's headless
Chromium through the scenario's steps, and saves captioned PNGs and manifest.json. Run from anywhere; the app
is started from the repository root."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.screenshots", description=__doc__.splitlines()[2])
    parser.add_argument("scenario", help="a scenario YAML file (e.g. docs/screenshots.yaml)")
    parser.add_argument("--url", default=None, help="use the app already running here instead of starting one")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="take only these shots")
    parser.add_argument("--out", default=None, help="folder for the PNGs and manifest (default: the scenario's out)")
    parser.add_argument("--check", action="store_true", help="only validate the scenario file")
    args = parser.parse_args(argv)

    from workbench.screenshots.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.scenario}: OK ({len(scenario.shots)} shots)")
        return 0
    from workbench.screenshots.runner import run

    try:
        manifest = run(scenario, url=args.url, only=args.only, out=args.out)
    except (ValueError, RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
