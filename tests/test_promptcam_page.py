"""The Prompt-CAM tab through gradio_client (the whole app on the fake profile, whose `promptcam` role is the small
shipped checkpoint) and the Streamlit page via AppTest."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from workbench.text import escape_markdown as esc

EXAMPLES = json.loads((ROOT / "assets/promptcam/examples/examples.json").read_text())
# The examples are the first two test images of each class, not picked for being right; use one it gets right.
RIGHT = next(e for e in EXAMPLES if e["predicted"] == e["true_class"])
CLASSES = json.loads((ROOT / "assets/promptcam/checkpoint/promptcam.json").read_text())["class_names"]


def _analyse(client, upload=None, example=RIGHT["file"], checkpoint="", cls="predicted", k=3, traits=4):
    # The session state (gr.State) is kept by the client's session, not sent: the endpoints take the other inputs.
    return client.predict("fake", upload, example, checkpoint, cls, k, traits, 0.5,
                          api_name="/promptcam_analyse")


def test_tab_explains_a_shipped_example(client):
    from gradio_client.exceptions import AppError

    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/promptcam_analyse", "/promptcam_render", "/promptcam_export"} <= set(api)
    example = RIGHT
    summary, table, heads, before_after, traits, gc, ro = _analyse(client)
    assert f"**predicted** {esc(example['true_class'])}" in summary  # the shipped checkpoint classifies it correctly
    assert "Random weights" not in summary and "validation accuracy" in summary
    assert table["data"][0][1] == example["true_class"] and len(table["data"]) == 3
    assert len(heads) == 4 and "head" in heads[0]["caption"] and len(traits) == 4
    assert gc is not None and ro is not None and len(before_after) == 2
    # "How does another class see this image?" by index
    other = (CLASSES.index(example["true_class"]) + 1) % len(CLASSES)
    summary2, *_ = _analyse(client, cls=str(other))
    assert f"**Explaining class** {esc(CLASSES[other])} (index {other}" in summary2
    with pytest.raises(AppError, match=r"class index must be between 0 and 3"):
        _analyse(client, cls="9")
    with pytest.raises(AppError, match="top traits \\(heads shown\\) must be a whole number between 1 and 4"):
        _analyse(client, traits=9)


def test_tab_refuses_bad_files_and_mismatched_checkpoints(client, tmp_path, monkeypatch):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from backends.tiny import tiny_vit
    from workbench.promptcam.model import (
        CheckpointMeta, PromptCAM, backbone_fingerprint, backbone_summary, save_checkpoint,
    )

    junk = tmp_path / "photo.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(AppError, match="not an image|damaged"):
        _analyse(client, upload=handle_file(str(junk)))
    backbone, _ = tiny_vit(image_size=32, patch_size=8)
    model = PromptCAM(backbone, 3)
    meta = CheckpointMeta(backbone="tiny:vit", backbone_config=backbone_summary(backbone.config),
                          backbone_fingerprint=backbone_fingerprint(backbone), class_names=["a", "b", "c"],
                          preprocess={})
    save_checkpoint(model, tmp_path / "other", meta)
    with pytest.raises(AppError, match="outside the folders this app reads from"):  # tmp_path is not a data folder
        _analyse(client, checkpoint=str(tmp_path / "other"))
    monkeypatch.setenv("WORKBENCH_USER_PATHS", str(tmp_path))  # the operator allows it
    with pytest.raises(AppError, match="does not match the loaded backbone: hidden_size: checkpoint 32"):
        _analyse(client, checkpoint=str(tmp_path / "other"))
    with pytest.raises(AppError, match="analyse an image first"):
        client.predict(0.5, 1, api_name="/promptcam_render")


def test_tab_uploads_convert_modes_and_export_png_with_caption(client, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    src = ROOT / "assets/promptcam/examples" / RIGHT["file"]
    rgba = tmp_path / "bird_rgba.png"
    Image.open(src).convert("RGBA").save(rgba)
    summary, *_ = _analyse(client, upload=handle_file(str(rgba)), example=None)
    assert "flattened the transparency" in summary and "bird\\_rgba\\.png" in summary
    summary2, table, heads, *_ = client.predict(0.8, 2, api_name="/promptcam_render")
    assert summary2 == summary and len(heads) == 4
    path = client.predict("prompt-cam head", 2, 0.8, api_name="/promptcam_export")
    with Image.open(path) as im:
        assert im.height > 256  # the overlay plus its caption band
    assert "head" in path and path.endswith(".png")


def _page_script() -> None:
    import streamlit as st

    from workbench.context import build_context

    @st.cache_resource
    def ctx():
        return build_context(profile="fake")

    st.session_state.setdefault("profile", "fake")
    import pages.promptcam

    pages.promptcam.render_streamlit(ctx())


def test_streamlit_page_explains_and_reports_bad_class():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page_script, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text = " ".join(m.value for m in at.markdown)
    assert "**Explaining class**" in text and esc(EXAMPLES[0]["true_class"]) in text
    typed = at.selectbox(key="promptcam_class_name")
    typed.options.append("42")  # a typed value (the menu accepts new options; AppTest can only pick listed ones)
    typed.set_value("42")
    at.button[0].click()
    at.run()
    assert any("class index must be between 0 and 3" in e.value for e in at.error)
