import subprocess
import sys

import pytest

from backends.registry import Registry, RegistryError


def test_unknown_name_suggests_close_matches():
    reg = Registry("backend")
    reg.register("transformers-lm", "backends.transformers_lm:TransformersCausalLM")
    reg.register("openai-chat", "backends.openai_chat:OpenAIChat")
    with pytest.raises(RegistryError) as err:
        reg.target("transformer-lm")
    assert "Did you mean 'transformers-lm'" in str(err.value)
    assert "Known: openai-chat, transformers-lm" in str(err.value)


def test_duplicate_names_raise():
    reg = Registry("backend")
    reg.register("a", "json:dumps")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", "json:loads")


@pytest.mark.parametrize("target", ["json", "json:", ":dumps", "a:b:c", 3])
def test_malformed_targets_raise(target):
    with pytest.raises(RegistryError, match="package.module:Class"):
        Registry("backend").register("x", target)


def test_resolve_imports_lazily_and_reports_missing_modules():
    reg = Registry("backend")
    reg.register("dumps", "json:dumps")
    reg.register("missing", "no_such_module_xyz:Thing")
    reg.register("noattr", "json:no_such_attr")
    import json

    assert reg.resolve("dumps") is json.dumps
    with pytest.raises(RegistryError, match="failed to import"):
        reg.resolve("missing")
    with pytest.raises(RegistryError, match="has no attribute"):
        reg.resolve("noattr")


def test_every_registered_backend_resolves_to_a_class_with_the_lifecycle():
    from backends import BACKENDS

    for name in BACKENDS.names():
        cls = BACKENDS.resolve(name)
        for method in ("load", "unload", "memory_bytes"):
            assert callable(getattr(cls, method)), (name, method)


def test_starting_the_app_imports_no_backend_module_and_no_torch():
    code = (
        "import sys, app, backends, pages, workbench.profiles, workbench.models\n"
        "from workbench.context import build_context\n"
        "app.build_demo(build_context(profile='offline'))  # the whole start-up path, short of serving\n"
        "infra = {'backends.base', 'backends.registry', 'backends.provenance', 'backends.devices', 'backends.sources'}\n"
        "bad = [m for m in sys.modules if m.startswith('backends.') and m not in infra"
        " or m in ('torch', 'diffusers', 'transformers', 'captum', 'peft', 'streamlit')]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == ""
