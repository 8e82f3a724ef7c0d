"""The same clicks give the same results in both front ends: each flow lives once in workbench.t2i.flows."""

from __future__ import annotations

from tests.test_t2i_page import N_SLOTS, _streamlit_page

PROMPT = "a lighthouse at dusk"


def test_refine_then_regenerate_gives_the_same_candidates_in_gradio_and_streamlit(client):
    from streamlit.testing.v1 import AppTest

    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE

    # Gradio: Refine with the tab's defaults (N=3), then regenerate candidate 2.
    rewriter = ["profile chat model", "", "", "", DEFAULT_SYSTEM_TEMPLATE, 3, 0.5, 3, 0.9, 0]
    out = client.predict("fake", PROMPT, *rewriter, api_name="/t2i_refine")
    gradio_status, gradio_tree = out[0], out[1]
    gradio_texts = [out[4 + 3 * i] for i in range(N_SLOTS)][:3]
    regen = client.predict("fake", *gradio_texts, *[""] * (N_SLOTS - 3), *rewriter, api_name="/t2i_regenerate_2")
    gradio_regenerated = regen[0]

    # Streamlit: the same inputs.
    at = AppTest.from_function(_streamlit_page, kwargs={"root": ""}, default_timeout=60)
    at.run()
    at.text_area(key="t2i_prompt").set_value(PROMPT).run()
    at.slider(key="t2i_n").set_value(3).run()
    at.button(key="t2i_refine").click().run()
    assert not at.exception and not at.error
    streamlit_texts = [at.text_area(key=f"t2i_cand_{i}").value for i in range(3)]
    markdown = [m.value for m in at.markdown]
    at.button(key="t2i_regen_1").click().run()
    assert not at.exception and not at.error
    streamlit_regenerated = at.text_area(key="t2i_cand_1").value

    assert streamlit_texts == gradio_texts
    assert gradio_status in markdown and gradio_tree in markdown
    assert streamlit_regenerated == gradio_regenerated and gradio_regenerated not in gradio_texts
