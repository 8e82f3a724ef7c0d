"""A rendered round at a glance: the grid (original first, then one tile per candidate with its total), one
plotly chart of every metric for every image (conflicts between metrics show), the full per-metric table, sorting
by any metric, and the round as a ZIP (images as PNG with their provenance in a text chunk, prompts, scores and
provenance as JSON). The tab and the batch CLI use the same functions."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from workbench.t2i.scoring import METRICS, RANDOM_NOTE, format_value, metrics_present, scale_factor, scale_note
from workbench.storage import export_folder

SORT_KEYS = ("candidate order", "weighted total", *METRICS)


def label(index: int) -> str:
    """How the grid, the table, the ZIP and the heatmap name image `index` (0: the original prompt's)."""
    return "original" if index == 0 else f"#{index}"


def _items(rendered: Any) -> list[dict[str, Any]]:
    """The original then each rendered candidate: label, prompt, image, scores (ImageScores), provenance."""
    items = [{"label": label(0), "index": 0, "prompt": rendered.original.prompt, "image": rendered.original.image,
              "scores": rendered.original_scores, "provenance": rendered.original.provenance}]
    for i, (img, sc) in enumerate(zip(rendered.images, rendered.scores)):
        items.append({"label": label(i + 1), "index": i + 1, "prompt": img.prompt, "image": img.image, "scores": sc,
                      "provenance": img.provenance})
    return items


def _value(item: dict[str, Any], key: str) -> float | None:
    if key == "weighted total":
        return item["scores"].total.value if item["scores"].total else None
    score = item["scores"].scores.get(key)
    return score.value if score else None


def order(rendered: Any, sort_by: str = "candidate order") -> list[int]:
    """Candidate positions (1-based) in display order: by `sort_by` descending, missing values last."""
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort by must be one of {', '.join(SORT_KEYS)}, got {sort_by!r}")
    cands = _items(rendered)[1:]
    if sort_by == "candidate order":
        return [c["index"] for c in cands]
    return [c["index"] for c in sorted(cands, key=lambda c: (_value(c, sort_by) is None, -(_value(c, sort_by) or 0)))]


def grid(rendered: Any, sort_by: str = "candidate order") -> list[tuple[Any, str]]:
    """(image, caption) tiles: the original first, then the candidates in `sort_by` order."""
    items = _items(rendered)
    random = any(i["provenance"].random_weights for i in items)
    note = f" · {RANDOM_NOTE}" if random else ""
    tiles = [(items[0]["image"], f"original (same seed){note}")]
    for pos in order(rendered, sort_by):
        item = items[pos]
        total = format_value(_value(item, "weighted total"))
        shown = f"{sort_by} {format_value(_value(item, sort_by))} · " if sort_by not in ("candidate order",
                                                                                           "weighted total") else ""
        tiles.append((item["image"], f"{item['label']} · {shown}total {total} · {item['prompt'][:90]}{note}"))
    return tiles


def table(rendered: Any, sort_by: str = "candidate order") -> tuple[list[str], list[list[Any]]]:
    """(columns, rows): one row per image, one column per metric, the weighted total beside them."""
    items = _items(rendered)
    shown = metrics_present([i["scores"] for i in items])
    columns = ["image", *shown, "weighted total", "prompt"]
    rows = []
    for pos in [0, *order(rendered, sort_by)]:
        item = items[pos]
        rows.append([item["label"], *[format_value(_value(item, m)) for m in shown],
                     format_value(_value(item, "weighted total")), item["prompt"]])
    return columns, rows


def chart(rendered: Any) -> Any:
    """Grouped bars: every metric the profile has (each scaled as in the total, its scale in its name) for the
    original and each candidate, so a candidate that wins one metric and loses another is visible at once."""
    import plotly.graph_objects as go

    fig = go.Figure()
    # a metric no image has a value for (e.g. the aesthetic where the scorer has no head: "n/a" in the table, with
    # the reason) gets no empty group of bars
    shown = [m for m in metrics_present([i["scores"] for i in _items(rendered)])
             if any(_value(item, m) is not None for item in _items(rendered))]
    names = [m + scale_note(m) for m in shown] + ["weighted total"]
    for item in _items(rendered):
        values = []
        for m in [*shown, "weighted total"]:
            v = _value(item, m)
            values.append(None if v is None else v * scale_factor(m))
        fig.add_bar(name=item["label"], x=names, y=values,
                    hovertext=[item["prompt"][:120]] * len(names), hoverinfo="text+y")
    random = any(i["provenance"].random_weights for i in _items(rendered))
    title = "Every metric per image" + (f" ({RANDOM_NOTE})" if random else "")
    fig.update_layout(barmode="group", title=title, yaxis_title="score (scaled as named)", height=360,
                      margin=dict(l=40, r=10, t=50, b=40), legend_title_text="image")
    return fig


def round_record(rendered: Any, root_prompt: str, round_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce and reread the round, as JSON."""
    items = _items(rendered)
    return {
        "root_prompt": root_prompt, "round": round_info or {}, "stopped": rendered.stopped,
        "warnings": list(rendered.warnings), "notes": list(rendered.notes),
        "round_image_diversity": rendered.round_diversity,
        "images": [{"label": it["label"], "file": f"{it['index']:02d}_{'original' if it['index'] == 0 else 'candidate'}.png",
                    "prompt": it["prompt"], "scores": it["scores"].to_dict(), "provenance": it["provenance"].to_dict()}
                   for it in items],
        "not_rendered": rendered.prompts[len(rendered.images):],
    }


def write_round_zip(rendered: Any, root_prompt: str, round_info: dict[str, Any] | None = None,
                    folder: str | Path | None = None) -> Path:
    """The round as a ZIP: PNGs (provenance JSON in a `provenance` text chunk), round.json, prompts.txt."""
    from PIL.PngImagePlugin import PngInfo

    record = round_record(rendered, root_prompt, round_info)
    folder = Path(folder or export_folder("t2i-round-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t2i_round.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for item, meta in zip(_items(rendered), record["images"]):
            info = PngInfo()
            info.add_text("prompt", item["prompt"])
            info.add_text("provenance", json.dumps(meta["provenance"], ensure_ascii=False))
            buffer = io.BytesIO()
            item["image"].save(buffer, format="PNG", pnginfo=info)
            zf.writestr(meta["file"], buffer.getvalue())
        zf.writestr("round.json", json.dumps(record, indent=2, ensure_ascii=False))
        zf.writestr("prompts.txt", "\n".join(f"{m['label']}\t{m['prompt']}" for m in record["images"]) + "\n")
    return path
