"""Cached examples: precomputed results each tab can show without a GPU.

Shown first (the tab's "Cached examples" panel opens by itself) when the GPU cannot be had: the ZeroGPU quota
is used up, or the Space runs on CPU hardware; and always there for a user who picks one. Each tab's results
live as small files in `assets/examples/<tab>/` (an `examples.json` plus PNGs), made by
`python assets/examples/make_examples.py` and labelled with how they were made (profile, models, commit,
package versions, date). A new tab adds its results with `save_examples` and shows them with the helpers in
`pages/_examples.py`; nothing else changes.

We do not use Gradio's `cache_examples`: it runs the tab's function at start-up to fill its cache, which on a
Space is GPU time (quota) or impossible (CPU hardware). These results are computed offline and only read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.gpu import gpu_unavailable_reason
from workbench.text import code_span, escape_markdown

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
INDEX = "examples.json"


@dataclass
class CachedExample:
    title: str
    inputs: dict[str, Any]  # what the user would have entered (shown as a small table)
    sections: list[str] = field(default_factory=list)  # Markdown, as the tab shows its results
    images: list[tuple[str, str]] = field(default_factory=list)  # (file name in the tab's folder, caption)


@dataclass
class ExamplesPanel:
    """The panel's state on page load: open by itself when the GPU is unavailable."""

    open: bool
    note: str  # why it is open (if it is) and how the results were made
    titles: list[str]


@dataclass
class ExampleView:
    markdown: str
    images: list[tuple[Any, str]]  # (PIL image, caption)


def tab_dir(tab: str, root: Path | None = None) -> Path:
    return (root or EXAMPLES_DIR) / tab


def load_examples(tab: str, root: Path | None = None) -> tuple[list[CachedExample], dict[str, Any]]:
    """(examples, provenance) of a tab; ([], {}) when it has none yet."""
    path = tab_dir(tab, root) / INDEX
    if not path.exists():
        return [], {}
    data = json.loads(path.read_text(encoding="utf-8"))
    examples = [CachedExample(title=e["title"], inputs=e.get("inputs", {}), sections=e.get("sections", []),
                              images=[tuple(i) for i in e.get("images", [])]) for e in data.get("examples", [])]
    return examples, data.get("provenance", {})


def save_examples(tab: str, examples: list[CachedExample], provenance: dict[str, Any],
                  images: dict[str, Any] | None = None, root: Path | None = None) -> Path:
    """Write a tab's examples (and its PIL `images` by file name) to its folder; returns the index path."""
    folder = tab_dir(tab, root)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for name, image in (images or {}).items():
        image.save(folder / name, optimize=True)
    path = folder / INDEX
    path.write_text(json.dumps({"provenance": provenance, "examples": [vars(e) for e in examples]}, indent=1,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def provenance_note(provenance: dict[str, Any]) -> str:
    if not provenance:
        return ""
    models = ", ".join(f"{role}: {code_span(m)}" for role, m in sorted(provenance.get("models", {}).items()))
    text = (f"Precomputed with the `{provenance.get('profile', '?')}` profile on {provenance.get('made', '?')} "
            f"(commit `{provenance.get('commit', '?')}`, {provenance.get('versions', '')}) by "
            f"`{provenance.get('command', 'python assets/examples/make_examples.py')}`.")
    if models:
        text += f" Models: {models}."
    if provenance.get("note"):
        text += f" **{provenance['note']}**"
    return text


def panel(tab: str, root: Path | None = None) -> ExamplesPanel:
    """The tab's panel on page load."""
    examples, provenance = load_examples(tab, root)
    reason = gpu_unavailable_reason()
    lines = []
    if reason:
        lines.append(f"⚠️ **No GPU right now: {reason}.** These precomputed results show what this tab does.")
    if not examples:
        lines.append("This tab has no cached examples yet.")
    else:
        lines.append(provenance_note(provenance))
    return ExamplesPanel(open=bool(reason), note="\n\n".join(lines), titles=[e.title for e in examples])


def show_example(tab: str, title: str, root: Path | None = None) -> ExampleView:
    """One cached example as the tab would show it: its inputs, its results, its images."""
    from PIL import Image

    examples, provenance = load_examples(tab, root)
    if not title:
        return ExampleView("", [])
    match = next((e for e in examples if e.title == title), None)
    if match is None:
        raise ValueError(f"no cached example named {title!r}; choose one of: {', '.join(e.title for e in examples)}")
    rows = "\n".join(f"| {escape_markdown(str(k))} | {escape_markdown(str(v))} |" for k, v in match.inputs.items())
    parts = [f"**Cached example** (not computed now): {escape_markdown(match.title)}",
             "| input | value |\n|---|---|\n" + rows if rows else "", *match.sections, provenance_note(provenance)]
    folder = tab_dir(tab, root)
    images = []
    for name, caption in match.images:
        with Image.open(folder / name) as image:
            images.append((image.copy(), caption))
    return ExampleView("\n\n".join(p for p in parts if p), images)
