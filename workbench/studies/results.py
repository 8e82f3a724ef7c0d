"""A study's results for the researcher: tables (pandas), charts (plotly) and exports (CSV, JSONL, Parquet,
and DPO preference pairs in the prompt/chosen/rejected format TRL's DPOTrainer reads).

Exports name participants by pseudonym (`CODE-P001`, join order), never by their random id, which is their
credential; every row carries the study's code, seed and file hash so results stay tied to the exact study.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from workbench.storage import export_folder


@dataclass
class StudyData:
    study: Any
    participants: Any  # pandas DataFrames
    responses: Any
    events: Any


def pseudonym(code: str, number: int) -> str:
    return f"{code}-P{number + 1:03d}"


def load(store, study) -> StudyData:
    import pandas as pd

    people = store.table("participants", study.code)
    names = {p["id"]: pseudonym(study.code, p["number"]) for p in people}
    first = {p["id"]: json.loads(p["conditions"])[0] if json.loads(p["conditions"]) else "" for p in people}
    participants = pd.DataFrame([{
        "participant": names[p["id"]], "conditions": " > ".join(json.loads(p["conditions"])),
        "condition": first[p["id"]], "current_step": p["current_step"], "finished": p["finished_at"] is not None,
        "consented_at": p["consented_at"], "finished_at": p["finished_at"]} for p in people],
        columns=["participant", "conditions", "condition", "current_step", "finished", "consented_at", "finished_at"])
    rows = []
    for r in store.table("responses", study.code):
        payload = json.loads(r["payload"])
        row = {"study": study.code, "study_sha256": study.sha256, "seed": study.seed,
               "participant": names.get(r["participant_id"], "?"), "step": r["step_id"], "step_key": r["step_key"],
               "kind": r["kind"], "condition": r["condition"] or first.get(r["participant_id"], ""),
               "seconds": r["submitted_at"] - r["started_at"], "submitted_at": r["submitted_at"]}
        if r["kind"] == "task":
            row["answer"] = payload.get("answer", "")
        elif r["kind"] == "comparison":
            for key in ("chosen", "chosen_condition", "chosen_label", "rejected", "rejected_condition", "worst",
                        "worst_condition", "worst_label"):
                if key in payload:
                    row[key] = payload[key]
            row["shown_order"] = ",".join(payload.get("order", []))
        else:
            for qid, value in payload.get("answers", {}).items():
                row[f"q_{qid}"] = value
        rows.append(row)
    responses = pd.DataFrame(rows)
    def scrub(text: str | None) -> str | None:  # the participant state travels in the studies outputs
        if text:
            for pid, name in names.items():
                text = text.replace(pid, name)
        return text

    events = pd.DataFrame([{
        "id": e["id"], "study": study.code, "participant": names.get(e["participant_id"], ""),
        "step_key": e["step_key"], "condition": e["condition"], "action": e["action"], "tab": e["tab"],
        "frontend": e["frontend"], "created_at": e["created_at"], "seconds": e["seconds"],
        "error": e["error"], "error_kind": e["error_kind"], "inputs": scrub(e["inputs"]), "outputs": scrub(e["outputs"]),
        "provenance": e["provenance"]} for e in store.table("events", study.code)])
    return StudyData(study, participants, responses, events)


def progress_rows(data: StudyData) -> list[list[Any]]:
    out = []
    for cond in [c.id for c in data.study.conditions]:
        people = data.participants[data.participants["condition"] == cond] if len(data.participants) else []
        answers = data.responses[data.responses["condition"] == cond] if len(data.responses) else []
        median = float(answers["seconds"].median()) if len(answers) else None
        out.append([cond, len(people), int(people["finished"].sum()) if len(people) else 0, len(answers),
                    round(median, 1) if median is not None else None])
    return out


FREE_TEXT_COLUMNS = ["participant", "condition", "step", "question", "answer"]


def free_text_rows(data: StudyData) -> list[list[str]]:
    """Every free-text answer (task results and text questions), one row each, in submission order: what the
    dashboard shows as plain table cells (never rendered as Markdown or HTML)."""
    if not len(data.responses):
        return []
    questions = {q.id: q.text for step in data.study.steps for q in (step.questions or []) if q.type == "text"}
    rows = []
    for _, r in data.responses.sort_values("submitted_at", kind="stable").iterrows():
        where = [str(r["participant"]), str(r["condition"] or ""), str(r["step"])]
        if r["kind"] == "task" and str(r.get("answer") or "").strip():
            rows.append(where + ["(task result)", str(r["answer"])])
        elif r["kind"] == "questionnaire":
            for qid, text in questions.items():
                value = r.get(f"q_{qid}")
                if isinstance(value, str) and value.strip():
                    rows.append(where + [text, value])
    return rows


def summary_markdown(data: StudyData) -> str:
    s = data.study
    n = len(data.participants)
    done = int(data.participants["finished"].sum()) if n else 0
    return (f"**{s.title}** (`{s.code}`): {s.design} subjects, {s.method}, seed {s.seed}. {n} participant(s), "
            f"{done} finished; {len(data.responses)} answer(s), {len(data.events)} recorded event(s). "
            f"Study file sha256 `{s.sha256[:12]}`."
            + (" Within subjects: participants are counted under their first condition, answers under the "
               "condition they were given in." if s.design == "within" else ""))


def choices_figure(data: StudyData):
    import plotly.express as px

    df = data.responses
    if not len(df) or "chosen" not in df:
        return _empty("Choices per condition (no comparison answers yet)")
    df = df[df["kind"] == "comparison"].copy()
    df["chosen item"] = df.apply(lambda r: r["chosen_condition"] or r["chosen"], axis=1)
    counts = df.groupby(["step", "chosen item", "condition"]).size().reset_index(name="count")
    return px.bar(counts, x="chosen item", y="count", color="condition", barmode="group", facet_col="step",
                  title="Choices per condition: which condition's item was picked (best), by participant condition")


def likert_figure(data: StudyData):
    import pandas as pd
    import plotly.express as px

    df = data.responses
    qcols = [c for c in df.columns if c.startswith("q_")] if len(df) else []
    likert = {q.id for st in data.study.steps if st.kind == "questionnaire" for q in st.questions if q.type == "likert"}
    qcols = [c for c in qcols if c[2:] in likert]
    if not qcols:
        return _empty("Likert answers (none yet)")
    long = df.melt(id_vars=["condition"], value_vars=qcols, var_name="question", value_name="rating").dropna()
    long["question"] = long["question"].str[2:]
    long["rating"] = pd.to_numeric(long["rating"])
    counts = long.groupby(["question", "rating", "condition"]).size().reset_index(name="count")
    return px.bar(counts, x="rating", y="count", color="condition", barmode="group", facet_col="question",
                  title="Likert distributions per condition")


def time_figure(data: StudyData):
    import plotly.express as px

    df = data.responses
    if not len(df):
        return _empty("Time on task (no answers yet)")
    return px.box(df, x="step", y="seconds", color="condition", points="all",
                  title="Time on task per step and condition (seconds from the step shown to its answer)")


def _empty(title: str):
    import plotly.graph_objects as go

    return go.Figure(layout={"title": {"text": title}})


def dpo_pairs(data: StudyData) -> list[dict[str, Any]]:
    """Preference pairs from the text comparisons: pairwise gives chosen > rejected; best-worst gives best >
    every other item and every other item > worst. Extra columns say where each pair came from."""
    study = data.study
    out = []
    if not len(data.responses) or "chosen" not in data.responses:
        return out
    for _, r in data.responses[data.responses["kind"] == "comparison"].iterrows():
        step = study.step(r["step"])
        if step.media != "text":
            continue
        text = {it.id: it.text for it in step.items}
        cond = {it.id: it.condition for it in step.items}
        prompt = step.prompt or step.question
        if step.mode == "pairwise":
            pairs = [(r["chosen"], r["rejected"])]
        else:
            others = [i for i in text if i not in (r["chosen"], r["worst"])]
            pairs = [(r["chosen"], o) for o in others] + [(o, r["worst"]) for o in others] + [(r["chosen"], r["worst"])]
        for chosen, rejected in pairs:
            out.append({"prompt": prompt, "chosen": text[chosen], "rejected": text[rejected], "study": study.code,
                        "study_sha256": study.sha256, "participant": r["participant"], "step": r["step"],
                        "chosen_id": chosen, "rejected_id": rejected, "chosen_condition": cond[chosen],
                        "rejected_condition": cond[rejected]})
    return out


def export(store, study, what: str, out_dir: str | None = None) -> Path:
    from workbench.studies.flows import EXPORTS

    if what not in EXPORTS:
        raise ValueError(f"unknown export '{what}'; choose one of: {', '.join(EXPORTS)}")
    data = load(store, study)
    folder = Path(out_dir or export_folder("study-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{study.code}-{what}"
    if what == "dpo_pairs.jsonl":
        with path.open("w", encoding="utf-8") as f:
            for pair in dpo_pairs(data):
                f.write(json.dumps(pair, ensure_ascii=False) + "\n")
        return path
    name, fmt = what.split(".")
    df = data.responses if name == "responses" else data.events
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_parquet(path, index=False)
    return path
