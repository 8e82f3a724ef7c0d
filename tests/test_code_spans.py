"""Model ids, run folders and rewriter names show literally: inside a Markdown code span a backslash escape is shown
as a backslash, so those go through `code_span`, never `escape_markdown` (walkthrough defect, issue 19)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from workbench.text import code_span


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


def test_code_span_shows_text_literally_and_never_as_markup():
    assert _html(code_span("SmolLM2-135M-Instruct.Q4_1.gguf")) == "<p><code>SmolLM2-135M-Instruct.Q4_1.gguf</code></p>\n"
    rendered = _html(code_span("<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1))"))
    assert "<img" not in rendered and "&lt;img" in rendered and "<strong>" not in rendered and "<a " not in rendered
    assert _html(code_span("a `tick` b")) == "<p><code>a `tick` b</code></p>\n"  # a longer fence
    assert _html(code_span("`x`")) == "<p><code>`x`</code></p>\n"
    assert code_span("two\nlines") == "`two lines`"


def test_cached_examples_name_models_without_backslashes():
    from workbench import examples as ex

    note = ex.panel("t2i").note
    spans = re.findall(r"`([^`]+)`", note)
    assert any("SmolLM2-135M-Instruct.Q4_1.gguf" in s for s in spans), note
    assert not any("\\" in s for s in spans), note


def test_t2v_principles_names_the_rewriter_literally():
    from workbench.t2v.flows import principles_markdown

    text = principles_markdown({"rewriter": "transformers-lm:SmolLM2-135M-Instruct.Q4_1.gguf", "reason": "ok",
                                "accepted": True, "rewrite": "a dog", "original": "a dog", "checks": [],
                                "critique": [], "rounds": []})
    assert "`transformers-lm:SmolLM2-135M-Instruct.Q4_1.gguf`" in text
