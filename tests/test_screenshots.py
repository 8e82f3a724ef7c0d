"""`python -m workbench.screenshots`: scenario files checked by line; a scenario run in Debian's Chromium
producing captioned PNGs and a manifest; the caption strip itself."""

import io
import json
import shutil

import pytest

from tests.app_process import ROOT
from workbench.screenshots.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIO = """\
profile: fake
out: shots
viewport: {width: 1100, height: 800}
timeout_s: 120
shots:
  - name: models
    tab: Models
    roles: [chat]
    seed: 3
    steps:
      - click: {elem_id: models-load}
      - wait_text: "Loaded chat: fake/chat"
  - name: study_consent
    tab: Studies
    steps:
      - fill: {elem_id: study-code, value: REFINER-AB}
      - click: {elem_id: study-join}
      - wait_text: "Prompt refinement for text-to-image: consent"
      - click: {text: Researcher dashboard}
      - fill: {elem_id: study-token, value: not-for-captions}
"""


def test_the_readme_scenario_is_valid():
    scenario = load_scenario(ROOT / "docs" / "screenshots.yaml")
    assert [s.name for s in scenario.shots] == ["t2i_tab", "shift_tab", "promptor_tab", "models_tab", "studies_tab"]
    assert scenario.out == (ROOT / "docs" / "screenshots").resolve()


def test_broken_scenarios_are_explained_by_line():
    text = ("profile: fake\nshots:\n  - name: a b\n    steps:\n      - clik: {button: Go}\n"
            "      - click: {button: Go, elem_id: go}\n      - wait_ms: -5\n      - fill: {label: Prompt}\n"
            "  - name: ok\n    roles: chat\n")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source="s.yaml")
    found = {(p.line, p.message.split(";")[0].split(" (")[0]) for p in info.value.problems}
    assert found == {
        (3, "name must be letters, digits, - or _"),
        (5, "unknown step 'clik'"),
        (6, "click needs exactly one of elem_id, label, button, text"),
        (7, "wait_ms takes milliseconds from 0 to 600000"),
        (8, "fill needs a value"),
        (10, "roles must be a list of role names"),
    }, info.value.problems


def test_caption_strip_is_added_under_the_screenshot():
    from PIL import Image

    from workbench.screenshots.runner import CAPTION_BG, add_caption

    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (255, 255, 255)).save(buf, format="PNG")
    out = add_caption(buf.getvalue(), ["Tab: Models   Profile: fake   Seed: 3", "Inputs: " + "x" * 300])
    assert out.width == 400 and out.height > 300 + 3 * 15  # the long line wraps
    assert out.getpixel((2, 299)) == (255, 255, 255) and out.getpixel((2, out.height - 2)) == CAPTION_BG
    text_pixels = sum(1 for x in range(12, 200) for y in range(302, out.height) if out.getpixel((x, y)) != CAPTION_BG)
    assert text_pixels > 100  # the caption is drawn, not just an empty strip


@pytest.mark.browser
def test_a_scenario_runs_in_chromium_and_writes_pngs_and_a_manifest(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install -y chromium)")
    from PIL import Image

    from workbench.screenshots.__main__ import main

    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    assert main([str(path)]) == 0
    out = tmp_path / "shots"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["shots"]] == ["models", "study_consent"]
    models = manifest["shots"][0]
    assert models["models"] == ["chat: fake/chat (RANDOM WEIGHTS: outputs are not meaningful)"] and models["seed"] == 3
    assert models["caption"][0].startswith("Tab: Models   Profile: fake   Seed: 3   Time: ")
    study = manifest["shots"][1]
    assert study["inputs"] == {"study-code": "REFINER-AB", "study-token": "<redacted>"}  # secrets stay out
    assert "not-for-captions" not in (out / "manifest.json").read_text()
    for shot in manifest["shots"]:
        image = Image.open(out / shot["file"])
        assert (image.width, image.height) == (shot["width"], shot["height"]) and image.width == 1100
        assert image.getpixel((2, image.height - 2)) == (32, 33, 36)  # the caption strip
    assert manifest["versions"]["playwright"] and manifest["git_commit"]
    assert not list(out.glob(".screenshots-studies.sqlite*"))  # the throwaway study database is gone
