"""The T2V tab's main flow in a real browser (Debian's Chromium driven by Playwright): evolve, chart, candidates,
final render with the inline players."""

import pytest

from tests.browser import ARTIFACTS, open_tab


@pytest.mark.browser
def test_t2v_tab_evolve_and_render_in_chromium(app_page):
    page = app_page
    page.set_default_timeout(120_000)
    open_tab(page, "t2v")
    page.locator("#t2v-prompt textarea").fill("a dog running on a beach")
    page.locator("#t2v-evolve").click()
    page.locator("#t2v-status").get_by_text("Best:").wait_for()
    page.locator(".js-plotly-plot").first.wait_for(state="attached", timeout=30_000)  # the chart drew
    assert page.get_by_text("round 1 (from candidate").first.is_visible()
    page.locator("#t2v-final").click()
    page.locator("#t2v-final-status").get_by_text("Rendered with seed").wait_for()
    assert page.locator("video").count() >= 2
    # Each shown video decodes, in Chromium and from the served file, to the frame count the status states.
    import re
    import tempfile

    import imageio_ffmpeg

    stated = int(re.search(r"Rendered with seed \d+, (\d+) frames", page.locator("#t2v-final-status").inner_text())[1])
    videos = page.locator("#tab-t2v video")
    counts = []
    for k in range(videos.count()):
        video = videos.nth(k)
        video.scroll_into_view_if_needed()
        src = video.evaluate("v => new Promise(r => v.readyState >= 2 ? r(v.currentSrc) : "
                             "v.addEventListener('loadeddata', () => r(v.currentSrc)))")
        assert video.evaluate("v => v.videoWidth") > 0  # Chromium decoded a frame
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
            f.write(page.request.get(src).body())
            f.flush()
            reader = imageio_ffmpeg.read_frames(f.name)
            next(reader)  # the stream's metadata
            counts.append(sum(1 for _ in reader))
    assert len(counts) >= 2 and counts == [stated] * len(counts), (stated, counts)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "t2v_tab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
