"""The issue's "done when" in a real browser: three participants complete the example two-condition study in
Chromium, the researcher logs in, and the dashboard shows their choices and Likert answers per condition."""

import json
import shutil

import pytest

from tests.app_process import ROOT


@pytest.mark.browser
@pytest.mark.slow
def test_three_participants_in_chromium_then_the_dashboard(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install -y chromium)")
    from workbench.screenshots.runner import run
    from workbench.screenshots.scenario import load_scenario
    from workbench.studies import results
    from workbench.studies.definition import find_study
    from workbench.studies.store import StudyStore, sqlite_url

    scenario = load_scenario(ROOT / "docs" / "study_demo.yaml")
    db = tmp_path / "demo.sqlite"
    scenario.env["WORKBENCH_STUDIES_DB"] = str(db)
    manifest = json.loads(run(scenario, out=tmp_path / "shots").read_text())
    assert [s["name"] for s in manifest["shots"]] == ["participant1_done", "participant2_done", "participant3_done",
                                                      "dashboard"]

    store = StudyStore(sqlite_url(db))
    data = results.load(store, find_study("REFINER-AB"))
    assert data.participants["finished"].tolist() == [True, True, True]
    assert sorted(data.participants["condition"]) in (["manual", "manual", "refiner"], ["manual", "refiner", "refiner"])
    survey = data.responses[data.responses["step"] == "survey"]
    assert survey["q_ease"].tolist() == [4, 4, 4] and survey["q_satisfied"].tolist() == [5, 5, 5]
    assert survey["q_control"].tolist() == [6, 6, 6]
    best_worst = data.responses[data.responses["step"] == "rank_texts"]
    assert (best_worst["chosen_label"] == "A").all() and (best_worst["worst_label"] == "D").all()
    # Per condition, as the dashboard shows it: every participant's answers sit under their own condition.
    rows = {r[0]: r for r in results.progress_rows(data)}
    assert rows["refiner"][2] + rows["manual"][2] == 3 and rows["refiner"][3] + rows["manual"][3] == 15
    # Browser sessions were mapped to participants: each one's events carry their id; the dashboard session's don't.
    events = store.table("events", "REFINER-AB")
    assert len(events) == 3 * 6 and len({e["session_id"] for e in events}) == 3
    assert {e["frontend"] for e in events} == {"gradio"}
    assert store.integrity_check() == "ok"
