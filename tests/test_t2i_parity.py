"""The same clicks give the same results and the same recorded events in both front ends: each input and action
of the T2I tab is declared once (workbench.t2i.forms, workbench.t2i.actions)."""

from __future__ import annotations

from tests.parity import Recorder, app_test, no_errors
from tests.test_t2i_page import N_SLOTS

PROMPT = "a lighthouse at dusk"


def test_every_action_gives_the_same_outputs_and_events_in_gradio_and_streamlit(client, fake_ctx):
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE

    events = Recorder(fake_ctx)
    from workbench.t2i.defaults import FACET_DEFAULTS

    # the diversity slider at its default (the Streamlit run below leaves it there)
    rewriter = ["profile chat model", "", "", "", DEFAULT_SYSTEM_TEMPLATE, 3, FACET_DEFAULTS["diversity"], 3, FACET_DEFAULTS["temperature"], 0]
    render = [1, 64, 0, 7.5, 1.0, 0.5, 0.5, 1.0, 0.25]
    # Gradio: Refine (N=3), regenerate candidate 2, render, sort, refine further from 2, go back to round 0.
    out = client.predict("fake", PROMPT, *rewriter, api_name="/t2i_refine")
    gradio_status, gradio_tree = out[0], out[1]
    texts = [out[4 + 3 * i] for i in range(N_SLOTS)]
    refined = list(texts)
    regen = client.predict("fake", *texts, *rewriter, api_name="/t2i_regenerate_2")
    texts[1] = regen[0]
    rendered = client.predict("fake", *texts, *render, api_name="/t2i_render")
    gradio_rows = [row[:-1] for row in client.predict("weighted total", api_name="/t2i_sort")[3]["data"]]
    further = client.predict("fake", 2, *texts, *rewriter, api_name="/t2i_refine_further")
    back = client.predict("fake", 0, api_name="/t2i_go_back")

    # Streamlit: the same inputs, through the page's own widgets.
    at = app_test(fake_ctx, "t2i")
    at.run()
    at.text_area(key="t2i_prompt").set_value(PROMPT).run()
    at.slider(key="t2i_n").set_value(3).run()
    at.radio(key="t2i_kind").set_value("profile chat model").run()
    at.button(key="t2i_refine").click().run()
    no_errors(at)
    streamlit_texts = [at.text_area(key=f"t2i_cand_{i}").value for i in range(3)]
    markdown = [m.value for m in at.markdown]
    at.button(key="t2i_regen_1").click().run()
    no_errors(at)
    assert at.text_area(key="t2i_cand_1").value == texts[1] and texts[1] not in streamlit_texts
    at.slider(key="t2i_img_steps").set_value(1).run()
    at.slider(key="t2i_img_size").set_value(64).run()
    at.button(key="t2i_render").click().run()
    no_errors(at)
    at.selectbox(key="t2i_sort_by").set_value("weighted total").run()
    no_errors(at)
    streamlit_rows = [list(r)[:-1] for r in at.dataframe[0].value.itertuples(index=False)]
    at.selectbox(key="t2i_pick").set_value(2).run()
    at.button(key="t2i_further").click().run()
    no_errors(at)
    further_markdown = " ".join(m.value for m in at.markdown)
    at.selectbox(key="t2i_round").set_value(0).run()
    at.button(key="t2i_back").click().run()
    no_errors(at)

    assert streamlit_texts == refined[:3] and refined[3:] == [""] * 5
    assert gradio_status in markdown and gradio_tree in markdown
    assert "Rendered 4 images" in rendered[0]
    assert [[str(x) for x in r] for r in streamlit_rows] == [[str(x) for x in r] for r in gradio_rows]
    words = lambda text: " ".join(text.split())  # Gradio's Markdown output drops the tree's no-break spaces
    assert words(further[1]) in words(further_markdown)
    assert "round 1 (from candidate 2 of round 0)" in further[1]
    assert "Back at round 0" in back[0] and at.text_area(key="t2i_cand_0").value == back[4]
    recorded = events.assert_same("t2i")
    assert [name for name, _, _ in recorded] == ["t2i_refine", "t2i_regenerate_2", "t2i_render", "t2i_sort",
                                                 "t2i_refine_further", "t2i_go_back"]
    refine_inputs = recorded[0][1]
    assert refine_inputs["prompt"] == PROMPT and refine_inputs["n"] == 3 and refine_inputs["profile"] == "fake"
    assert recorded[2][1]["steps"] == 1 and recorded[2][1]["align_original"] == 1.0
    assert all(error is None for _, _, error in recorded)
