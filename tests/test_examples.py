"""Cached examples: every landed tab has some, labelled with their provenance, shown in both front ends, and
opened by themselves when the GPU is unavailable (CPU Space, ZeroGPU quota used up)."""

from __future__ import annotations

import pytest

from workbench import examples as ex
from workbench import gpu

TABS = ("t2i", "shift", "models", "t2v", "promptcam", "promptor")


@pytest.fixture
def no_space(monkeypatch):
    for name in ("SPACE_ID", "SPACE_HARDWARE", "SPACES_ZERO_GPU"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    gpu._quota_hit.clear()
    yield monkeypatch
    gpu._quota_hit.clear()


@pytest.mark.parametrize("tab", TABS)
def test_every_landed_tab_has_small_labelled_examples(tab):
    examples, provenance = ex.load_examples(tab)
    assert examples, f"assets/examples/{tab}/ has no examples: run assets/examples/make_examples.py"
    assert provenance["profile"] in ("fake", "offline", "gpu") and provenance["commit"] and provenance["made"]
    assert provenance["models"] and "make_examples.py" in provenance["command"]
    for e in examples:
        assert e.title and e.inputs and any(s.strip() for s in e.sections)
        for name, caption in e.images:
            path = ex.tab_dir(tab) / name
            assert path.exists() and path.stat().st_size < 200_000 and caption
    total = sum(p.stat().st_size for p in ex.tab_dir(tab).iterdir())
    assert total < 1_000_000  # small files: the Space uploads them


def test_showing_an_example_gives_its_results_images_and_provenance():
    examples, _ = ex.load_examples("t2i")
    view = ex.show_example("t2i", examples[0].title)
    assert "Cached example" in view.markdown and "Precomputed with the" in view.markdown
    # the offline image model is the miniature world's: said plainly, with the prompt's words it does not know
    assert "Images come from the miniature world" in view.markdown and "“cat”" in view.markdown
    assert len(view.images) == len(examples[0].images) and view.images[0][0].size[0] > 0
    with pytest.raises(ValueError, match="no cached example named"):
        ex.show_example("t2i", "nope")


def test_panel_is_closed_normally_and_opens_without_a_gpu(no_space):
    assert not ex.panel("t2i").open
    no_space.setenv("SPACE_ID", "someone/workbench")
    no_space.setenv("SPACE_HARDWARE", "cpu-basic")
    view = ex.panel("t2i")
    assert view.open and "this Space runs on CPU hardware" in view.note and view.titles
    no_space.delenv("SPACE_HARDWARE")  # without the hint: no CUDA (as on this test machine) means CPU hardware
    assert ex.panel("t2i").open
    no_space.setenv("SPACES_ZERO_GPU", "true")  # ZeroGPU: the GPU is there until the quota runs out
    assert not ex.panel("t2i").open
    gpu._quota_hit.set()
    assert ex.panel("shift").open and "quota" in ex.panel("shift").note


def test_a_tab_without_examples_says_so(tmp_path):
    view = ex.panel("promptor", root=tmp_path)
    assert view.titles == [] and "no cached examples yet" in view.note


def test_save_and_load_round_trip(tmp_path):
    from PIL import Image

    e = ex.CachedExample("one", {"prompt": "a *cat*"}, ["result"], [("a.png", "the image")])
    ex.save_examples("mytab", [e], {"profile": "fake", "commit": "abc", "made": "today"},
                     {"a.png": Image.new("RGB", (8, 8))}, root=tmp_path)
    view = ex.show_example("mytab", "one", root=tmp_path)
    assert r"a \*cat\*" in view.markdown  # user text escaped
    assert view.images[0][1] == "the image"


def test_gradio_tabs_show_examples(client):
    for tab in TABS:
        title = ex.load_examples(tab)[0][0].title
        markdown, gallery = client.predict(title, api_name=f"/{tab}_example")
        assert "Cached example" in markdown and "Precomputed with the" in markdown
        if tab == "t2i":
            assert len(gallery["value"]) == 5 and "original (same seed)" in gallery["value"][0]["caption"]
        if tab == "promptcam":  # ranked head maps, then Grad-CAM and rollout
            assert len(gallery["value"]) == 6 and "Grad-CAM" in gallery["value"][4]["caption"]
        if tab == "t2v":
            assert [g["caption"].split(" ")[0] for g in gallery["value"]] == ["original", "best:"]
        if tab == "promptor":
            assert "Draft v2" in markdown and "{user_text}" in markdown


def test_gradio_panel_opens_on_a_cpu_space(no_space, fake_ctx):
    import app

    no_space.setenv("SPACE_ID", "someone/workbench")
    no_space.setenv("SPACE_HARDWARE", "cpu-basic")
    demo = app.build_demo(fake_ctx)
    panels = {c["props"]["elem_id"]: c["props"] for c in demo.config["components"]
              if c.get("type") == "accordion" and str(c.get("props", {}).get("elem_id", "")).endswith("-examples")}
    assert set(panels) == {f"{t}-examples" for t in TABS}
    assert all(p["open"] for p in panels.values())


def test_streamlit_page_shows_an_example():
    from streamlit.testing.v1 import AppTest

    from tests.test_streamlit import _page_script

    at = AppTest.from_function(_page_script, args=("models", ""), default_timeout=120)
    at.run()
    title = ex.load_examples("models")[0][0].title
    at.selectbox(key="models-example-choice").set_value(title).run()
    assert not at.exception and not at.error
    text = " ".join(m.value for m in at.markdown)
    assert "Cached example" in text and "Precomputed with the" in text
