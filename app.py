"""Prompt Workbench: a browser workbench for prompt-engineering research.

`python app.py` starts the Gradio front end (127.0.0.1, no share link, analytics off, queue on);
`streamlit run app.py` starts the Streamlit front end over the same pages. Importing this module
imports no backend and loads no model.
"""

from __future__ import annotations

import os

# ZeroGPU: `spaces` must be imported before anything that could initialise CUDA (torch, diffusers, ...).
if os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"):
    import spaces  # noqa: F401

import argparse
import sys
from types import SimpleNamespace

# Privacy defaults, set before gradio/streamlit/huggingface_hub are imported: no telemetry, no version pings.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")

from workbench.storage import configure_storage, restart_warning  # noqa: E402  (light: no torch, no gradio)

configure_storage()  # on a Space with /data: caches there, before huggingface_hub reads HF_HOME

APP_TITLE = "Prompt Workbench"


def profile_banner(ctx, profile_name: str | None) -> str:
    from workbench.model_table import random_roles

    profile = ctx.profile(profile_name)
    text = f"**Profile `{profile.name}`**: {profile.description}"
    randoms = random_roles(ctx, profile.name)
    if randoms:
        text += (f"\n\n⚠️ **Random weights: outputs are not meaningful** for: {', '.join(randoms)}. "
                 "These roles use tiny models built in code because no real weights are available here.")
    return text


def attach_services(ctx):
    """The app-wide services the core leaves to the app: the study recorder (every user action of a session that
    joined a study is written to the study database; cheap: the database opens on the first join)."""
    from workbench.studies.recorder import attach

    if getattr(ctx, "studies", None) is None:
        attach(ctx)
    return ctx


def build_demo(ctx):
    """The Gradio Blocks app: a header with the per-session profile choice, then one tab per pages/ module."""
    import gradio as gr

    attach_services(ctx)

    from pages import discover_pages
    from pages._wiring import gradio_action

    with gr.Blocks(title=APP_TITLE, analytics_enabled=False) as demo:
        with gr.Row():
            gr.Markdown(f"# {APP_TITLE}")
            profile = gr.Dropdown(choices=sorted(ctx.profiles), value=ctx.default_profile, label="Profile",
                                  elem_id="profile-choice", scale=0, min_width=200)
        warning = restart_warning()
        if warning:
            gr.Markdown(warning, elem_id="storage-warning")
        banner = gr.Markdown(profile_banner(ctx, ctx.default_profile), elem_id="profile-banner")
        gradio_action(ctx, profile.change, "profile_change", lambda name: profile_banner(ctx, name), [profile], banner,
                      tab="app", api_name=False)
        session = SimpleNamespace(profile=profile, demo=demo)
        with gr.Tabs():
            for page in discover_pages():
                name = page.__name__.rsplit(".", 1)[-1]
                with gr.Tab(page.TITLE, id=name, elem_id=f"tab-{name}") as tab:  # elem_id: browser tests scope to it
                    session.tab = tab  # the page's own tab (e.g. to refresh when it is opened)
                    page.build_gradio(ctx, session)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1: only this machine can connect)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--profile", default=None,
                        help="offline, cpu, gpu, paper, ... (default: WORKBENCH_PROFILE, else chosen by hub/device)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps or auto (default: WORKBENCH_DEVICE/auto)")
    parser.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                        help="GiB of model weights to keep loaded (default: WORKBENCH_MEMORY_BUDGET_GB, "
                             "else 60%% of RAM or 85%% of GPU memory)")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link (off by default)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    return args


def prepare(args: argparse.Namespace):
    """The context (and, on ZeroGPU, every model of the profile placed on the GPU) and the Blocks app."""
    from workbench.context import build_context
    from workbench.gpu import zero_gpu_mode

    ctx = build_context(profile=args.profile, device=args.device, memory_budget_gb=args.memory_budget)
    if zero_gpu_mode():
        # ZeroGPU: place the models now, outside any @spaces.GPU call (CUDA is emulated here); a GPU call never
        # loads one. WORKBENCH_PRELOAD=chat,embeddings limits this to some roles.
        for status in ctx.preload():
            print(f"preloaded {status.role}: {status.model_id} on {status.device} ({status.dtype})", flush=True)
    demo = build_demo(ctx)
    demo.queue(default_concurrency_limit=4)
    return ctx, demo


def main(argv: list[str] | None = None) -> None:
    from workbench.models import ModelLoadError

    args = parse_args(argv)
    try:
        ctx, demo = prepare(args)
    except (ValueError, ModelLoadError) as exc:
        sys.exit(f"error: {exc}")
    # The device is resolved on the first model load (finding out imports torch, which would slow the start).
    device = args.device or os.environ.get("WORKBENCH_DEVICE") or "auto"
    print(f"{APP_TITLE}: profile '{ctx.default_profile}', device {device}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=True)


# ---------------------------------------------------------------------------- Streamlit front end


def streamlit_main() -> None:
    import streamlit as st

    from pages import discover_pages
    from workbench.context import build_context

    st.set_page_config(page_title=APP_TITLE, layout="wide")

    @st.cache_resource
    def shared_context():
        return attach_services(build_context())  # one manager for every session of this server

    ctx = shared_context()
    names = sorted(ctx.profiles)
    if "profile" not in st.session_state:
        st.session_state["profile"] = ctx.default_profile
    warning = restart_warning()
    if warning:
        st.warning(warning)
    st.sidebar.selectbox("Profile", names, key="profile")
    st.sidebar.markdown(profile_banner(ctx, st.session_state["profile"]))

    def page_runner(module):
        def run() -> None:
            st.title(module.TITLE)
            module.render_streamlit(ctx)

        return run

    pages = [st.Page(page_runner(m), title=m.TITLE, url_path=m.__name__.rsplit(".", 1)[-1])
             for m in discover_pages()]
    st.navigation(pages).run()


def _under_streamlit() -> bool:
    if "streamlit" not in sys.modules:
        return False
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    return get_script_run_ctx(suppress_warning=True) is not None  # `streamlit run` and AppTest alike


if _under_streamlit():
    streamlit_main()
elif __name__ == "__main__":
    main()
