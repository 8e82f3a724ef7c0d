"""The Prompt-CAM tab's main flow in Chromium on the fake profile (which uses the shipped trained checkpoint):
explain a shipped example, then check the class table, and that the ranked head gallery, Grad-CAM and rollout
show the maps the flow returns for the same inputs (decoded pixels, and where each map is hottest)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser import block, open_tab, screenshot, shown_pixels, table_rows, wait_for_text

OPACITY = 0.5  # the page's default heatmap opacity


def _stats(a: np.ndarray) -> np.ndarray:
    """Per-channel means and the spread around them."""
    mean = a.mean(axis=(0, 1))
    return np.array([*mean, np.sqrt(((a - mean) ** 2).mean())])


def _heat(shown: np.ndarray, base: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The map a person sees in an overlay, read back from its pixels: the jet layer (the overlay less the image at
    the page's opacity) mapped to the nearest jet value, averaged over each patch of the map's grid."""
    from workbench.promptcam.render import jet

    layer = (shown - (1 - OPACITY) * base) / OPACITY
    lut = jet(np.linspace(0, 1, 256)).astype(float)
    nearest = np.argmin(((layer.reshape(-1, 1, 3) - lut[None]) ** 2).sum(-1), axis=1) / 255.0
    values = nearest.reshape(shown.shape[:2])
    gh, gw = grid
    h, w = values.shape
    return np.array([[values[r * h // gh:(r + 1) * h // gh, c * w // gw:(c + 1) * w // gw].mean()
                      for c in range(gw)] for r in range(gh)])


@pytest.mark.browser
def test_promptcam_tab_shows_the_maps_the_flow_returns(app_page, fake_ctx):
    from playwright.sync_api import expect

    from workbench.promptcam import flows
    from workbench.promptcam.explain import display_map
    from workbench.promptcam.render import enlarge

    page = app_page
    panel = open_tab(page, "promptcam")
    panel.get_by_role("button", name="Explain", exact=True).click()
    summary = wait_for_text(panel.locator(".prose", has_text="Explaining class").first, "predicted", timeout=180_000)
    assert "blue_crown_00001.png · predicted blue_crown" in summary  # the default example is one it gets right
    assert "Explaining class" in summary and "validation accuracy" in summary
    rows = table_rows(panel.locator("div.block", has=page.get_by_role("columnheader", name="probability")).last)
    assert len(rows) == 3  # top-3 classes, the default
    heads = block(panel, "Per-head maps of the class's prompt, ranked").locator("img")
    expect(heads).to_have_count(4)  # 4 ranked heads (the top-traits default)

    # The flow, in this process, on the same inputs as the page's defaults.
    state, view = flows.analyse(fake_ctx, None, "fake", None, flows.default_example(), "", "predicted", 3, 4, OPACITY)
    assert f"head {state['ranking'][0]} " in summary  # the page ranked the same heads
    base = np.asarray(enlarge(flows._image(state)), dtype=float)
    returned = [(np.asarray(im, dtype=float), np.asarray(state["head_maps"][h]), f"head {h}")
                for (im, _), h in zip(view.heads, state["ranking"])]
    returned += [(np.asarray(view.grad_cam, dtype=float), np.asarray(state["grad_cam"]), "Grad-CAM"),
                 (np.asarray(view.rollout, dtype=float), np.asarray(state["rollout"]), "rollout")]
    images = [heads.nth(k) for k in range(4)]
    images += [block(panel, "Grad-CAM").locator("img").first,
               block(panel, "Attention rollout (class-agnostic)").locator("img").first]
    stats = np.array([_stats(a) for a, _, _ in returned])
    for k, (image, (array, m, name)) in enumerate(zip(images, returned)):
        shown = shown_pixels(image)
        assert shown.shape == array.shape, (name, shown.shape, array.shape)
        got = _stats(shown)
        assert np.abs(got - stats[k]).max() < 3.0, (name, got, stats[k])  # the page re-encodes (webp)
        assert np.argmin(np.abs(stats - got).sum(axis=1)) == k, name  # closer to its own map than to any other
        # Where the shown map is hottest is where the returned map is, and the two maps agree patch by patch.
        heat = _heat(shown, base, m.shape)
        expected = display_map(m)
        hottest = np.array(np.unravel_index(np.argmax(heat), heat.shape))
        peak = np.array(np.unravel_index(np.argmax(expected), m.shape))
        # The shown hottest patch is a hot patch of the returned map and the returned peak is hot on the page
        # (not equality: maps are upsampled smoothly and jet's top end darkens, so near-ties may swap).
        assert expected[tuple(hottest)] > 0.8, (name, hottest, peak, expected[tuple(hottest)])
        assert heat[tuple(peak)] > heat.max() - 0.15, (name, hottest, peak, heat[tuple(peak)], heat.max())
        assert np.corrcoef(heat.ravel(), expected.ravel())[0, 1] > 0.95, name
    screenshot(page, "promptcam_tab")
