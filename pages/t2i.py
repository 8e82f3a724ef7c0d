"""Text→image prompt refinement tab (UF-FGTG): a coarse prompt becomes N fine-grained candidates, shown
editable with a word diff and a token-limit flag before any render; rendering is a separate click, each image
beside the original prompt's image from the same seed, each with a per-metric score panel; pick one and refine
further, with the tree of rounds visible and navigable. Layout and wiring only: the work is in workbench.t2i."""

from __future__ import annotations

from typing import Any

from workbench.t2i import diff as wdiff
from workbench.t2i.inputs import MAX_CANDIDATES
from workbench.t2i.refiner import DEFAULT_SYSTEM_TEMPLATE, RefineSettings
from workbench.t2i.scoring import DEFAULT_WEIGHTS, METRICS, RANDOM_NOTE, ImageScores, score_markdown
from workbench.t2i.session import RefinementSession

TITLE = "T2I prompt refinement"
ORDER = 10

REWRITER_LABELS = {
    "profile": "profile chat model",
    "profile:t2i_rewriter": "profile T2I rewriter role (e.g. Promptist in the paper profile)",
    "baseline": "keyword baseline (Promptist/MagicPrompt style)",
    "openai": "OpenAI-compatible server",
}
_KIND_BY_LABEL = {v: k for k, v in REWRITER_LABELS.items()}


# --------------------------------------------------------------------------- shared by both front ends


def rewriter_choice(kind_label: str, base_url: str, model: str, adapter: str):
    from workbench.t2i.service import RewriterChoice

    kind, _, role = _KIND_BY_LABEL.get(kind_label, kind_label).partition(":")
    return RewriterChoice(kind=kind, role=role or "chat", base_url=base_url or "", model=model or "",
                          adapter=adapter or "").check()


def refine_settings(n: Any, diversity: Any, few_shot: Any, temperature: Any, seed: Any) -> RefineSettings:
    def whole(value: Any, name: str) -> int:
        if value is None or (isinstance(value, float) and value != int(value)):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(value)

    return RefineSettings(n=whole(n, "n"), diversity=float(diversity), few_shot=whole(few_shot, "few-shot examples"),
                          temperature=float(temperature), seed=whole(seed, "seed")).check()


def image_settings(steps: Any, size: Any, seed: Any, guidance: Any):
    from workbench.types import ImageSettings

    for name, value in (("steps", steps), ("size", size), ("image seed", seed)):
        if value is None or float(value) != int(float(value)):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    return ImageSettings(steps=int(steps), width=int(size), height=int(size), seed=int(seed),
                         guidance_scale=float(guidance)).check()


def refine_summary(result: Any) -> str:
    lines = [f"**{len(result.candidates)} candidate(s)** chosen by MMR from {len(result.pool)} distinct rewrites "
             f"(rewriter `{result.settings.get('rewriter')}`). Text {result.diversity.describe()}."]
    if any(c.provenance.random_weights for c in result.candidates):
        lines.append(f"⚠️ rewriter: **{RANDOM_NOTE}**.")
    lines += [f"⚠️ {note}" for note in result.notes]
    if result.examples:
        lines.append("Few-shot examples retrieved by embedding similarity: " + "; ".join(
            f"“{e['coarse']}” ({e['similarity']:.2f})" for e in result.examples))
    return "\n\n".join(lines)


def flag_text(flag: Any) -> str:
    return flag.message()


def render_summary(rendered: Any) -> str:
    lines = []
    if rendered.round_diversity is not None:
        lines.append(f"Image diversity of this round (mean pairwise CLIP-image distance): "
                     f"**{rendered.round_diversity:.3f}**")
    lines += [f"⚠️ {w}" for w in rendered.warnings]
    truncated = [i + 1 for i, f in enumerate(rendered.flags) if f.tail]
    if truncated:
        lines.append(f"⚠️ candidates {truncated} were cut at the text encoder's limit; see each panel for the tail.")
    lines.append("Each panel shows every metric separately; the weighted total is shown beside them, never instead.")
    return "\n\n".join(lines)


def session_from_state(state_value: Any, action: str, edited: list[str] | None = None) -> RefinementSession:
    """The user's session from its Gradio state, with the candidates as currently edited in the text boxes."""
    if not state_value:
        raise ValueError(f"{action}: press Refine first")
    session_obj = RefinementSession.from_dict(state_value)
    if edited is not None:
        session_obj.set_candidates(edited)
    return session_obj


def candidate_panel(scores: ImageScores, flag: Any) -> str:
    text = score_markdown(scores)
    if flag is not None and flag.tail:
        text = f"⚠️ the image model never saw: “{flag.tail}”\n\n" + text
    return text


# --------------------------------------------------------------------------- Gradio


def build_gradio(ctx, session) -> None:
    import gradio as gr

    from workbench.t2i import service

    gr.Markdown(
        "Type a coarse prompt and get up to eight fine-grained rewrites. Edit them, compare the word diff, regenerate "
        "any one, then **Render** (the expensive step): each image sits beside the original prompt's image from the "
        "same seed, with a per-metric score panel. Pick one and **Refine further**; the tree of rounds below lets "
        "you go back and branch."
    )
    state = gr.State(None)
    with gr.Row():
        prompt = gr.Textbox(label="Coarse prompt", placeholder="a cat on a sofa", lines=2, scale=3, elem_id="t2i-prompt")
        with gr.Column(scale=1):
            n = gr.Slider(1, MAX_CANDIDATES, value=4, step=1, label="Candidates (N)", elem_id="t2i-n")
            diversity = gr.Slider(0, 1, value=0.5, step=0.05, label="Diversity (MMR: 0 = closest, 1 = most varied)")
    with gr.Accordion("Rewriter", open=False):
        kind = gr.Radio(list(REWRITER_LABELS.values()), value=REWRITER_LABELS["profile"], label="Rewriter",
                        elem_id="t2i-rewriter")
        with gr.Row():
            base_url = gr.Textbox(label="Server URL (OpenAI-compatible)", placeholder="http://127.0.0.1:8000/v1")
            model_name = gr.Textbox(label="Model name on that server")
            adapter = gr.Textbox(label="LoRA adapter folder (profile model only)",
                                 placeholder="a folder written by python -m workbench.t2i train")
        system_template = gr.Textbox(DEFAULT_SYSTEM_TEMPLATE, label="System template (editable)", lines=4)
        with gr.Row():
            few_shot = gr.Slider(0, 8, value=3, step=1, label="Few-shot examples (retrieved)")
            temperature = gr.Slider(0.1, 2.0, value=0.9, step=0.05, label="Temperature")
            seed = gr.Number(0, precision=0, label="Rewriter seed")
    refine_btn = gr.Button("Refine", variant="primary", elem_id="t2i-refine")
    status = gr.Markdown(elem_id="t2i-status")

    slots = []
    for i in range(MAX_CANDIDATES):
        with gr.Group(visible=False) as group:
            with gr.Row():
                text = gr.Textbox(label=f"Candidate {i + 1}", lines=3, scale=4, interactive=True)
                regen = gr.Button(f"Regenerate {i + 1}", scale=1, size="sm")
            diff_view = gr.HighlightedText(label="Word diff against the original", combine_adjacent=True,
                                           color_map={"added": "green", "removed": "red"})
            flag = gr.Markdown()
            with gr.Row():
                orig_img = gr.Image(label="Original prompt (same seed)", type="pil", height=192, interactive=False)
                cand_img = gr.Image(label=f"Candidate {i + 1}", type="pil", height=192, interactive=False)
            scores_md = gr.Markdown()
        slots.append(dict(group=group, text=text, regen=regen, diff=diff_view, flag=flag, orig=orig_img,
                          cand=cand_img, scores=scores_md))
    texts = [s["text"] for s in slots]

    with gr.Accordion("Render and scores", open=True):
        with gr.Row():
            steps = gr.Slider(1, 150, value=20, step=1, label="Steps")
            size = gr.Slider(64, 1024, value=512, step=8, label="Size (px)")
            image_seed = gr.Number(0, precision=0, label="Image seed (same for every image)")
            guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance")
        with gr.Row():
            weight_inputs = [gr.Slider(0, 10, value=DEFAULT_WEIGHTS[m], step=0.25, label=f"weight: {m}", info=METRICS[m])
                             for m in METRICS]
        render_btn = gr.Button("Render", variant="primary", elem_id="t2i-render")
        render_status = gr.Markdown(elem_id="t2i-render-status")
    with gr.Row():
        pick = gr.Dropdown(choices=[], label="Pick a candidate", elem_id="t2i-pick")
        further_btn = gr.Button("Refine further from the pick", elem_id="t2i-further")
    with gr.Accordion("History (tree of rounds)", open=True):
        tree = gr.Markdown(elem_id="t2i-tree")
        with gr.Row():
            round_choice = gr.Dropdown(choices=[], label="Round", elem_id="t2i-round")
            back_btn = gr.Button("Go back to this round")

    rewriter_inputs = [kind, base_url, model_name, adapter, system_template, n, diversity, few_shot, temperature, seed]

    def fail(exc: BaseException):
        return gr.Error(str(exc))

    def slot_updates(profile_name: str, session_obj: RefinementSession) -> list[Any]:
        rnd = session_obj.round()
        flags: list[Any] = []
        try:
            flags = service.check_token_limits(ctx, profile_name, rnd.candidates) if rnd.candidates else []
        except (ValueError, RuntimeError) as exc:
            flags = [None] * len(rnd.candidates)
            flag_error = f"token limit not checked: {exc}"
        else:
            flag_error = ""
        out: list[Any] = []
        for i in range(MAX_CANDIDATES):
            visible = i < len(rnd.candidates)
            text = rnd.candidates[i] if visible else ""
            pieces = wdiff.highlighted(wdiff.word_diff(session_obj.root_prompt, text)) if visible else []
            flag = (flags[i].message() if flags[i] is not None else flag_error) if visible else ""
            stored = rnd.scores[i] if visible and i < len(rnd.scores) else None
            score_text = _stored_scores_md(stored) if stored else ""
            out += [gr.update(visible=visible), text, pieces, flag, None, None, score_text]
        return out

    def refresh_all(profile_name: str, session_obj: RefinementSession, message: str) -> list[Any]:
        rnd = session_obj.round()
        picks = [(f"{i + 1}: {t[:60]}", i + 1) for i, t in enumerate(rnd.candidates)]
        rounds = [(label, rid) for label, rid in session_obj.round_choices()]
        return [session_obj.to_dict(), message, session_obj.tree_markdown(),
                gr.update(choices=rounds, value=session_obj.current),
                gr.update(choices=picks, value=picks[0][1] if picks else None), *slot_updates(profile_name, session_obj)]

    def do_refine(profile_name, prompt_text, *args):
        try:
            rewriter = rewriter_choice(*args[:4])
            settings = refine_settings(*args[5:])
            result = service.refine(ctx, profile_name, prompt_text, rewriter, settings, args[4])
            session_obj = RefinementSession.start(result.prompt, [c.to_dict() for c in result.candidates],
                                                  rewriter.describe(ctx.profile(profile_name)))
            return refresh_all(profile_name, session_obj, refine_summary(result))
        except (ValueError, RuntimeError) as exc:
            raise fail(exc) from exc

    def do_further(profile_name, state_value, pick_value, *args):
        try:
            edited, rest = list(args[:MAX_CANDIDATES]), args[MAX_CANDIDATES:]
            session_obj = session_from_state(state_value, "nothing to refine further yet", edited)
            if pick_value in (None, ""):
                raise ValueError("pick a candidate first")
            index = int(pick_value) - 1
            picked = session_obj.pick(index)
            rewriter = rewriter_choice(*rest[:4])
            settings = refine_settings(*rest[5:])
            result = service.refine(ctx, profile_name, picked, rewriter, settings, rest[4])
            session_obj.refine_further(index, [c.to_dict() for c in result.candidates],
                                       rewriter.describe(ctx.profile(profile_name)))
            return refresh_all(profile_name, session_obj, refine_summary(result))
        except (ValueError, RuntimeError) as exc:
            raise fail(exc) from exc

    def do_back(profile_name, state_value, round_value):
        try:
            session_obj = session_from_state(state_value, "there is no history yet")
            session_obj.go_back(int(round_value) if round_value not in (None, "") else -1)
            return refresh_all(profile_name, session_obj, f"Back at round {session_obj.current}. Render again to see its images.")
        except (ValueError, RuntimeError) as exc:
            raise fail(exc) from exc

    def make_regen(slot: int):
        def do_regen(profile_name, state_value, *args):
            try:
                edited, rest = list(args[:MAX_CANDIDATES]), args[MAX_CANDIDATES:]
                session_obj = session_from_state(state_value, "nothing to regenerate yet", edited)
                rnd = session_obj.round()
                if slot >= len(rnd.candidates):
                    raise ValueError(f"candidate {slot + 1} is not shown; this round has {len(rnd.candidates)}")
                rewriter = rewriter_choice(*rest[:4])
                settings = refine_settings(*rest[5:])
                settings.seed = settings.seed + 1000 * (slot + 1) + len(rnd.candidate_info) * 7 + _regen_count(rnd)
                others = [t for j, t in enumerate(rnd.candidates) if j != slot]
                cand = service.regenerate(ctx, profile_name, rnd.prompt, others, rewriter, settings, rest[4])
                rnd.candidates[slot] = cand.text
                rnd.candidate_info[slot] = {**cand.to_dict(), "regenerations": _regen_count(rnd) + 1}
                flag = service.check_token_limits(ctx, profile_name, [cand.text])[0]
                pieces = wdiff.highlighted(wdiff.word_diff(session_obj.root_prompt, cand.text))
                return [session_obj.to_dict(), cand.text, pieces, flag.message(),
                        f"Candidate {slot + 1} regenerated."]
            except (ValueError, RuntimeError) as exc:
                raise fail(exc) from exc

        return do_regen

    def do_render(profile_name, state_value, *args):
        try:
            session_obj = session_from_state(state_value, "nothing to render yet")
            edited = list(args[:MAX_CANDIDATES])
            steps_v, size_v, seed_v, guidance_v = args[MAX_CANDIDATES:MAX_CANDIDATES + 4]
            weights = dict(zip(METRICS, (float(w) for w in args[MAX_CANDIDATES + 4:])))
            settings = image_settings(steps_v, size_v, seed_v, guidance_v)
            session_obj.set_candidates(edited)
            rnd = session_obj.round()
            rendered = service.render_round(ctx, profile_name, session_obj.root_prompt, rnd.candidates, settings,
                                            weights)
            rnd.scores = [s.to_dict() for s in rendered.scores]
            out: list[Any] = [session_obj.to_dict(), render_summary(rendered)]
            for i in range(MAX_CANDIDATES):
                if i < len(rendered.images):
                    out += [rendered.original.image, rendered.images[i].image,
                            candidate_panel(rendered.scores[i], rendered.flags[i])]
                else:
                    out += [None, None, ""]
            return out
        except (ValueError, RuntimeError) as exc:
            raise fail(exc) from exc

    def on_edit(profile_name, state_value, text_value):
        if not state_value:
            return [], ""
        session_obj = RefinementSession.from_dict(state_value)
        pieces = wdiff.highlighted(wdiff.word_diff(session_obj.root_prompt, text_value or ""))
        try:
            flag = service.check_token_limits(ctx, profile_name, [text_value])[0].message() \
                if (text_value or "").strip() else "empty candidate: it will be refused at render"
        except (ValueError, RuntimeError) as exc:
            flag = f"token limit not checked: {exc}"
        return pieces, flag

    slot_outputs = [c for s in slots for c in (s["group"], s["text"], s["diff"], s["flag"], s["orig"], s["cand"],
                                               s["scores"])]
    head_outputs = [state, status, tree, round_choice, pick]
    refine_btn.click(do_refine, [session.profile, prompt, *rewriter_inputs], head_outputs + slot_outputs,
                     api_name="t2i_refine")
    further_btn.click(do_further, [session.profile, state, pick, *texts, *rewriter_inputs],
                      head_outputs + slot_outputs, api_name="t2i_refine_further")
    back_btn.click(do_back, [session.profile, state, round_choice], head_outputs + slot_outputs,
                   api_name="t2i_go_back")
    render_outputs = [state, render_status] + [c for s in slots for c in (s["orig"], s["cand"], s["scores"])]
    render_btn.click(do_render, [session.profile, state, *texts, steps, size, image_seed, guidance, *weight_inputs],
                     render_outputs, api_name="t2i_render")
    for i, s in enumerate(slots):
        s["regen"].click(make_regen(i), [session.profile, state, *texts, *rewriter_inputs],
                         [state, s["text"], s["diff"], s["flag"], status], api_name=f"t2i_regenerate_{i + 1}")
        s["text"].input(on_edit, [session.profile, state, s["text"]], [s["diff"], s["flag"]], api_name=False)


def _regen_count(rnd: Any) -> int:
    return sum(int(info.get("regenerations", 0)) for info in rnd.candidate_info)


def _stored_scores_md(stored: dict) -> str:
    lines = ["| metric | value | note |", "|---|---|---|"]
    for metric, s in (stored.get("scores") or {}).items():
        value = "n/a" if s.get("value") is None else f"{s['value']:.3f}"
        lines.append(f"| {metric} | {value} | {s.get('note', '')} |")
    total = stored.get("total") or {}
    if total.get("value") is not None:
        lines.append(f"| weighted total (beside) | {total['value']:.3f} | {total.get('note', '')} |")
    return "(scores from the last render of this round)\n\n" + "\n".join(lines)


# --------------------------------------------------------------------------- Streamlit


def render_streamlit(ctx) -> None:
    import streamlit as st

    from workbench.t2i import service

    ss = st.session_state
    profile_name = ss.get("profile", ctx.default_profile)
    # Values for widgets that already exist can only be set before they are drawn: apply pending ones first.
    if "t2i_pending_round" in ss and ss.get("t2i_session"):
        ss.pop("t2i_pending_round")
        pending = RefinementSession.from_dict(ss["t2i_session"]).round()
        for i, text in enumerate(pending.candidates):
            ss[f"t2i_cand_{i}"] = text
        ss["t2i_rendered"] = None
    for i in range(MAX_CANDIDATES):
        if f"t2i_pending_{i}" in ss:
            ss[f"t2i_cand_{i}"] = ss.pop(f"t2i_pending_{i}")
    st.caption("Type a coarse prompt, get fine-grained candidates; edit, diff and regenerate them before rendering. "
               "Rendering is a separate click. Pick one and refine further; the history tree lets you go back.")
    prompt = st.text_area("Coarse prompt", key="t2i_prompt", placeholder="a cat on a sofa")
    cols = st.columns(3)
    n = cols[0].slider("Candidates (N)", 1, MAX_CANDIDATES, 4, key="t2i_n")
    diversity = cols[1].slider("Diversity (MMR)", 0.0, 1.0, 0.5, 0.05, key="t2i_diversity")
    seed = cols[2].number_input("Rewriter seed", 0, 2**31, 0, key="t2i_seed")
    with st.expander("Rewriter"):
        kind = st.radio("Rewriter", list(REWRITER_LABELS.values()), key="t2i_kind")
        base_url = st.text_input("Server URL (OpenAI-compatible)", key="t2i_base_url")
        model_name = st.text_input("Model name on that server", key="t2i_model")
        adapter = st.text_input("LoRA adapter folder (profile model only)", key="t2i_adapter")
        template = st.text_area("System template", DEFAULT_SYSTEM_TEMPLATE, key="t2i_template")
        few_shot = st.slider("Few-shot examples", 0, 8, 3, key="t2i_few_shot")
        temperature = st.slider("Temperature", 0.1, 2.0, 0.9, 0.05, key="t2i_temperature")

    def settings_now():
        return rewriter_choice(kind, base_url, model_name, adapter), refine_settings(n, diversity, few_shot,
                                                                                  temperature, seed)

    def show_round(session_obj: RefinementSession) -> None:
        rnd = session_obj.round()
        for i, text in enumerate(rnd.candidates):
            ss[f"t2i_cand_{i}"] = text
        ss["t2i_count"] = len(rnd.candidates)
        ss["t2i_rendered"] = None

    if st.button("Refine", key="t2i_refine", type="primary"):
        try:
            rewriter, settings = settings_now()
            with st.spinner("Rewriting..."):
                result = service.refine(ctx, profile_name, prompt, rewriter, settings, template)
            session_obj = RefinementSession.start(result.prompt, [c.to_dict() for c in result.candidates],
                                                  rewriter.describe(ctx.profile(profile_name)))
            ss["t2i_session"] = session_obj.to_dict()
            ss["t2i_summary"] = refine_summary(result)
            show_round(session_obj)
        except (ValueError, RuntimeError) as exc:
            st.error(str(exc))

    if not ss.get("t2i_session"):
        return
    session_obj = RefinementSession.from_dict(ss["t2i_session"])
    rnd = session_obj.round()
    st.markdown(ss.get("t2i_summary", ""))
    rendered = ss.get("t2i_rendered")
    for i in range(len(rnd.candidates)):
        st.subheader(f"Candidate {i + 1}")
        text = st.text_area(f"Candidate {i + 1}", key=f"t2i_cand_{i}", label_visibility="collapsed")
        st.markdown("Diff: " + wdiff.to_markdown(wdiff.word_diff(session_obj.root_prompt, text)))
        if text.strip():
            try:
                st.caption(service.check_token_limits(ctx, profile_name, [text])[0].message())
            except (ValueError, RuntimeError) as exc:
                st.warning(f"token limit not checked: {exc}")
        if st.button(f"Regenerate {i + 1}", key=f"t2i_regen_{i}"):
            try:
                rewriter, settings = settings_now()
                settings.seed = settings.seed + 1000 * (i + 1) + int(ss.get("t2i_regens", 0))
                ss["t2i_regens"] = int(ss.get("t2i_regens", 0)) + 1
                others = [ss[f"t2i_cand_{j}"] for j in range(len(rnd.candidates)) if j != i]
                cand = service.regenerate(ctx, profile_name, rnd.prompt, others, rewriter, settings, template)
                rnd.candidates[i] = cand.text
                rnd.candidate_info[i] = cand.to_dict()
                ss["t2i_session"] = session_obj.to_dict()
                ss[f"t2i_pending_{i}"] = cand.text
                st.rerun()
            except (ValueError, RuntimeError) as exc:
                st.error(str(exc))
        if rendered and i < len(rendered.images):
            left, right = st.columns(2)
            left.image(rendered.original.image, caption="original prompt (same seed)")
            right.image(rendered.images[i].image, caption=f"candidate {i + 1}")
            st.markdown(candidate_panel(rendered.scores[i], rendered.flags[i]))

    with st.expander("Render settings and weights"):
        rc = st.columns(4)
        steps = rc[0].slider("Steps", 1, 150, 20, key="t2i_steps")
        size = rc[1].select_slider("Size", options=list(range(64, 1025, 64)), value=512, key="t2i_size")
        image_seed = rc[2].number_input("Image seed", 0, 2**31, 0, key="t2i_image_seed")
        guidance = rc[3].slider("Guidance", 0.0, 20.0, 7.5, 0.5, key="t2i_guidance")
        weights = {m: st.slider(f"weight: {m}", 0.0, 10.0, DEFAULT_WEIGHTS[m], 0.25, key=f"t2i_w_{m}", help=METRICS[m])
                   for m in METRICS}
    if st.button("Render", key="t2i_render", type="primary"):
        try:
            session_obj.set_candidates([ss[f"t2i_cand_{i}"] for i in range(len(rnd.candidates))])
            with st.spinner("Rendering and scoring..."):
                result = service.render_round(ctx, profile_name, session_obj.root_prompt, rnd.candidates,
                                              image_settings(steps, size, image_seed, guidance), weights)
            rnd.scores = [s.to_dict() for s in result.scores]
            ss["t2i_session"] = session_obj.to_dict()
            ss["t2i_rendered"] = result
            st.rerun()
        except (ValueError, RuntimeError) as exc:
            st.error(str(exc))
    if rendered:
        st.markdown(render_summary(rendered))

    pc = st.columns(2)
    pick = pc[0].selectbox("Pick a candidate", list(range(1, len(rnd.candidates) + 1)), key="t2i_pick")
    if pc[1].button("Refine further from the pick", key="t2i_further"):
        try:
            session_obj.set_candidates([ss[f"t2i_cand_{i}"] for i in range(len(rnd.candidates))])
            rewriter, settings = settings_now()
            picked = session_obj.pick(int(pick) - 1)
            result = service.refine(ctx, profile_name, picked, rewriter, settings, template)
            session_obj.refine_further(int(pick) - 1, [c.to_dict() for c in result.candidates],
                                       rewriter.describe(ctx.profile(profile_name)))
            ss["t2i_session"] = session_obj.to_dict()
            ss["t2i_summary"] = refine_summary(result)
            ss["t2i_pending_round"] = session_obj.current
            st.rerun()
        except (ValueError, RuntimeError) as exc:
            st.error(str(exc))
    st.markdown("**History (tree of rounds)**")
    st.markdown(session_obj.tree_markdown())
    bc = st.columns(2)
    target = bc[0].selectbox("Round", [rid for _, rid in session_obj.round_choices()], index=session_obj.current,
                             key="t2i_round")
    if bc[1].button("Go back to this round", key="t2i_back"):
        session_obj.go_back(int(target))
        ss["t2i_session"] = session_obj.to_dict()
        ss["t2i_pending_round"] = session_obj.current
        st.rerun()
