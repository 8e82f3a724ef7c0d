"""Promptor tab (arXiv 2310.08101): a chat in which the Promptor agent interviews a designer about a text-entry
feature, drafts a prompt template, tests it on the designer's examples, compares drafts blind and refines it into
a final template with placeholders. A side panel shows the stage, the structured fields (editable) and the current
draft. Layout and wiring only: every flow is in workbench.promptor.flows, run through the wiring layer."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples

from typing import Any

from pages._wiring import gradio_action, streamlit_action, streamlit_stream
from workbench.common.choice import ChatChoice
from workbench.promptor.agent import JUMP_TARGETS, MAX_MESSAGE_CHARS, STAGE_LABELS
from workbench.promptor.flows import PromptorService, PromptorSettings
from workbench.promptor.store import SessionStore
from workbench.promptor.tasks import FIELDS, STARTERS

TITLE = "Promptor (prompt generation chat)"
ORDER = 30
TAB = "promptor"

BACKEND_LABELS = {"profile": "profile chat model", "openai": "OpenAI-compatible server"}
_KIND_BY_LABEL = {v: k for k, v in BACKEND_LABELS.items()}
INTRO = (
    "Promptor interviews you about a text-entry feature (who types, what they type, what the system should predict "
    "or rewrite, constraints, tone, personalisation data), drafts a prompt template, evaluates it, tests it on your "
    "examples side by side, lets you compare drafts blind, and refines it into a **final template with named "
    "placeholders** such as `{user_text}`. The steps and fields are kept by the workbench, not by the chat model, so "
    f"a small local model works too. Messages over {MAX_MESSAGE_CHARS:,} characters are cut with a note."
)


# --------------------------------------------------------------------------- shared by both front ends


def chat_choice(kind_label: Any, base_url: Any, model: Any) -> ChatChoice:
    kind = _KIND_BY_LABEL.get(kind_label, kind_label or "profile")
    return ChatChoice(kind=kind, base_url=base_url or "", model=model or "").check()


def settings_from(polish: Any, temperature: Any, seed: Any) -> PromptorSettings:
    if seed is None or float(seed) != int(float(seed)):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    return PromptorSettings(polish=bool(polish), temperature=float(temperature), seed=int(seed)).check()


def versions_from(text: Any) -> list[int] | None:
    text = (text or "").replace("v", "").strip() if isinstance(text, str) else ""
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(" ", ",").split(",") if part]
    except ValueError:
        raise ValueError(f"drafts to compare must be version numbers like '1, 3', got {text!r}") from None


def stage_markdown(view: Any) -> str:
    steps = []
    for name, label in STAGE_LABELS.items():
        mark = "▶" if name == view.stage else "·"
        steps.append(f"{mark} {label}" if name != view.stage else f"**{mark} {label}**")
    return (f"### Step {view.step}: {view.stage_label}\n\n" + " → ".join(steps) +
            f"\n\nResume code: `{view.code}` (reopen this session after a reload or in the other front end)")


def blind_markdown(view: Any) -> str:
    if not view.blind:
        return "No blinded comparison yet (it needs a test round with two or more drafts)."
    from workbench.text import escape_markdown as escape_md

    parts = []
    for number, item in enumerate(view.blind, 1):
        inputs = "; ".join(f"{escape_md(k)}: {escape_md(v)}" for k, v in item["input"].items())
        lines = [f"**Example {number}** ({inputs})"]
        lines += [f"- **{letter}**: {escape_md(text) or '*(empty)*'}" for letter, text in item["options"]]
        if item["best"]:
            lines.append(f"- marked: best **{item['best']}**, worst **{item['worst']}**")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n\n" + view.blind_summary


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, "promptor")

    from gradio.context import Context

    svc = PromptorService(ctx, SessionStore())
    tab = getattr(session, "tab", None) or (Context.block if isinstance(Context.block, gr.Tab) else None)
    gr.Markdown(INTRO)
    state = gr.State(None)
    saved_code = gr.BrowserState("", storage_key="promptor_resume_code")  # only the code reaches the browser
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Promptor", height=520, elem_id="promptor-chat", sanitize_html=True)
            with gr.Row():
                message = gr.Textbox(label="Your message", placeholder="e.g. sentence completion", lines=2, scale=5,
                                     elem_id="promptor-message")
                with gr.Column(scale=1, min_width=120):
                    send = gr.Button("Send", variant="primary", elem_id="promptor-send")
                    retry = gr.Button("Retry", elem_id="promptor-retry")
            with gr.Accordion("Chat backends and parent prompt", open=False):
                with gr.Row():
                    agent_kind = gr.Radio(list(BACKEND_LABELS.values()), value=BACKEND_LABELS["profile"],
                                          label="Agent (Promptor) model")
                    agent_url = gr.Textbox(label="Agent server URL", placeholder="http://127.0.0.1:8000/v1")
                    agent_model = gr.Textbox(label="Agent model name on that server")
                with gr.Row():
                    target_kind = gr.Radio(list(BACKEND_LABELS.values()), value=BACKEND_LABELS["profile"],
                                           label="Target model (runs the template in test rounds)")
                    target_url = gr.Textbox(label="Target server URL", placeholder="http://127.0.0.1:8000/v1")
                    target_model = gr.Textbox(label="Target model name on that server")
                with gr.Row():
                    polish = gr.Checkbox(True, label="Let the agent model polish each draft (validated)")
                    temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Agent temperature")
                    seed = gr.Number(0, precision=0, label="Seed")
                parent = gr.Textbox(label="Parent prompt (the agent's instructions; editable)", lines=5)
                parent_btn = gr.Button("Save parent prompt")
        with gr.Column(scale=2):
            stage_md = gr.Markdown(elem_id="promptor-stage")
            with gr.Accordion("What Promptor has learned (editable)", open=True):
                field_boxes = [gr.Textbox(label=f.label, lines=1, elem_id=f"promptor-field-{f.name}") for f in FIELDS]
                fields_btn = gr.Button("Save fields")
            draft = gr.Textbox(label="Current draft (editable; placeholders in {braces})", lines=12,
                               elem_id="promptor-draft")
            draft_btn = gr.Button("Save draft as a new version")
            checks = gr.Markdown()
            with gr.Row():
                jump_to = gr.Dropdown([(STAGE_LABELS[s], s) for s in JUMP_TARGETS], value="understand",
                                      label="Jump back to")
                jump_btn = gr.Button("Jump back")
            final_btn = gr.Button("Make the current draft final", variant="primary")
            with gr.Row():
                export_btn = gr.Button("Export template (txt, json) and transcript (jsonl)")
            files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="promptor-files")
            with gr.Accordion("Sessions", open=False):
                resume_code = gr.Textbox(label="Resume code")
                resume_btn = gr.Button("Resume")
                starter = gr.Dropdown([("(none)", "")] + [(s.title, s.key) for s in STARTERS.values()], value="",
                                      label="Starter task for a new session")
                new_btn = gr.Button("New session")
    with gr.Accordion("Test rounds", open=True):
        header = gr.Markdown()
        examples = gr.Textbox(label="Examples (one per line, values separated by ' | ')", lines=4,
                              elem_id="promptor-example-inputs")
        with gr.Row():
            examples_btn = gr.Button("Save examples")
            versions = gr.Textbox(label="Drafts to compare (e.g. 1, 3; default: the last two)", scale=2)
            round_btn = gr.Button("Run test round", variant="primary", elem_id="promptor-run")
        rounds = gr.Markdown(elem_id="promptor-rounds")
    with gr.Accordion("Blinded comparison", open=True):
        with gr.Row():
            blind_seed = gr.Number(0, precision=0, label="Shuffle seed")
            blind_btn = gr.Button("Start blinded comparison of the last round")
        blind_md = gr.Markdown(elem_id="promptor-blind")
        with gr.Row():
            blind_example = gr.Number(1, precision=0, label="Example")
            best = gr.Radio(["A", "B", "C", "D"], label="Best")
            worst = gr.Radio(["A", "B", "C", "D"], label="Worst (optional with two outputs)")
            mark_btn = gr.Button("Record")

    view_outputs = [state, saved_code, chatbot, stage_md, *field_boxes, draft, checks, header, examples, rounds,
                    blind_md, retry, parent]

    def render(result) -> list[Any]:
        st_, view = result
        return [st_, st_["code"], view.chat, stage_markdown(view), *[view.fields.get(f.name, "") for f in FIELDS],
                view.draft, view.draft_checks, f"Columns: `{view.examples_header}`", view.examples, view.rounds,
                blind_markdown(view), gr.update(interactive=view.can_retry), view.parent_prompt]

    backend_inputs = [session.profile, agent_kind, agent_url, agent_model, target_kind, target_url, target_model,
                      polish, temperature, seed]

    def choices(profile_name, a_kind, a_url, a_model, t_kind, t_url, t_model, pol, temp, sd):
        return (profile_name, chat_choice(a_kind, a_url, a_model), chat_choice(t_kind, t_url, t_model),
                settings_from(pol, temp, sd))

    def on_send(state_value, text, *backend):
        profile_name, agent_c, target_c, settings = choices(*backend)
        for result in svc.send(state_value, text, profile_name, agent_c, target_c, settings):
            yield render(result) + [""]

    def on_retry(state_value, *backend):
        profile_name, agent_c, target_c, settings = choices(*backend)
        for result in svc.retry(state_value, profile_name, agent_c, target_c, settings):
            yield render(result)

    def on_restore(state_value, code):
        """The conversation this browser had (its code from localStorage), else the one on screen, else new."""
        if code and not (state_value and state_value.get("code") == code):
            try:
                return render(svc.resume(code))
            except ValueError:  # a stale code in this browser: carry on rather than fail the page
                pass
        return render(svc.current(state_value) if state_value else svc.new())

    def on_round(state_value, version_text, *backend, job=None):
        profile_name, _, target_c, settings = choices(*backend)
        return render(svc.run_test_round(state_value, profile_name, target_c, versions_from(version_text),
                                         settings, job=job))

    def on_fields(state_value, *values):
        return render(svc.edit_fields(state_value, {f.name: v for f, v in zip(FIELDS, values)}))

    def on_export(state_value):
        return list(svc.export_files(state_value).values())

    act = dict(tab=TAB)
    # Gradio mounts a tab's components, and reads BrowserState from localStorage, when the tab is first shown: a
    # page-load event would see no code yet and its new session's code would overwrite the saved one. So the
    # session is restored (or started) when the tab opens; on page load only when there is no tab to open.
    if tab is not None:
        gradio_action(ctx, tab.select, "promptor_restore", on_restore, [state, saved_code], view_outputs,
                      input_names=["state", "code"], api_name=False, **act)
    else:
        gradio_action(ctx, session.demo.load, "promptor_restore", on_restore, [state, saved_code], view_outputs,
                      input_names=["state", "code"], api_name=False, **act)
    gradio_action(ctx, send.click, "promptor_send", on_send, [state, message, *backend_inputs],
                  view_outputs + [message], stream=True, **act)
    gradio_action(ctx, message.submit, "promptor_submit", on_send, [state, message, *backend_inputs],
                  view_outputs + [message], stream=True, api_name=False, **act)
    gradio_action(ctx, retry.click, "promptor_retry", on_retry, [state, *backend_inputs], view_outputs,
                  stream=True, **act)
    gradio_action(ctx, parent_btn.click, "promptor_parent_prompt", lambda s, t: render(svc.set_parent_prompt(s, t)),
                  [state, parent], view_outputs, input_names=["state", "parent_prompt"], **act)
    gradio_action(ctx, fields_btn.click, "promptor_fields", on_fields, [state, *field_boxes], view_outputs,
                  input_names=["state", *[f.name for f in FIELDS]], **act)
    gradio_action(ctx, draft_btn.click, "promptor_draft", lambda s, t: render(svc.edit_draft(s, t)),
                  [state, draft], view_outputs, input_names=["state", "draft"], **act)
    gradio_action(ctx, jump_btn.click, "promptor_jump", lambda s, t: render(svc.jump_back(s, t)),
                  [state, jump_to], view_outputs, input_names=["state", "target"], **act)
    gradio_action(ctx, final_btn.click, "promptor_final", lambda s: render(svc.finalise(s)), [state],
                  view_outputs, input_names=["state"], **act)
    gradio_action(ctx, export_btn.click, "promptor_export", on_export, [state], files, **act)
    gradio_action(ctx, resume_btn.click, "promptor_resume", lambda c: render(svc.resume(c)), [resume_code],
                  view_outputs, input_names=["code"], **act)
    gradio_action(ctx, new_btn.click, "promptor_new", lambda p, k: render(svc.new(p or None, k or None)),
                  [parent, starter], view_outputs, input_names=["parent_prompt", "starter"], **act)
    gradio_action(ctx, examples_btn.click, "promptor_examples", lambda s, t: render(svc.set_examples(s, t)),
                  [state, examples], view_outputs, input_names=["state", "examples"], **act)
    gradio_action(ctx, round_btn.click, "promptor_test_round", on_round, [state, versions, *backend_inputs],
                  view_outputs, job=True, **act)
    gradio_action(ctx, blind_btn.click, "promptor_blind_start", lambda s, k: render(svc.start_blind(s, k)),
                  [state, blind_seed], view_outputs, input_names=["state", "seed"], **act)
    gradio_action(ctx, mark_btn.click, "promptor_blind_mark", lambda s, e, b, w: render(svc.mark_blind(s, e, b, w)),
                  [state, blind_example, best, worst], view_outputs,
                  input_names=["state", "example", "best", "worst"], **act)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    streamlit_examples(ctx, "promptor")

    ss = st.session_state
    svc = PromptorService(ctx, SessionStore())
    profile_name = ss.get("profile", ctx.default_profile)
    if ss.get("promptor_state") is None:
        ss["promptor_state"] = svc.new()[0]
        ss["promptor_sync"] = True
    if ss.pop("promptor_sync", False):  # widget values can only be set before the widgets are drawn
        view = svc.current(ss["promptor_state"])[1]
        for f in FIELDS:
            ss[f"promptor_field_{f.name}"] = view.fields.get(f.name, "")
        ss["promptor_draft"] = view.draft
        ss["promptor_examples"] = view.examples
        ss["promptor_parent"] = view.parent_prompt
    state = ss["promptor_state"]
    view = svc.current(state)[1]

    def keep(result) -> None:
        if result is not None:
            ss["promptor_state"] = result[0]
            ss["promptor_sync"] = True
            st.rerun()

    st.caption(INTRO)
    with st.expander("Chat backends and parent prompt"):
        a_cols = st.columns(3)
        a_kind = a_cols[0].radio("Agent (Promptor) model", list(BACKEND_LABELS.values()), key="promptor_agent_kind")
        a_url = a_cols[1].text_input("Agent server URL", key="promptor_agent_url")
        a_model = a_cols[2].text_input("Agent model name", key="promptor_agent_model")
        t_cols = st.columns(3)
        t_kind = t_cols[0].radio("Target model (test rounds)", list(BACKEND_LABELS.values()), key="promptor_target_kind")
        t_url = t_cols[1].text_input("Target server URL", key="promptor_target_url")
        t_model = t_cols[2].text_input("Target model name", key="promptor_target_model")
        s_cols = st.columns(3)
        polish = s_cols[0].checkbox("Agent polishes drafts (validated)", True, key="promptor_polish")
        temperature = s_cols[1].slider("Agent temperature", 0.0, 2.0, 0.7, 0.05, key="promptor_temperature")
        seed = s_cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="promptor_seed")
        parent = st.text_area("Parent prompt (editable)", key="promptor_parent", height=140)
        if st.button("Save parent prompt", key="promptor_parent_btn"):
            keep(streamlit_action(ctx, "promptor_parent_prompt", svc.set_parent_prompt, state, parent, tab=TAB))

    def backends():
        return (chat_choice(a_kind, a_url, a_model), chat_choice(t_kind, t_url, t_model),
                settings_from(polish, temperature, seed))

    left, right = st.columns([3, 2])
    with left:
        for msg in view.chat:
            with st.chat_message(msg["role"]):
                st.markdown(msg["content"])
        if view.can_retry and st.button("Retry the interrupted reply", key="promptor_retry"):
            agent_c, target_c, settings = backends()
            _stream(ctx, st, "promptor_retry", svc.retry, state, profile_name, agent_c, target_c, settings)
        text = st.chat_input("Your message", key="promptor_message")
        if text is not None:
            agent_c, target_c, settings = backends()
            _stream(ctx, st, "promptor_send", svc.send, state, text, profile_name, agent_c, target_c, settings)
    with right:
        st.markdown(stage_markdown(view))
        with st.expander("What Promptor has learned (editable)", expanded=True):
            values = {f.name: st.text_input(f.label, key=f"promptor_field_{f.name}") for f in FIELDS}
            if st.button("Save fields", key="promptor_fields_btn"):
                keep(streamlit_action(ctx, "promptor_fields", svc.edit_fields, state, values, tab=TAB))
        draft_text = st.text_area("Current draft (editable)", key="promptor_draft", height=260)
        if st.button("Save draft as a new version", key="promptor_draft_btn"):
            keep(streamlit_action(ctx, "promptor_draft", svc.edit_draft, state, draft_text, tab=TAB))
        st.markdown(view.draft_checks)
        j_cols = st.columns(2)
        target = j_cols[0].selectbox("Jump back to", list(JUMP_TARGETS), format_func=STAGE_LABELS.get,
                                     key="promptor_jump_to")
        if j_cols[1].button("Jump back", key="promptor_jump_btn"):
            keep(streamlit_action(ctx, "promptor_jump", svc.jump_back, state, target, tab=TAB))
        if st.button("Make the current draft final", key="promptor_final_btn", type="primary"):
            keep(streamlit_action(ctx, "promptor_final", svc.finalise, state, tab=TAB))
        if view.draft:
            from workbench.promptor import export

            st.download_button("Template (.txt)", export.template_text(state), f"promptor-{view.code}-template.txt",
                               key="promptor_dl_txt")
            import json

            st.download_button("Template (.json)", json.dumps(export.template_json(state), indent=2),
                               f"promptor-{view.code}-template.json", key="promptor_dl_json")
            st.download_button("Transcript (.jsonl)", export.transcript_jsonl(state),
                               f"promptor-{view.code}-transcript.jsonl", key="promptor_dl_jsonl")
        with st.expander("Sessions"):
            code = st.text_input("Resume code", key="promptor_resume_code")
            if st.button("Resume", key="promptor_resume_btn"):
                keep(streamlit_action(ctx, "promptor_resume", svc.resume, code, tab=TAB))
            starter = st.selectbox("Starter task", [""] + list(STARTERS), key="promptor_starter",
                                   format_func=lambda k: STARTERS[k].title if k else "(none)")
            if st.button("New session", key="promptor_new_btn"):
                keep(streamlit_action(ctx, "promptor_new", svc.new, None, starter or None, tab=TAB))

    st.subheader("Test rounds")
    st.caption(f"Columns: {view.examples_header}")
    ex_text = st.text_area("Examples (one per line, values separated by ' | ')", key="promptor_examples")
    r_cols = st.columns(3)
    if r_cols[0].button("Save examples", key="promptor_examples_btn"):
        keep(streamlit_action(ctx, "promptor_examples", svc.set_examples, state, ex_text, tab=TAB))
    version_text = r_cols[1].text_input("Drafts to compare (default: the last two)", key="promptor_versions")
    if r_cols[2].button("Run test round", key="promptor_round_btn", type="primary"):
        agent_c, target_c, settings = backends()
        keep(streamlit_action(ctx, "promptor_test_round", svc.run_test_round, state, profile_name, target_c,
                              versions_from(version_text), settings, tab=TAB, job=True))
    st.markdown(view.rounds)

    st.subheader("Blinded comparison")
    b_cols = st.columns(2)
    blind_seed = b_cols[0].number_input("Shuffle seed", 0, 2**31 - 1, 0, key="promptor_blind_seed")
    if b_cols[1].button("Start blinded comparison of the last round", key="promptor_blind_btn"):
        keep(streamlit_action(ctx, "promptor_blind_start", svc.start_blind, state, blind_seed, tab=TAB))
    st.markdown(blind_markdown(view))
    if view.blind:
        m_cols = st.columns(4)
        example = m_cols[0].number_input("Example", 1, len(view.blind), 1, key="promptor_blind_example")
        letters = [letter for letter, _ in view.blind[0]["options"]]
        best_choice = m_cols[1].radio("Best", letters, key="promptor_best")
        worst_choice = m_cols[2].radio("Worst", letters, index=len(letters) - 1, key="promptor_worst")
        if m_cols[3].button("Record", key="promptor_mark_btn"):
            keep(streamlit_action(ctx, "promptor_blind_mark", svc.mark_blind, state, example, best_choice,
                                  worst_choice, tab=TAB))


def _stream(ctx, st, name, flow, *args) -> None:
    """Stream a reply into the chat, then keep the new state."""
    last = None
    with st.chat_message("assistant"):
        box = st.empty()
        for last in streamlit_stream(ctx, name, flow, *args, tab=TAB):
            box.markdown(last[1].chat[-1]["content"] or "…")
    if last is not None:
        st.session_state["promptor_state"] = last[0]
        st.session_state["promptor_sync"] = True
        st.rerun()
