"""The Studies tab's researcher actions record the same events in both front ends, and only on clicks: a
Streamlit rerun records nothing (before, every rerun logged a login and a dashboard view)."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors

TOKEN = "parity-token-5c1e"
YAML = "id: x\nsteps: []\n"


def test_login_check_and_reruns_record_the_same_events(client, fake_ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "studies.sqlite"))
    monkeypatch.setenv("WORKBENCH_RESEARCHER_TOKEN", TOKEN)
    events = Recorder(fake_ctx)
    client.predict(TOKEN, api_name="/studies_login")
    gradio_verdict = client.predict(TOKEN, YAML, api_name="/studies_check")

    at = app_test(fake_ctx, "studies")
    at.run()
    at.text_input(key="study_token").set_value(TOKEN)
    at.button(key="study_login").click().run()
    no_errors(at)
    at.text_area(key="study_text").set_value(YAML)
    at.button(key="study_check").click().run()
    no_errors(at)
    assert gradio_verdict in [m.value for m in at.markdown]
    at.run()
    at.run()  # reruns: no action, no event

    recorded = events.assert_same("studies")
    assert [name for name, _, _ in recorded] == ["studies_login", "studies_check"]
    assert recorded[0][1] == {"token": TOKEN} and recorded[1][1] == {"token": TOKEN, "text": YAML}


def test_participant_steps_record_the_same_events(client, fake_ctx, monkeypatch, tmp_path):
    """A participant's join, consent, task, three comparisons and questionnaire record the same events with the
    same named inputs in both front ends; the questionnaire's answers are one `values` input in both (Gradio's
    Likert and text slots, Streamlit's widgets for the same slots)."""
    from tests.test_studies_page import CHOICE, CODE as STUDY, LIKERT, labels_of

    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "studies.sqlite"))
    events = Recorder(fake_ctx)
    seen = [client.predict(STUDY, api_name="/studies_join"), client.predict(True, api_name="/studies_consent")]
    seen.append(client.predict("my final prompt", api_name="/studies_submit_task"))
    for _ in range(2):
        seen.append(client.predict(labels_of(seen[-1][CHOICE])[0], None, api_name="/studies_submit_choice"))
    labels = labels_of(seen[-1][CHOICE])
    seen.append(client.predict(labels[0], labels[-1], api_name="/studies_submit_choice"))
    points = [labels_of(seen[-1][LIKERT + j])[3] for j in range(3)]
    client.predict(*points, *[None] * 5, "", "", "", "fine", *[""] * 4, api_name="/studies_submit_questionnaire")

    at = app_test(fake_ctx, "studies")
    at.run()
    at.text_input(key="study_code").set_value(STUDY)
    at.button(key="study_join").click().run()
    at.checkbox(key="study_agreed").check()
    at.button(key="study_start").click().run()
    at.text_area(key="study_answer").set_value("my final prompt")
    at.button(key="study_submit_task").click().run()
    for _ in range(2):
        at.radio(key="study_chosen").set_value(at.radio(key="study_chosen").options[0])
        at.button(key="study_submit_choice").click().run()
        no_errors(at)
    at.radio(key="study_chosen").set_value(at.radio(key="study_chosen").options[0])
    at.radio(key="study_worst").set_value(at.radio(key="study_worst").options[-1])
    at.button(key="study_submit_choice").click().run()
    for j in range(3):
        at.radio(key=f"study_likert_{j}").set_value(at.radio(key=f"study_likert_{j}").options[3])
    at.text_area(key="study_text_3").set_value("fine")
    at.button(key="study_submit_q").click().run()
    no_errors(at)
    assert any(m.value.endswith("finished") for m in at.markdown)

    recorded = events.assert_same("studies")
    assert [name for name, _, _ in recorded] == ["studies_join", "studies_consent", "studies_submit_task",
                                                 *["studies_submit_choice"] * 3, "studies_submit_questionnaire"]
    assert recorded[-1][1]["values"] == [*points, *[None] * 5, "", "", "", "fine", *[""] * 4]
