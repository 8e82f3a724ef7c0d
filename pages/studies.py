"""Studies tab: participants join with a study code and do their assigned steps (tasks, blinded comparisons,
questionnaires); researchers log in with a token for progress, charts and exports. Layout and wiring only:
the flows are in workbench.studies.flows; every action is recorded by the study recorder through the
wiring layer's events."""

from __future__ import annotations

from typing import Any

from pages._wiring import gradio_action, streamlit_action
from workbench.studies import flows
from workbench.studies.definition import MAX_ITEMS, MAX_QUESTIONS
from workbench.text import escape_markdown

TITLE = "Studies"
ORDER = 90
TAB = "studies"

INTRO = ("**Taking part in a study?** Type the code the researcher gave you. You will see a consent text, then "
         "your steps one at a time. **Researchers**: open the dashboard at the bottom and log in with the token "
         "set in `WORKBENCH_RESEARCHER_TOKEN`.")


def options_markdown(view: flows.ParticipantView) -> str:
    if view.media != "text":
        return ""
    return "\n\n".join(f"**{label}**: {escape_markdown(text)}" for label, text in view.options)  # stimuli shown literally


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    build_participant_gradio(ctx, INTRO)
    build_researcher_gradio(ctx)


def build_participant_gradio(ctx, intro: str) -> None:
    """The participant's part: join, consent, steps (also the whole of the participant page, pages/study_pages)."""
    import gradio as gr

    gr.Markdown(intro)
    state = gr.State(flows.new_state())
    with gr.Group():
        with gr.Row():
            code = gr.Textbox(label="Study code", placeholder="e.g. REFINER-AB", scale=3, elem_id="study-code")
            join = gr.Button("Join", variant="primary", scale=1, elem_id="study-join")
        heading = gr.Markdown("### Join a study", elem_id="study-heading")
        progress = gr.Markdown(elem_id="study-progress")
        body = gr.Markdown(elem_id="study-body")
        with gr.Row(visible=False) as consent_row:
            agree = gr.Checkbox(label="I have read the text above and agree to take part", elem_id="study-agree")
            start = gr.Button("Start", variant="primary", elem_id="study-start")
        prompt = gr.Textbox(label="Starting prompt", interactive=False, visible=False, elem_id="study-prompt")
        image = gr.Image(label="Starting image", interactive=False, visible=False, type="filepath", height=256)
        with gr.Column(visible=False) as task_col:
            answer = gr.Textbox(label="Your result (e.g. your final prompt)", lines=4, elem_id="study-answer")
            submit_task = gr.Button("Submit result", variant="primary", elem_id="study-submit-task")
        with gr.Column(visible=False) as cmp_col:
            texts = gr.Markdown(elem_id="study-options")
            with gr.Row():
                images = [gr.Image(label=chr(65 + i), interactive=False, visible=False, type="filepath", height=220)
                          for i in range(MAX_ITEMS)]
            with gr.Row():
                videos = [gr.Video(label=chr(65 + i), interactive=False, visible=False, height=220)
                          for i in range(MAX_ITEMS)]
            choice = gr.Radio([], label="Better / best", elem_id="study-choice")
            worst = gr.Radio([], label="Worst", visible=False, elem_id="study-worst")
            submit_choice = gr.Button("Submit choice", variant="primary", elem_id="study-submit-choice")
        with gr.Column(visible=False) as q_col:
            likerts = [gr.Radio([], label="", visible=False, elem_id=f"study-q{i}-likert") for i in range(MAX_QUESTIONS)]
            free = [gr.Textbox(label="", visible=False, lines=2, elem_id=f"study-q{i}-text") for i in range(MAX_QUESTIONS)]
            submit_q = gr.Button("Submit answers", variant="primary", elem_id="study-submit-q")
        message = gr.Markdown(elem_id="study-message")
        current = gr.Button("Show my current step", size="sm", elem_id="study-current")

    outputs = [state, heading, progress, body, consent_row, prompt, image, task_col, answer, cmp_col, texts,
               *images, *videos, choice, worst, q_col, *likerts, *free, message]

    def render(new_state: dict[str, Any], view: flows.ParticipantView) -> tuple:
        kind = view.stage
        comparison, questionnaire = kind == "comparison", kind == "questionnaire"
        labels = [label for label, _ in view.options]
        # Animated GIFs (what diffusers' export_to_gif writes) play in an image slot; mp4/webm in a video slot.
        media = [(path, view.media == "image" or path.lower().endswith(".gif")) for _, path in view.options] \
            if comparison and view.media != "text" else []
        image_updates = [gr.update(visible=i < len(media) and media[i][1],
                                   value=media[i][0] if i < len(media) and media[i][1] else None, label=chr(65 + i))
                         for i in range(MAX_ITEMS)]
        video_updates = [gr.update(visible=i < len(media) and not media[i][1],
                                   value=media[i][0] if i < len(media) and not media[i][1] else None,
                                   label=chr(65 + i))
                         for i in range(MAX_ITEMS)]
        qs = view.questions if questionnaire else []
        likert_updates = [gr.update(visible=i < len(qs) and qs[i]["type"] == "likert",
                                    choices=flows.likert_choices(qs[i]) if i < len(qs) and qs[i]["type"] == "likert"
                                    else [], value=None, label=qs[i]["text"] if i < len(qs) else "")
                          for i in range(MAX_QUESTIONS)]
        text_updates = [gr.update(visible=i < len(qs) and qs[i]["type"] == "text", value="",
                                  label=(qs[i]["text"] + ("" if qs[i]["required"] else " (optional)"))
                                  if i < len(qs) else "")
                        for i in range(MAX_QUESTIONS)]
        return (new_state, f"### {view.heading}", view.progress, view.body,
                gr.update(visible=kind == "consent"),
                gr.update(visible=bool(view.prompt) and kind in ("task", "comparison"), value=view.prompt),
                gr.update(visible=bool(view.image) and kind == "task", value=view.image or None),
                gr.update(visible=kind == "task"),
                gr.update(visible=view.answer, value=""),
                gr.update(visible=comparison), options_markdown(view) if comparison else "",
                *image_updates, *video_updates,
                gr.update(choices=labels, value=None,
                          label="Which is better?" if view.mode == "pairwise" else "Which is best?"),
                gr.update(choices=labels, value=None, visible=comparison and view.mode == "best_worst"),
                gr.update(visible=questionnaire), *likert_updates, *text_updates, view.message)

    def on_join(code_text):
        return render(*flows.open_study(ctx, code_text))

    def on_consent(st, agreed):
        return render(*flows.give_consent(ctx, st, agreed))

    def on_current(st):
        return render(*flows.view_current(ctx, st))

    def on_task(st, text):
        return render(*flows.submit_task(ctx, st, text))

    def on_choice(st, best, bad):
        return render(*flows.submit_comparison(ctx, st, best, bad))

    def on_questionnaire(st, *values):
        n = MAX_QUESTIONS
        slots = [lk if lk not in (None, "") else tx for lk, tx in zip(values[:n], values[n:])]
        return render(*flows.submit_questionnaire(ctx, st, slots))

    gradio_action(ctx, join.click, "studies_join", on_join, [code], outputs, tab=TAB, input_names=["code"])
    gradio_action(ctx, code.submit, "studies_join_enter", on_join, [code], outputs, tab=TAB, input_names=["code"],
                  api_name=False)
    gradio_action(ctx, start.click, "studies_consent", on_consent, [state, agree], outputs, tab=TAB,
                  input_names=["state", "agreed"])
    gradio_action(ctx, current.click, "studies_current", on_current, [state], outputs, tab=TAB, input_names=["state"])
    gradio_action(ctx, submit_task.click, "studies_submit_task", on_task, [state, answer], outputs, tab=TAB,
                  input_names=["state", "answer"])
    gradio_action(ctx, submit_choice.click, "studies_submit_choice", on_choice, [state, choice, worst], outputs,
                  tab=TAB, input_names=["state", "chosen", "worst"])
    gradio_action(ctx, submit_q.click, "studies_submit_questionnaire", on_questionnaire, [state, *likerts, *free],
                  outputs, tab=TAB,
                  input_names=["state", *[f"likert_{i}" for i in range(MAX_QUESTIONS)],
                               *[f"text_{i}" for i in range(MAX_QUESTIONS)]])



def build_researcher_gradio(ctx, standalone: bool = False) -> None:
    """The researcher's dashboard behind the token (an accordion in the tab; the whole researcher page)."""
    import gradio as gr

    with gr.Accordion("Researcher dashboard", open=standalone):
        gr.Markdown("Only for the researcher: every action here checks the token again.")
        with gr.Row():
            token = gr.Textbox(label="Researcher token", type="password", scale=3, elem_id="study-token")
            login = gr.Button("Log in", scale=1, elem_id="study-login")
        with gr.Column(visible=False) as dash:
            with gr.Row():
                study_pick = gr.Dropdown([], label="Study", elem_id="study-pick", allow_custom_value=True)
                refresh = gr.Button("Refresh", elem_id="study-refresh")
            summary = gr.Markdown(elem_id="study-summary")
            table = gr.Dataframe(headers=flows.PROGRESS_COLUMNS, interactive=False, elem_id="study-progress-table")
            with gr.Row():
                fig_choices = gr.Plot(label="Choices per condition")
                fig_likert = gr.Plot(label="Likert distributions")
            fig_time = gr.Plot(label="Time on task")
            free_text = gr.Dataframe(headers=flows.FREE_TEXT_COLUMNS, datatype="str", interactive=False, wrap=True,
                                     label="Free-text answers (shown as typed)", elem_id="study-free-text")
            with gr.Row():
                what = gr.Dropdown(list(flows.EXPORTS), value=flows.EXPORTS[0], label="Export", elem_id="study-export-what")
                export_btn = gr.Button("Export", elem_id="study-export")
            export_file = gr.File(label="Export file", interactive=False, elem_id="study-export-file")
            with gr.Accordion("Check a study file", open=False):
                study_text = gr.Code(language="yaml", label="Study file (YAML)")
                check_btn = gr.Button("Check", elem_id="study-check")
                check_out = gr.Markdown(elem_id="study-check-out")

    def on_login(tok):
        codes = flows.researcher_login(ctx, tok)
        return gr.update(visible=True), gr.update(choices=codes, value=codes[0] if codes else None)

    def on_refresh(tok, study_code):
        view = flows.dashboard(ctx, tok, study_code)
        return view.summary, view.progress, view.choices, view.likert, view.time_on_task, view.free_text

    def on_export(tok, study_code, kind):
        return flows.export(ctx, tok, study_code, kind)

    gradio_action(ctx, login.click, "studies_login", on_login, [token], [dash, study_pick], tab=TAB,
                  input_names=["token"])
    gradio_action(ctx, refresh.click, "studies_dashboard", on_refresh, [token, study_pick],
                  [summary, table, fig_choices, fig_likert, fig_time, free_text], tab=TAB,
                  input_names=["token", "study"])
    gradio_action(ctx, export_btn.click, "studies_export", on_export, [token, study_pick, what], export_file, tab=TAB,
                  input_names=["token", "study", "what"])
    gradio_action(ctx, check_btn.click, "studies_check", flows.check_study_text, [token, study_text], check_out,
                  tab=TAB, input_names=["token", "text"])


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    st.markdown(INTRO)
    part, research = st.tabs(["Take part", "Researcher dashboard"])
    with part:
        _participant_streamlit(ctx, st)
    with research:
        _researcher_streamlit(ctx, st)


def _participant_streamlit(ctx, st) -> None:
    ss = st.session_state
    ss.setdefault("study_state", flows.new_state())
    ss.setdefault("study_view", flows.start_view())

    def run(name: str, fn, *args, **names) -> None:
        out = streamlit_action(ctx, name, fn, *args, tab=TAB, **names)
        if out is not None:
            ss["study_state"], ss["study_view"] = out
            st.rerun()

    view: flows.ParticipantView = ss["study_view"]
    if view.stage == "start":
        code = st.text_input("Study code", key="study_code_input", placeholder="e.g. REFINER-AB")
        if st.button("Join", key="study_join"):
            run("studies_join", lambda c: flows.open_study(ctx, c), code, input_names=["code"])
        return
    st.subheader(view.heading)
    if view.progress:
        st.caption(view.progress)
    if view.message:
        st.success(view.message)
    st.markdown(view.body)
    state = ss["study_state"]
    if view.stage == "consent":
        agreed = st.checkbox("I have read the text above and agree to take part", key="study_agree")
        if st.button("Start", key="study_start"):
            run("studies_consent", lambda s, a: flows.give_consent(ctx, s, a), state, agreed,
                input_names=["state", "agreed"])
    elif view.stage == "task":
        if view.prompt:
            st.code(view.prompt, language=None)
        if view.image:
            st.image(view.image, width=256)
        text = st.text_area("Your result (e.g. your final prompt)", key=f"study_answer_{state['step']}") \
            if view.answer else ""
        if st.button("Submit result", key="study_submit_task"):
            run("studies_submit_task", lambda s, t: flows.submit_task(ctx, s, t), state, text,
                input_names=["state", "answer"])
    elif view.stage == "comparison":
        if view.prompt:
            st.code(view.prompt, language=None)
        labels = [label for label, _ in view.options]
        if view.media == "text":
            st.markdown(options_markdown(view))
        else:
            cols = st.columns(len(view.options))
            for col, (label, path) in zip(cols, view.options):
                col.caption(label)
                (col.image if view.media == "image" or path.lower().endswith(".gif") else col.video)(path)
        best = st.radio("Which is better?" if view.mode == "pairwise" else "Which is best?", labels, index=None,
                        key=f"study_choice_{state['step']}")
        bad = st.radio("Which is worst?", labels, index=None, key=f"study_worst_{state['step']}") \
            if view.mode == "best_worst" else None
        if st.button("Submit choice", key="study_submit_choice"):
            run("studies_submit_choice", lambda s, b, w: flows.submit_comparison(ctx, s, b, w), state, best, bad,
                input_names=["state", "chosen", "worst"])
    elif view.stage == "questionnaire":
        values = []
        for q in view.questions:
            key = f"study_q_{state['step']}_{q['id']}"
            if q["type"] == "likert":
                values.append(st.radio(q["text"], flows.likert_choices(q), index=None, key=key, horizontal=True))
            else:
                values.append(st.text_area(q["text"] + ("" if q["required"] else " (optional)"), key=key))
        if st.button("Submit answers", key="study_submit_q"):
            run("studies_submit_questionnaire", lambda s, v: flows.submit_questionnaire(ctx, s, v), state, values,
                input_names=["state", "values"])


def _researcher_streamlit(ctx, st) -> None:
    token = st.text_input("Researcher token", type="password", key="study_token")
    if not token:
        st.caption("Log in with the token set in WORKBENCH_RESEARCHER_TOKEN.")
        return
    codes = streamlit_action(ctx, "studies_login", flows.researcher_login, ctx, token, tab=TAB,
                             input_names=["ctx", "token"])
    if codes is None:
        return
    if not codes:
        st.info("No study has participants yet.")
        return
    code = st.selectbox("Study", codes, key="study_pick")
    view = streamlit_action(ctx, "studies_dashboard", flows.dashboard, ctx, token, code, tab=TAB,
                            input_names=["ctx", "token", "study"])
    if view is None:
        return
    import pandas as pd

    st.markdown(view.summary)
    st.dataframe(pd.DataFrame(view.progress, columns=flows.PROGRESS_COLUMNS), hide_index=True)
    for fig in (view.choices, view.likert, view.time_on_task):
        st.plotly_chart(fig)
    st.caption("Free-text answers (shown as typed)")
    st.dataframe(pd.DataFrame(view.free_text, columns=flows.FREE_TEXT_COLUMNS), hide_index=True)
    what = st.selectbox("Export", flows.EXPORTS, key="study_export_what")
    if st.button("Prepare export", key="study_export"):
        path = streamlit_action(ctx, "studies_export", flows.export, ctx, token, code, what, tab=TAB,
                                input_names=["ctx", "token", "study", "what"])
        if path is not None:
            with open(path, "rb") as f:
                st.download_button(f"Download {what}", f.read(), file_name=path.rsplit("/", 1)[-1])
