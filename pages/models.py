"""Models tab: each role of the chosen profile with its backend, model id, device, dtype, load state,
load time and memory, and a badge where weights are random; load and unload buttons."""

from __future__ import annotations

from pages._examples import gradio_examples, streamlit_examples
from pages._wiring import gradio_action, gradio_bind, streamlit_run
from workbench import model_table as mt

TITLE = "Models"
ORDER = 100
TAB = "models"
# fixed widths: wordy columns wrap, so the state column stays on screen; short ones never break a word ("devi/ce")
WIDTHS = {"role": "120px", "model id": "180px", "adapter": "140px", "weights": "150px", "state": "190px",
          "backend": "150px", "device": "80px", "dtype": "90px", "load s": "70px", "memory MiB": "90px",
          "RSS delta MiB": "90px", "purpose": "200px", "message": "200px"}


def build_gradio(ctx, session) -> None:
    import gradio as gr

    gradio_examples(ctx, session, "models")

    gr.Markdown(
        "Each role is filled by one model of the chosen profile. Models load on first use and are shared by "
        "every user and tab. **Random weights** means the model was built in code because no real weights "
        "are available here: its outputs are not meaningful."
    )
    summary = gr.Markdown(elem_id="models-summary")
    # Filled when each visitor's page loads (fresh state, and the app's first page is not delayed by it).
    table = gr.Dataframe(headers=mt.COLUMNS, interactive=False, wrap=True, elem_id="models-table",
                         column_widths=[WIDTHS[c] for c in mt.COLUMNS])
    with gr.Row():
        # Custom values allowed: roles differ per profile, and our own check names the roles a profile has.
        role = gr.Dropdown(choices=list(ctx.profile(ctx.default_profile).roles), value="chat", label="Role",
                           allow_custom_value=True, elem_id="models-role")
        load = gr.Button("Load", variant="primary", elem_id="models-load")
        unload = gr.Button("Unload", elem_id="models-unload")
        refresh = gr.Button("Refresh", elem_id="models-refresh")
    message = gr.Markdown(elem_id="models-message")

    def show(profile_name):
        return mt.model_rows(ctx, profile_name), mt.memory_summary(ctx)

    def on_profile(profile_name):
        rows, text = show(profile_name)
        roles = list(ctx.profile(profile_name).roles)
        return rows, text, gr.Dropdown(choices=roles, value=roles[0])


    session.demo.load(show, session.profile, [table, summary], api_name=False)  # page view, not a user action
    # opening the tab shows what other tabs loaded since (the behaviour-shift pair, the T2I rewriter)
    session.tab.select(show, session.profile, [table, summary], api_name=False)
    gradio_action(ctx, session.profile.change, "models_profile", on_profile, [session.profile], [table, summary, role],
                  tab=TAB)
    gradio_action(ctx, refresh.click, "models_table", show, [session.profile], [table, summary], tab=TAB)
    c = {"profile": session.profile, "role": role}
    for action, button in ((mt.LOAD, load), (mt.UNLOAD, unload)):
        gradio_bind(ctx, action, button.click, c, [table, summary, message], tab=TAB)


def render_streamlit(ctx) -> None:
    import pandas as pd
    import streamlit as st

    streamlit_examples(ctx, "models")

    profile_name = st.session_state.get("profile", ctx.default_profile)
    st.caption(
        "Each role is filled by one model of the chosen profile. **Random weights** means the model was built in "
        "code because no real weights are available here: its outputs are not meaningful."
    )
    st.write(mt.memory_summary(ctx))
    roles = list(ctx.profile(profile_name).roles)
    role = st.selectbox("Role", roles, key="models_role")
    col_load, col_unload = st.columns(2)
    if col_load.button("Load", key="models_load"):
        with st.spinner(f"Loading {role}..."):
            text = (streamlit_run(ctx, mt.LOAD, {"profile": profile_name, "role": role}, tab=TAB) or [None] * 3)[2]
        if text:
            (st.error if text.startswith("Failed") else st.success)(text)
    if col_unload.button("Unload", key="models_unload"):
        text = (streamlit_run(ctx, mt.UNLOAD, {"profile": profile_name, "role": role}, tab=TAB) or [None] * 3)[2]
        if text:
            st.info(text)
    st.dataframe(pd.DataFrame(mt.model_rows(ctx, profile_name), columns=mt.COLUMNS), hide_index=True)
