"""The behaviour-shift tab gives the same views and records the same events in both front ends: its inputs and
actions are declared once (workbench.shift.forms), so `shift_analyse` is one flow with one set of named inputs."""

from __future__ import annotations

import re

from tests.parity import Recorder, app_test, no_errors

METHOD = "gradient × input (the paper's)"
PARTS = ["attribution", "attention", "ffn"]
VIEWS = [METHOD, 1, 8, "all", "all", "instruct", 0, 0]


def untimed(text: str) -> str:
    """The summary without its timings (the only part that differs between two runs)."""
    text = re.sub(r"\d+\.\d s\b", "_ s", " ".join(text.split()))
    return re.sub(r"\| [\d.]+ / [\d.]+ \|", "| _ |", text)


def test_analyse_attribute_export_and_views_record_the_same_events(client, fake_ctx):
    from workbench.shift.forms import AnalysisInputs
    from workbench.forms import default

    events = Recorder(fake_ctx)
    baseline = default(AnalysisInputs, "ig_baseline")
    client.predict("fake", "list three fruits", "", True, 2, 4, [METHOD], PARTS, *VIEWS, "shared", baseline,
                   api_name="/shift_analyse")
    attributed = client.predict("fake", *VIEWS, "shared", api_name="/shift_attribute")
    client.predict(api_name="/shift_export")
    redrawn = client.predict(*VIEWS, "per model", api_name="/shift_views")

    at = app_test(fake_ctx, "shift")
    at.run()
    at.text_area(key="shift_prompt").set_value("list three fruits")
    at.slider(key="shift_max_new").set_value(2)
    at.slider(key="shift_ig_steps").set_value(4)
    at.multiselect(key="shift_methods").set_value([METHOD])
    at.button[0].click()  # the form's Analyse
    at.run()
    no_errors(at)
    summary = (" ".join(m.value for m in at.markdown))
    assert untimed(attributed[0]) in untimed(summary) and "list three fruits" in summary
    at.radio(key="shift_scale").set_value("per model")
    at.button(key="shift_update").click().run()
    no_errors(at)
    assert len(at.get("plotly_chart")) == len([p for p in redrawn[1:-1] if p is not None])

    recorded = events.assert_same("shift")
    assert [name for name, _, _ in recorded] == ["shift_analyse", "shift_attribute", "shift_export", "shift_views"]
    assert recorded[0][1]["prompt"] == "list three fruits" and recorded[0][1]["methods"] == [METHOD]
    assert recorded[0][1]["ig_baseline"] == baseline and recorded[3][1]["scale"] == "per model"
