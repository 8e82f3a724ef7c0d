"""The two pages a study needs besides the workbench, each a Blocks of its own (so each has its own small
/config and /gradio_api/info):

- the participant page (`/study`): join with the code, consent, the assigned steps; nothing else (no profile
  picker, no other tab, no dashboard);
- the researcher page (`/research`): the dashboard behind the token.

`app.py` mounts them beside the workbench (`python app.py`), or serves them alone (`python app.py --study-only`).
In Streamlit, `streamlit run app.py -- --participant` (or `-- --researcher`) renders one of them alone. The
widgets and wiring are those of the Studies tab (pages/studies.py); this module only frames them. Not a tab:
it has no TITLE, so pages.discover_pages skips it."""

from __future__ import annotations

PARTICIPANT_PATH = "/study"
RESEARCHER_PATH = "/research"
PARTICIPANT_TITLE = "Study"
RESEARCHER_TITLE = "Study dashboard"

PARTICIPANT_INTRO = ("## Taking part in a study\n\nType the code the researcher gave you. You will see a consent "
                     "text, then your steps one at a time. You can close this page and come back: \"Show my "
                     "current step\" brings you back to where you were in this browser tab.")
RESEARCHER_INTRO = ("## Study dashboard\n\nFor the researcher: log in with the token set in "
                    "`WORKBENCH_RESEARCHER_TOKEN` (every action here checks it again). Participants use the "
                    f"participant page (`{PARTICIPANT_PATH}`).")


def participant_blocks(ctx):
    """The participant page: only the study."""
    from pages import studies
    from pages._serving import lean_blocks_class

    with lean_blocks_class()(title=PARTICIPANT_TITLE, analytics_enabled=False) as demo:
        studies.build_participant_gradio(ctx, PARTICIPANT_INTRO)
    return demo


def researcher_blocks(ctx):
    """The researcher page: only the dashboard, behind the token."""
    import gradio as gr

    from pages import studies

    from pages._serving import lean_blocks_class

    with lean_blocks_class()(title=RESEARCHER_TITLE, analytics_enabled=False) as demo:
        gr.Markdown(RESEARCHER_INTRO)
        studies.build_researcher_gradio(ctx, standalone=True)
    return demo


def render_participant_streamlit(ctx) -> None:
    import streamlit as st

    from pages import studies

    st.markdown(PARTICIPANT_INTRO)
    studies.participant_streamlit(ctx)


def render_researcher_streamlit(ctx) -> None:
    import streamlit as st

    from pages import studies

    st.markdown(RESEARCHER_INTRO)
    studies.researcher_streamlit(ctx)
