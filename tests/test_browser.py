"""Real browser sessions: Debian's Chromium driven by Playwright runs each tab's main flow on the `fake` profile
and checks the component it is about (table cells, candidate boxes, images, plots), never page-wide text.
One more test starts `streamlit run app.py` for real. Helpers for new tabs: tests/browser.py."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import numpy as np
from PIL import Image

import psutil
import pytest
from playwright.sync_api import expect

from tests.browser import open_tab, screenshot, table_rows, wait_for_text

pytestmark = pytest.mark.browser

# An <img>'s decoded pixels as Chromium drew them: per-channel means (RGB) and the standard deviation around them.
CANVAS_STATS = """i => { const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(i, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
    const n = d.length / 4, m = [0, 0, 0];
    for (let p = 0; p < d.length; p += 4) for (let ch = 0; ch < 3; ch++) m[ch] += d[p + ch] / n;
    let v = 0; for (let p = 0; p < d.length; p += 4) for (let ch = 0; ch < 3; ch++) v += (d[p + ch] - m[ch]) ** 2;
    return [...m, Math.sqrt(v / (n * 3))]; }"""


def test_models_tab_loads_a_model_into_the_table(app_page):
    """The app is shared by every browser test, so the test first unloads its role (another tab may have loaded
    it) and checks that loading it changes that row only."""
    page = app_page
    panel = open_tab(page, "models")
    table = panel.locator("#models-table")
    wait_for_text(table, "embeddings")
    panel.locator("#models-role input").fill("embeddings")
    panel.locator("#models-role input").press("Enter")
    panel.locator("#models-unload").click()
    wait_for_text(panel.locator("#models-message"), "embeddings")
    page.wait_for_function("() => [...document.querySelectorAll('#models-table [role=row]')].some(r =>"
                           " r.innerText.startsWith('embeddings') && r.innerText.includes('not loaded'))")
    before = table_rows(table)
    assert before["embeddings"]["state"] == "not loaded"
    panel.locator("#models-load").click()
    message = wait_for_text(panel.locator("#models-message"), "Loaded embeddings: fake/embeddings")
    assert "RANDOM WEIGHTS" in message
    page.wait_for_function("() => [...document.querySelectorAll('#models-table [role=row]')].some(r =>"
                           " r.innerText.startsWith('embeddings') && !r.innerText.includes('not loaded')"
                           " && r.innerText.includes('loaded'))")
    rows = table_rows(table)
    assert rows["embeddings"]["state"] == "loaded" and rows["embeddings"]["model id"] == "fake/embeddings"
    assert rows["embeddings"]["weights"].startswith("RANDOM WEIGHTS")
    others = lambda table: {role: row["state"] for role, row in table.items() if role != "embeddings"}
    assert others(rows) == others(before)  # only the chosen role changed
    assert "Loaded:" in panel.locator("#models-summary").inner_text()
    screenshot(page, "models_tab")


def test_t2i_tab_refines_then_renders_images(app_page):
    page = app_page
    panel = open_tab(page, "t2i")
    panel.locator("#t2i-prompt textarea").fill("a cat on a sofa")
    panel.locator("#t2i-refine").click()
    wait_for_text(panel.locator("#t2i-status"), "candidate(s)")
    expect(panel.locator("#t2i-status")).not_to_contain_text("processing", timeout=60_000)  # Gradio's busy overlay
    status = panel.locator("#t2i-status").inner_text()
    assert status.startswith("4 candidate(s)")  # the N slider's default
    boxes = [panel.get_by_role("textbox", name=f"Candidate {k}", exact=True) for k in range(1, 9)]
    shown = [b.input_value() for b in boxes[:4]]
    assert all(text.startswith("a cat on a sofa, ") for text in shown) and len(set(shown)) == 4
    assert all(not b.is_visible() for b in boxes[4:])  # slots past N stay hidden
    panel.locator("#t2i-render").click()
    wait_for_text(panel.locator("#t2i-render-status"), "Image diversity of this round")
    # The grid: the original prompt's image first, then one tile per candidate, at the profile's default size.
    images = panel.locator("#t2i-grid img")
    expect(images).to_have_count(5)
    decoded = []
    for k in range(5):
        image = images.nth(k)
        image.scroll_into_view_if_needed()  # Gradio's images load lazily
        image.evaluate("i => i.complete && i.naturalWidth ? 0 : new Promise(r => i.addEventListener('load', r))")
        decoded.append(image.evaluate("i => [i.naturalWidth, i.naturalHeight, i.src]"))
    assert [d[:2] for d in decoded] == [[64, 64]] * 5  # fake profile: settings.t2i_render.size = 64
    assert len({d[2] for d in decoded}) == 5  # the original and 4 different candidates
    grid_text = panel.locator("#t2i-grid").inner_text()
    assert "original (same seed)" in grid_text and "total" in grid_text and "random weights" in grid_text
    # One chart of every metric per image.
    page.wait_for_function("() => document.querySelectorAll('#t2i-chart .js-plotly-plot .main-svg').length > 0")
    # What is shown is what the flow returned: the round's ZIP (the flow's PNGs and scores) against the page.
    href = panel.locator("#t2i-download a").first.get_attribute("href")
    round_zip = zipfile.ZipFile(io.BytesIO(page.request.get(href).body()))
    record = json.loads(round_zip.read("round.json"))
    assert len(record["images"]) == 5
    returned = [np.asarray(Image.open(io.BytesIO(round_zip.read(item["file"]))).convert("RGB"), dtype=float)
                for item in record["images"]]
    stats = np.array([[*a.mean(axis=(0, 1)), np.sqrt(((a - a.mean(axis=(0, 1))) ** 2).mean())] for a in returned])
    for k in range(5):
        shown = np.array(images.nth(k).evaluate(CANVAS_STATS))  # the pixels Chromium decoded and drew
        assert np.abs(shown - stats[k]).max() < 3.0, (k, shown, stats[k])  # the gallery re-encodes (webp)
        assert np.argmin(np.abs(stats - shown).sum(axis=1)) == k  # closer to its own image than to any other
    traces = page.evaluate("() => document.querySelector('#t2i-chart .js-plotly-plot').data"
                           ".map(t => [t.name, [...t.x], [...t.y]])")
    assert [t[0] for t in traces] == [item["label"] for item in record["images"]]
    compared = 0
    for (name, x, y), item in zip(traces, record["images"]):
        for metric, score in item["scores"]["scores"].items():
            label = f"{metric} /10" if metric == "aesthetic" else metric
            if score["value"] is not None:
                scale = 10 if metric == "aesthetic" else 1
                assert y[x.index(label)] == pytest.approx(score["value"] / scale, rel=1e-6, abs=1e-9), (name, metric)
                compared += 1
    assert compared >= 5 * 2, compared
    screenshot(page, "t2i_tab")


def test_shift_tab_analyses_and_draws_plots(app_page):
    page = app_page
    panel = open_tab(page, "shift")
    panel.locator("#shift-max-new input[type=number]").fill("2")
    panel.locator("#shift-ig-steps input[type=number]").fill("2")
    panel.locator("#shift-methods").get_by_role("checkbox", name="integrated gradients (embedding layer)").check()  # off by default
    panel.locator("#shift-run").click()
    summary = wait_for_text(panel.locator("#shift-summary"), "completeness", timeout=240_000)
    assert "random weights" in summary.lower()  # the fake profile's pair is two tiny random models
    # The Attribution sub-tab: three heatmaps (base, instruct, difference) plus density, share and position.
    page.wait_for_function("() => [...document.querySelectorAll('#tab-shift .js-plotly-plot')]"
                           ".filter(p => p.offsetParent !== null).length >= 6")
    visible_plots = panel.locator(".js-plotly-plot").evaluate_all(
        "ps => ps.filter(p => p.offsetParent !== null).map(p => p.querySelectorAll('.main-svg').length)")
    assert len(visible_plots) == 6 and all(n > 0 for n in visible_plots)
    # as a newcomer reads them: roles in the titles, the models in the subtitles, the orange box explained
    titles = panel.locator(".js-plotly-plot").evaluate_all(
        "ps => ps.filter(p => p.offsetParent !== null).map(p => [p.querySelector('.gtitle')?.textContent,"
        " [...p.querySelectorAll('.annotation-text')].map(a => a.textContent)])")
    assert titles[0][0] == "gradient × input (the paper's) — base" and titles[1][0].endswith("— instruct")
    assert "instruction span (the user message)" in " ".join(titles[0][1])
    subtitle = panel.locator(".js-plotly-plot .gtitle-subtitle").first.text_content()
    assert subtitle == "tiny:causal-lm?seed=0"
    # the analysis as a ZIP, once attribution is done
    download = panel.locator("#shift-download")
    expect(download).to_be_enabled(timeout=60_000)
    with page.expect_download() as info:
        download.click()
    with zipfile.ZipFile(info.value.path()) as zf:
        record = json.loads(zf.read("analysis.json"))
    assert record["complete"] is True and record["settings"]["max_new_tokens"] == 2
    assert record["sides"]["base"]["provenance"]["model_id"] == "tiny:causal-lm?seed=0"
    # What the heatmaps show is what the flow computed: each visible heatmap's values and colour scale, read from
    # the page's plotly data, against the analysis' matrices (the flow's result, exported from the same run).
    with zipfile.ZipFile(info.value.path()) as zf:
        mats = np.load(io.BytesIO(zf.read("matrices.npz")), allow_pickle=False)
        base, inst = mats["attribution_gradient_x_input_base"], mats["attribution_gradient_x_input_instruct"]
    assert record["sides"]["instruct"]["provenance"]["model_id"] != record["sides"]["base"]["provenance"]["model_id"]
    heatmaps = panel.locator(".js-plotly-plot").evaluate_all(
        "ps => ps.filter(p => p.offsetParent !== null).slice(0, 3).map(p => { const t = p._fullData[0];"
        " return {z: [...t.z].map(r => [...r]), zmin: t.zmin, zmax: t.zmax, zmid: t.zmid, reversescale:"
        " t.reversescale, colorscale: t.colorscale}; })")
    shares = lambda a: a / np.abs(a).sum(axis=1, keepdims=True)
    bound = max(np.abs(base).max(), np.abs(inst).max())  # base and instruct share one scale (the default)
    for (name, expected, top), shown in zip([("base", base, bound), ("instruct", inst, bound),
                                             ("difference", shares(inst) - shares(base), None)], heatmaps):
        z = np.array(shown["z"], dtype=float)
        assert z.shape == expected.shape and expected.shape[0] >= 1, (name, z.shape, expected.shape)  # one page
        np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-12, err_msg=name)
        top = np.abs(expected).max() if top is None else top
        assert shown["zmin"] == pytest.approx(-top) and shown["zmax"] == pytest.approx(top), (name, shown, top)
        # the colour at zmin and at zmax as drawn: negative scores blue, positive red, white at 0 (diverging RdBu)
        scale = [c for _, c in shown["colorscale"]][::-1 if shown["reversescale"] else 1]
        rgb = lambda c: [int(v) for v in c[c.index("(") + 1:-1].split(",")]
        low, mid, high = rgb(scale[0]), rgb(scale[len(scale) // 2]), rgb(scale[-1])
        assert low[2] > low[0] and high[0] > high[2] and min(mid) > 200, (name, shown["colorscale"])
    panel.get_by_role("tab", name="Feed-forward concepts").click()
    ffn = panel.locator("#shift-ffn")
    wait_for_text(ffn, "layer")
    rows = table_rows(ffn)
    assert rows and all(row for row in rows.values())
    # numbers and their headers stay on one line (no "lay/er", no number broken in two)
    lines = ffn.evaluate("""t => {
        const count = el => {  // the most lines any visible text node of `el` takes
            const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            let most = 0;
            for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                if (!n.textContent.trim()) continue;
                const r = document.createRange(); r.selectNodeContents(n);
                const rects = [...r.getClientRects()].filter(x => x.width > 0);
                most = Math.max(most, new Set(rects.map(x => Math.round(x.top))).size);
            }
            return most; };
        const heads = [...t.querySelectorAll('[role=columnheader]')];
        const idx = ['layer', 'component', 'layer overlap'].map(h => heads.findIndex(c => c.innerText.trim() === h));
        const cells = [...t.querySelectorAll('[role=row]')].map(r => [...r.querySelectorAll('[role=gridcell]')])
                        .filter(r => r.length).flatMap(r => [0, 1, 2, 5].map(i => r[i]));
        return [idx, idx.map(i => count(heads[i])), cells.map(count)]; }""")
    # one-word headers on one line ("layer overlap" may break between its words), every number on one line
    assert -1 not in lines[0] and lines[1][:2] == [1, 1] and lines[1][2] <= 2 and set(lines[2]) == {1}, lines
    screenshot(page, "shift_tab")
    # opening the Models tab shows the pair the analysis loaded, without pressing Refresh
    models = open_tab(page, "models")
    states: dict[str, str] = {}
    for _ in range(60):  # the tab's select event refreshes the table; give it a moment
        states = {role: row["state"] for role, row in table_rows(models.locator("#models-table")).items()}
        if states.get("lm_base") == "loaded":
            break
        page.wait_for_timeout(500)
    assert states["lm_base"] == states["lm_instruct"] == "loaded", states


def test_streamlit_run_binds_loopback_and_sends_no_usage_statistics(chromium):
    """`streamlit run app.py` as a user starts it (settings from .streamlit/config.toml only: no STREAMLIT_*
    overrides from this environment), opened in Chromium: every socket it listens on is 127.0.0.1, and no request
    the page makes leaves this machine (usage statistics would go to an outside host)."""
    import subprocess
    import sys

    from tests.app_process import ROOT, free_port, stop, wait_for_http

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(WORKBENCH_PROFILE="fake", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/_stcore/health", proc, timeout=180)
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet") if c.status == "LISTEN"]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
        requests: list[str] = []
        page = chromium.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Random weights", exact=False).first.wait_for(timeout=120_000)
        page.wait_for_timeout(3000)  # the page's own start-up requests (a stats ping would go out here)
        # the profile stays the user's across page changes (the menu fell back to its first entry, "cpu", on the
        # first change before app.py kept the choice outside the widget's state)
        sidebar = page.locator("[data-testid='stSidebar']")
        for title in ("Models", "Studies", "T2I prompt refinement"):
            sidebar.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(f"^{title}$")).click()
            page.locator("[data-testid='stMain'] h1", has_text=title).first.wait_for(timeout=120_000)
            wait_for_text(sidebar, "Profile fake")
            assert "Profile cpu" not in sidebar.inner_text()
        page.close()
        outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))]
        assert requests and outside == [], outside
        remote = [c.raddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                  if c.raddr and c.raddr.ip not in ("127.0.0.1", "::1")]
        assert remote == []
    finally:
        stop(proc)
