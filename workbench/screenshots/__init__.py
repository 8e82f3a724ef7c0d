"""Scripted screenshots of the app: `python -m workbench.screenshots SCENARIO.yaml` (see scenario.py for the
format). Playwright and Pillow are imported only when a scenario runs."""
