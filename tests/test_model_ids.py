"""Model ids in provenance: a shipped folder is recorded by its repository-relative name, whichever way a tab named it
and from whatever working directory the app runs, so a study reproduces on another machine or checkout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backends.base import ImageSettings, ModelSpec

ROOT = Path(__file__).resolve().parent.parent
WORLD_T2I = "assets/world/t2i"


def test_shipped_folder_named_either_way_is_one_root_relative_model(manager, tmp_path):
    relative = ModelSpec("t2i", "diffusers-t2i", WORLD_T2I)
    absolute = ModelSpec("t2i", "diffusers-t2i", str(ROOT / WORLD_T2I))
    dotted = ModelSpec("t2i", "diffusers-t2i", str(ROOT / "assets" / "world" / ".." / "world" / "t2i"))
    ids = {manager.base_spec(s).model_id for s in (relative, absolute, dotted)}
    assert ids == {WORLD_T2I}
    assert manager.key_of(relative) == manager.key_of(absolute)
    outside = ModelSpec("t2i", "diffusers-t2i", str(tmp_path))  # a folder outside the repository keeps its path
    assert manager.base_spec(outside).model_id == str(tmp_path)
    assert manager.base_spec(ModelSpec("t2i", "diffusers-t2i", "tiny:sd")).model_id == "tiny:sd"


def test_render_from_another_directory_records_the_relative_id(manager, tmp_path, monkeypatch):
    """The app started from another folder, which even holds a folder of the same name (another checkout's, here
    an empty one): the repository's model loads, and the image's provenance names it root-relative."""
    (tmp_path / WORLD_T2I).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    spec = ModelSpec("t2i", "diffusers-t2i", str(ROOT / WORLD_T2I))
    with manager.use(spec) as t2i:
        result = t2i.generate(["a large red circle in the center"],
                              ImageSettings(steps=4, guidance_scale=3.0, width=64, height=64, seed=0))[0]
    prov = result.provenance
    assert prov.model_id == WORLD_T2I and not prov.random_weights
    assert str(ROOT) not in str(prov.to_dict())
    pixels = np.asarray(result.image.convert("RGB"), dtype=np.float32)
    assert pixels.shape == (64, 64, 3) and pixels.std() > 5  # an image, not an empty frame
