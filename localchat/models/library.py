"""The models on this machine: pulled and imported ones (a manifest each) and GGUFs already in the Hugging Face
cache (what llama.cpp `-hf` and other tools downloaded), found in place and never copied.

Metadata is cached by (path, size, mtime), so `list` does not re-read every file every time.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from localchat.config import Paths
from localchat.errors import LocalchatError
from localchat.models.gguf import read_gguf
from localchat.models.memory import ModelShape, shape_of
from localchat.models.refs import group_gguf_files, quant_of
from localchat.text import inert

# bundled: installed with localchat (models/bundled.py); file: opened by path, not in the library
Source = Literal["pulled", "imported", "hf-cache", "bundled", "file"]
SUMMARY_VERSION = 2  # bump when ModelSummary or ModelShape change: cached summaries are then read again


@dataclass(frozen=True)
class ModelSummary:
    """What `list` and `show` print, and what the memory estimate needs, read from the GGUF header."""

    architecture: str
    name: str
    parameters: int
    quantization: str
    layers: int
    context_length: int
    chat_template: bool
    license: str | None
    shape: ModelShape


@dataclass
class LocalModel:
    name: str  # how the user refers to it: user/repo:QUANT, or the name given at import
    files: list[str]  # absolute paths; the first one is what llama.cpp opens (split parts follow)
    source: Source
    repo: str | None = None
    quant: str | None = None
    alias: str | None = None
    sha256: list[str | None] = field(default_factory=list)
    added_at: float = 0.0
    last_used: float | None = None

    @property
    def path(self) -> Path:
        return Path(self.files[0])

    @property
    def size_bytes(self) -> int:
        return sum(Path(f).stat().st_size for f in self.files if Path(f).exists())

    def matches(self, ref: str) -> bool:
        ref = ref.strip().lower()
        candidates = {self.name.lower(), (self.alias or "").lower()}
        if self.repo and self.quant:
            candidates |= {f"{self.repo}:{self.quant}".lower(), f"hf.co/{self.repo}:{self.quant}".lower()}
        return ref in candidates


class Library:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.manifests = paths.models_dir / "manifests"
        self.metadata_cache = paths.cache_dir / "gguf-metadata.json"
        # When models found in place (no manifest: bundled, Hugging Face cache) were last used, by the path listed
        self.found_used = paths.models_dir / "found-last-used.json"

    # --- manifests ----------------------------------------------------------------------------------------

    def _manifest_path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.lower())
        return self.manifests / f"{safe}.json"

    def save(self, model: LocalModel) -> None:
        write_whole(self._manifest_path(model.name), asdict(model), indent=2)

    def _registered(self) -> list[LocalModel]:
        models = []
        for path in sorted(self.manifests.glob("*.json")) if self.manifests.is_dir() else []:
            try:
                models.append(LocalModel(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a damaged manifest hides one model, it does not break the library
        return models

    def models(self) -> list[LocalModel]:
        """Registered models, then those found in place: the Hugging Face cache, the bundled one."""
        registered = self._registered()
        known = {os.path.realpath(f) for m in registered for f in m.files}
        found = [m for m in [*hf_cache_models(), *bundled_models()] if os.path.realpath(m.files[0]) not in known]
        used = self._found_used()
        for model in found:
            model.last_used = used.get(os.path.abspath(model.files[0]))
        return registered + found

    def find(self, ref: str) -> LocalModel | None:
        return next((m for m in self.models() if m.matches(ref)), None)

    def local_file(self, path: Path) -> LocalModel:
        """The model a path names: the library's entry for that file, else an unregistered one."""
        real = os.path.realpath(path)
        known = next((m for m in self.models() if os.path.realpath(m.files[0]) == real), None)
        return known or LocalModel(name=Path(path).name, files=[str(Path(path).resolve())], source="file")

    def touch(self, model: LocalModel) -> None:
        model.last_used = time.time()
        if model.source in ("pulled", "imported"):
            self.save(model)
        elif model.source in ("hf-cache", "bundled"):
            used = self._found_used() | {os.path.abspath(model.files[0]): model.last_used}
            write_whole(self.found_used, used, indent=1)

    def _found_used(self) -> dict[str, float]:
        try:
            used = json.loads(self.found_used.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or damaged: only "last used" is lost
        return {k: v for k, v in used.items() if isinstance(v, int | float)} if isinstance(used, dict) else {}

    def remove(self, model: LocalModel) -> None:
        """Pulled models lose their files; imported ones and HF-cache ones only leave the list."""
        if model.source == "bundled":
            raise LocalchatError(
                f"{model.alias} came with localchat's install, in the Python package {model.path.parent.name}: "
                f"pip uninstall {model.path.parent.name} removes it"
            )
        if model.source == "hf-cache":
            raise LocalchatError(
                f"{model.name} lives in the Hugging Face cache, shared with other tools: remove it with "
                "`hf cache rm` (or huggingface-cli delete-cache)"
            )
        if model.source == "pulled":
            for file in model.files:
                Path(file).unlink(missing_ok=True)
        self._manifest_path(model.name).unlink(missing_ok=True)

    def import_file(self, path: Path, name: str | None = None) -> LocalModel:
        path = path.expanduser().resolve()
        info = read_gguf(path)  # validated before it is registered
        name = name or path.stem
        if not name.strip() or not name.isprintable():
            raise LocalchatError(f"the model name {inert(name)!r} is empty or holds a control character: pick another")
        existing = self.find(name)
        if existing is not None:
            raise LocalchatError(f"a model named {name} exists already: pick another with --name")
        model = LocalModel(name, [str(path)], "imported", quant=info.quantization, added_at=time.time())
        self.save(model)
        return model

    # --- metadata -----------------------------------------------------------------------------------------

    def summary(self, model: LocalModel) -> ModelSummary:
        key = model.files[0]
        stat = Path(key).stat()
        stamp = [stat.st_size, stat.st_mtime_ns, SUMMARY_VERSION]
        cache = self._read_cache()
        entry = cache.get(key)
        if entry and entry.get("stamp") == stamp:
            data = dict(entry["summary"])
            data["shape"] = ModelShape(**{**data["shape"], "layer_bytes": tuple(data["shape"]["layer_bytes"])})
            return ModelSummary(**data)
        info = read_gguf(key)
        parameters = info.parameter_count
        tensors = info.tensor_bytes
        for extra in model.files[1:]:
            part = read_gguf(extra)
            parameters += part.parameter_count
            tensors = tensors + part.tensor_bytes
        summary = ModelSummary(
            architecture=info.architecture,
            name=info.name,
            parameters=parameters,
            quantization=info.quantization,
            layers=info.layer_count or 0,
            context_length=info.context_length or 0,
            chat_template=info.chat_template is not None,
            license=info.license,
            shape=shape_of(info, weights_bytes=model.size_bytes, tensor_bytes=tensors),
        )
        cache[key] = {"stamp": stamp, "summary": asdict(summary)}
        self._write_cache(cache)
        return summary

    def _read_cache(self) -> dict[str, Any]:
        try:
            return json.loads(self.metadata_cache.read_text())
        except (OSError, ValueError):
            return {}

    def _write_cache(self, cache: dict[str, Any]) -> None:
        write_whole(self.metadata_cache, cache)


def write_whole(path: Path, value: Any, indent: int | None = None) -> None:
    """`value` as JSON in `path`, written to a file beside it and then put in place: a crash leaves the old file or
    the new one, never half of one (manifests, the metadata cache, when found models were last used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps(value, indent=indent))
    os.replace(temporary, path)


def bundled_models() -> list[LocalModel]:
    from localchat.models import bundled

    found = []
    for model in bundled.BUNDLED:
        path = model.path()
        if path is not None:
            found.append(LocalModel(path.stem, [str(path)], "bundled", quant=quant_of(path.name), alias=model.alias))
    return found


def hf_cache_models() -> list[LocalModel]:
    """GGUF models in the Hugging Face cache (HF_HUB_CACHE / HF_HOME), newest revision of each repo."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir()
    except (CacheNotFound, OSError, ValueError):
        return []
    models = []
    for repo in cache.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = max(repo.revisions, key=lambda r: r.last_modified)
        files = {_relative(f): f for f in revision.files}
        for quant, group in group_gguf_files(files).items():
            paths = [str(files[name].file_path) for name in group.files]
            if all(Path(p).exists() for p in paths):
                models.append(
                    LocalModel(
                        f"{repo.repo_id}:{quant}",
                        paths,
                        "hf-cache",
                        repo=repo.repo_id,
                        quant=quant,
                        added_at=revision.last_modified,
                    )
                )
    return models


def _relative(cached_file: Any) -> str:
    """The file's path inside its repo (snapshots/<rev>/<path>)."""
    parts = Path(cached_file.file_path).parts
    index = parts.index("snapshots") if "snapshots" in parts else len(parts) - 2
    return "/".join(parts[index + 2 :])
