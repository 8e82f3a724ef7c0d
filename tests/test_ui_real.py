"""Each tab driven through its UI (gradio_client on the whole app) with the offline profile's REAL models
(SmolLM2-135M-Instruct + the shipped T2I adapter, Gemma-3-270M base/instruct, MiniLM, the shipped Prompt-CAM
checkpoint). Every check is about content a wrong model or broken wiring would change. One app, one manager
(the session's `real_manager`, so models other real tests loaded are reused); budgets kept small for 2 cores."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, gradio_client_for

pytestmark = [pytest.mark.real_models, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_client(real_manager, profiles, tmp_path_factory):
    import os

    from workbench.context import AppContext

    os.environ.setdefault("WORKBENCH_PROMPTOR_SESSIONS", str(tmp_path_factory.mktemp("promptor")))
    ctx = AppContext(manager=real_manager, profiles=profiles, default_profile="offline")
    with gradio_client_for(ctx) as client:
        yield client


def test_promptcam_predicts_the_examples_class(real_client):
    examples = json.loads((ROOT / "assets/promptcam/examples/examples.json").read_text())
    right = next(e for e in examples if e["predicted"] == e["true_class"])
    out = real_client.predict("offline", None, right["file"], "", "predicted", 3, 4, 0.5,
                              api_name="/promptcam_analyse")
    summary = out[0]
    shown = re.sub(r"\\(.)", r"\1", summary)
    assert f"**predicted** {right['true_class']}" in shown, summary[:500]


def test_t2i_candidates_keep_the_subject_and_fit_the_window(real_client, real_manager, offline_profile):
    from workbench.t2i.flows import REWRITER_LABELS
    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE

    out = real_client.predict("offline", "a red fox in the snow", REWRITER_LABELS["profile"], "", "", "",
                              DEFAULT_SYSTEM_TEMPLATE, 2, 0.5, 2, 0.9, 0, api_name="/t2i_refine")
    status = out[0]
    texts = [t for t in (out[4], out[7]) if isinstance(t, str) and t.strip()]
    assert len(texts) >= 1, status  # the guard may drop one; never all silently
    assert "smollm2-135m-t2i-rewriter-lora" in status, status  # the shipped adapter wrote them
    window = real_manager.prompt_window(offline_profile.spec("t2i"))
    for text in texts:
        assert "fox" in text.lower(), text
        assert not window.split(text)[1], f"over the image model's text window: {text}"


def test_shift_base_and_instruct_answer_a_format_probe_differently(real_client):
    probe = json.loads((ROOT / "assets/instruct_data/format_probes.jsonl").read_text().splitlines()[0])
    methods = ["gradient × input (the paper's)"]
    views = [methods[0], 1, 8, "all", "all", "instruct", 0, 0]
    out = real_client.predict("offline", f"[[{probe['instruction']}]]", "", False, 8, 4, methods, ["attention"],
                              *views, api_name="/shift_analyse")
    summary = out[0]
    answers = dict(re.findall(r"^- (base|instruct): `(.*)`$", summary, flags=re.M))
    assert set(answers) == {"base", "instruct"}, summary[:800]
    assert answers["base"] != answers["instruct"], answers  # the adapter changed the answer
    assert "random weights" not in summary.lower()


def test_promptor_reaches_a_draft(real_client):
    backend = ("offline", "profile chat model", "", "", "profile chat model", "", "", True, 0.0, 0)
    out = real_client.predict("personalised reply suggestion", *backend, api_name="/promptor_send")
    for _ in range(8):
        if "{user_text}" in (out[10] or ""):
            break
        out = real_client.predict("ok", *backend, api_name="/promptor_send")
    assert "{user_text}" in out[10], out[2]  # the draft box holds a template with the user's text slot
    assert len(out[10].split()) >= 8, out[10]


def test_t2v_principles_keep_a_safe_ideas_words_and_refuse_an_unsafe_one(real_client):
    from workbench.t2v.flows import REWRITER_LABELS

    vpo = real_client.predict("offline", "a dog running on a beach", 0.5, 2, 1, 0, REWRITER_LABELS["profile"], "",
                              "", 60, api_name="/t2v_principles")
    principles, chosen = vpo[9], vpo[10] if isinstance(vpo[10], str) else ""
    assert "Refused" not in principles, principles[:500]
    rewrite = (chosen or principles).lower()
    assert "dog" in rewrite and "beach" in rewrite, rewrite[:500]
    # The refusal of an unsafe idea: the safety role's verdict (issue 21) reaches the user as an error naming the
    # category and the words, and nothing is rewritten
    with pytest.raises(Exception, match=r"unsafe to render: graphic violence .*gory.*massacre"):
        real_client.predict("offline", "a gory massacre", 0.5, 2, 1, 0, REWRITER_LABELS["profile"], "", "", 60,
                            api_name="/t2v_principles")


def test_t2i_token_heatmap_of_a_rendered_word(real_client):
    """Refine (keyword baseline: no language model needed), render on the offline image model, then the token
    heatmap of one word: the overlay is the grid's image with the word's map blended in at the chosen opacity,
    and its PNG carries the render's provenance."""
    import numpy as np
    from PIL import Image

    from workbench.common.refiner import DEFAULT_SYSTEM_TEMPLATE
    from workbench.t2i.flows import REWRITER_LABELS
    from workbench.t2i.scoring import METRICS

    out = real_client.predict("offline", "a red fox in the snow", REWRITER_LABELS["baseline"], "", "", "",
                              DEFAULT_SYSTEM_TEMPLATE, 2, 0.5, 2, 0.9, 0, api_name="/t2i_refine")
    texts = [out[4 + 3 * i] or "" for i in range(8)]
    rendered = real_client.predict("offline", *texts, 2, 64, 3, 7.5, *[1.0] * len(METRICS), api_name="/t2i_render")
    grid, image_choice, word_choice = rendered[2], rendered[9], rendered[10]
    assert image_choice["value"] == "#1" and "fox" in [c[0] for c in word_choice["choices"]]
    tile = np.asarray(Image.open(grid[1]["image"]).convert("RGB"), dtype=float)  # candidate #1
    # "red", a world word: the offline image model is the world's, trained (the caption says nothing of random
    # weights), and its map of a colour word gathers on the object (pointing game 0.77, README)
    view, caption, png, image, word = real_client.predict("offline", "#1", "red", 0.6, api_name="/t2i_heatmap")
    assert image["value"] == "#1" and word["value"] == "red"
    assert "**red**" in caption and "random weights" not in caption
    overlay = np.asarray(Image.open(view).convert("RGB"), dtype=float)
    k = overlay.shape[0] // tile.shape[0]  # the 64 px render is drawn 5 times larger (nearest neighbour)
    assert k == 5 and overlay.shape == (64 * k, 64 * k, 3)

    def shrunk(picture):  # each k x k block's mean: the picture at the render's size
        return picture.reshape(64, k, 64, k, 3).mean(axis=(1, 3))

    plain = real_client.predict("offline", "#1", "red", 0.0, api_name="/t2i_heatmap")[0]
    assert plain.endswith(".png")  # the view is lossless (the grid's tiles are WebP)
    plain = np.asarray(Image.open(plain).convert("RGB"), dtype=float)
    assert np.array_equal(plain[::k, ::k], plain[k - 1::k, k - 1::k])  # whole blocks: no pixel invented
    # opacity 0 shows the grid's image (its tile is lossy WebP, so compared by correlation)
    assert np.corrcoef(shrunk(plain).ravel(), tile.ravel())[0, 1] > 0.75
    # opacity 1 shows the map alone; 0.6 is the blend of the two, pixel for pixel
    alone = real_client.predict("offline", "#1", "red", 1.0, api_name="/t2i_heatmap")[0]
    alone = np.asarray(Image.open(alone).convert("RGB"), dtype=float)
    assert np.abs(overlay - (0.4 * plain + 0.6 * alone)).max() <= 3
    assert np.abs(overlay - plain).mean() > 10 and alone.std() > 10  # the map is drawn over it, and has shape
    record = json.loads(Image.open(png).text["provenance"])
    assert record["word"] == "red" and record["provenance"]["model_id"].endswith("assets/world/t2i")
    assert record["provenance"]["seed"] == 3 and record["provenance"]["settings"]["steps"] == 2
    with pytest.raises(Exception, match="'wolf' is not a word of this prompt"):
        real_client.predict("offline", "#1", "wolf", 0.6, api_name="/t2i_heatmap")
