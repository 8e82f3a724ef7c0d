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

    from pages._serving import lean_blocks_class

    attach_services(ctx)

    from pages import discover_pages
    from pages._wiring import gradio_action

    with lean_blocks_class()(title=APP_TITLE, analytics_enabled=False) as demo:
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
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link (off by default; "
                        "the workbench only: the study pages are served by the normal start)")
    parser.add_argument("--study-only", action="store_true",
                        help="serve only the study: the participant page at / and the researcher page at /research "
                             "(no workbench tabs; no model is loaded)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    return args


QUEUE = dict(default_concurrency_limit=4)  # model work: at most 4 runs of one handler at once, the rest wait


def build_study_pages(ctx) -> dict[str, object]:
    """The participant and researcher pages (pages/study_pages.py), by the path they are mounted at."""
    from pages import study_pages

    attach_services(ctx)
    pages = {study_pages.PARTICIPANT_PATH: study_pages.participant_blocks(ctx),
             study_pages.RESEARCHER_PATH: study_pages.researcher_blocks(ctx)}
    for blocks in pages.values():
        blocks.queue(**QUEUE)
    return pages


def server_app(mounts: dict[str, object]):
    """One FastAPI app serving each Blocks at its path (longest path first, the workbench at / last). Each Blocks
    keeps its own /config and /gradio_api/info, so a participant's page load never carries the workbench's."""
    import gradio as gr
    from fastapi import FastAPI
    from starlette.routing import Route

    from workbench.serving import cache_static_routes

    # FastAPI(...) is never assigned to a name in this file: `streamlit run app.py` reads the file's syntax for a
    # name bound to a FastAPI/Starlette call and, finding one, serves that instead of the Streamlit front end
    paths = sorted(mounts, key=lambda p: (p == "/", -len(p)))
    server = gr.mount_gradio_app(FastAPI(docs_url=None, redoc_url=None, openapi_url=None), mounts[paths[0]],
                                 path=paths[0], show_error=True)
    for path in paths[1:]:
        server = gr.mount_gradio_app(server, mounts[path], path=path, show_error=True)
    # `/study` (the link a researcher hands out, without the slash) reaches the page: a mount answers only below
    # its path, and the workbench at / would answer "Not Found"
    for path in paths:
        if path != "/":
            server.router.routes.insert(0, Route(path, _to_folder(path), methods=["GET", "HEAD"]))
    return cache_static_routes(server, mounts)


def _to_folder(path: str):
    from starlette.responses import RedirectResponse

    def redirect(request):
        query = request.url.query
        return RedirectResponse(path + "/" + (f"?{query}" if query else ""), status_code=307)

    return redirect


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
    demo.queue(**QUEUE)
    return ctx, demo


def main(argv: list[str] | None = None) -> None:
    from workbench.models import ModelLoadError

    args = parse_args(argv)
    try:
        if args.study_only:
            from workbench.context import build_context

            ctx = build_context(profile=args.profile, device=args.device, memory_budget_gb=args.memory_budget)
            demo = None
        else:
            ctx, demo = prepare(args)
    except (ValueError, ModelLoadError) as exc:
        sys.exit(f"error: {exc}")
    # The device is resolved on the first model load (finding out imports torch, which would slow the start).
    device = args.device or os.environ.get("WORKBENCH_DEVICE") or "auto"
    if args.share and demo is not None:
        print(f"{APP_TITLE}: profile '{ctx.default_profile}', device {device} (share link: workbench only)",
              flush=True)
        demo.launch(server_name=args.host, server_port=args.port, share=True, show_error=True)
        return
    import uvicorn

    from pages import study_pages

    pages = build_study_pages(ctx)
    if demo is None:  # the participant page at /, the researcher page beside it
        mounts = {"/": pages[study_pages.PARTICIPANT_PATH], study_pages.RESEARCHER_PATH: pages[study_pages.RESEARCHER_PATH]}
    else:
        mounts = {"/": demo, **pages}
    url = f"http://{args.host}:{args.port}"
    print(f"{APP_TITLE}: profile '{ctx.default_profile}', device {device}", flush=True)
    for path, blocks in mounts.items():
        print(f"  {url}{path if path != '/' else '/'}  {blocks.title}", flush=True)
    uvicorn.run(server_app(mounts), host=args.host, port=args.port, log_level="warning")


# ---------------------------------------------------------------------------- Streamlit front end


def streamlit_study_page(argv: list[str]):
    """The study page named on Streamlit's script arguments (`--participant` or `--researcher`), else None."""
    from pages import study_pages

    if "--participant" in argv:
        return study_pages.render_participant_streamlit
    if "--researcher" in argv:
        return study_pages.render_researcher_streamlit
    return None


def streamlit_main() -> None:
    import streamlit as st

    from pages import discover_pages
    from workbench.context import build_context

    st.set_page_config(page_title=APP_TITLE if streamlit_study_page(sys.argv[1:]) is None else "Study",
                       layout="wide")

    @st.cache_resource
    def shared_context():
        return attach_services(build_context())  # one manager for every session of this server

    ctx = shared_context()
    study_page = streamlit_study_page(sys.argv[1:])
    if study_page is not None:  # `streamlit run app.py -- --participant` / `-- --researcher`: that page alone
        study_page(ctx)
        return
    names = sorted(ctx.profiles)
    ss = st.session_state
    if ss.get("profile") not in names:
        ss["profile"] = ctx.default_profile
    warning = restart_warning()
    if warning:
        st.warning(warning)
    # The choice lives in `profile`, not in the widget's own key: Streamlit drops a widget's state when st.navigation
    # changes pages, and the menu came back on its first entry ("cpu") after the first page change. The widget is
    # drawn from `profile` on every run and writes it back when the user picks another.
    st.sidebar.selectbox("Profile", names, index=names.index(ss["profile"]), key="profile_menu",
                         on_change=lambda: ss.update(profile=ss["profile_menu"]))
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
