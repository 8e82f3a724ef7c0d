"""One module per tab. Each defines TITLE, ORDER, build_gradio(ctx, session) and render_streamlit(ctx);
both front ends are thin over the same `workbench` calls. Modules are found by listing this folder, so a
new tab is a new file here."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover_pages() -> list[ModuleType]:
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, a) for a in ("TITLE", "ORDER", "build_gradio", "render_streamlit")):
            modules.append(module)
    return sorted(modules, key=lambda m: (m.ORDER, m.TITLE))
