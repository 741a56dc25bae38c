"""Model references resolved to files: find locally, or plan and run a pull from the hub."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from localchat import hardware
from localchat.errors import LocalchatError
from localchat.models import hub
from localchat.models.catalog import lookup
from localchat.models.download import Progress, Transfer, bytes_still_needed, check_disk_space, download
from localchat.models.library import Library, LocalModel, ModelSummary
from localchat.models.memory import (
    Fit,
    MemoryEstimate,
    Offload,
    estimate_memory,
    fit_memory,
    plan_offload,
    size_only_shape,
)
from localchat.models.refs import HubRef, choose_quant, parse_hub_ref, safe_hub_filename


@dataclass(frozen=True)
class PullPlan:
    ref: HubRef
    name: str  # user/repo:QUANT
    alias: str | None
    files: tuple[hub.HubFile, ...]
    destinations: tuple[Path, ...]
    note: str | None  # e.g. which quant was picked instead of Q4_K_M

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def fit(self) -> Fit:
        """Before downloading there is no header to read: weights from the size, plus KV and buffers for 4k."""
        shape = size_only_shape(self.size)
        estimate = MemoryEstimate(4096, self.size, 4096 * shape.kv_bytes_per_token, 128 << 20)
        gpus = hardware.gpus()
        free_vram = sum(g.free_bytes for g in gpus) if gpus else None
        return fit_memory(estimate, shape, hardware.available_memory_bytes(), free_vram)


@dataclass(frozen=True)
class MachineFit:
    estimate: MemoryEstimate
    fit: Fit
    free_ram: int | None
    free_vram: int | None
    offload: Offload  # what the engine would offload with this --gpu-layers setting


def machine_fit(summary: ModelSummary, n_ctx: int, gpu_layers: int | str = "auto") -> MachineFit:
    """Whether a local model fits this machine at `n_ctx`: free RAM and, with a GPU, free VRAM (nvidia-smi's
    reading; the engine asks its own backend, which also knows Metal and Vulkan devices)."""
    estimate = estimate_memory(summary.shape, n_ctx)
    gpus = hardware.gpus()
    free_vram = sum(g.free_bytes for g in gpus) if gpus else None
    free_ram = hardware.available_memory_bytes()
    fit = fit_memory(estimate, summary.shape, free_ram, free_vram)
    offload = plan_offload(gpu_layers, summary.shape, n_ctx, free_vram or 0, can_offload=bool(gpus))
    return MachineFit(estimate, fit, free_ram, free_vram, offload)


def fits_beside_loaded(library: Library, path: Path, n_ctx: int | None) -> bool:
    """Whether this model fits in the memory left now (with whatever is already loaded): the arena keeps both
    of its models loaded when it does."""
    summary = library.summary(library.local_file(path))
    ctx = n_ctx or min(summary.context_length or 4096, 4096)
    return machine_fit(summary, ctx).fit.verdict == "fits"


def hub_ref_for(text: str) -> tuple[HubRef, str | None]:
    entry = lookup(text)
    if entry is not None:
        return entry.ref, entry.alias
    ref = parse_hub_ref(text)
    if ref is None:
        raise LocalchatError(
            f"{text!r} is not a model: give a .gguf path, a catalog name (localchat list --catalog) "
            "or a hub repo as user/repo[:QUANT]"
        )
    return ref, None


def plan_pull(text: str, library: Library) -> PullPlan:
    ref, alias = hub_ref_for(text)
    files = hub.repo_files(ref.repo)
    choice = choose_quant(ref, [f.name for f in files])
    entry = lookup(alias) if alias else None
    if entry is not None and entry.file not in choice.files.files:  # the repo was reorganised since
        choice = replace(
            choice,
            note=f"the catalog names {entry.file}, which {ref.repo} no longer has: using "
            f"{', '.join(choice.files.files)}",
        )
    by_name = {f.name: f for f in files}
    chosen = tuple(by_name[name] for name in choice.files.files)
    root = library.paths.models_dir / ref.repo
    destinations = tuple(root / safe_hub_filename(f.name) for f in chosen)
    name = f"{ref.repo}:{choice.files.quant}"
    return PullPlan(HubRef(ref.repo, choice.files.quant), name, alias, chosen, destinations, choice.note)


def run_pull(plan: PullPlan, library: Library, progress: Callable[[str], Progress] | None = None) -> LocalModel:
    """Download every part (each resumable and verified), then register the model in one manifest write."""
    headers = hub.auth_headers()
    partial_dir = library.paths.models_dir / ".partial"
    transfers = [
        (file, Transfer(hub.file_url(plan.ref.repo, file.name), destination, file.size, file.sha256, headers))
        for file, destination in zip(plan.files, plan.destinations, strict=True)
        # a part finished by an earlier, interrupted pull of a split model is not fetched again
        if not (destination.exists() and destination.stat().st_size == file.size)
    ]
    # The whole model must fit, not part by part: a split model would otherwise stop at its last part.
    check_disk_space(partial_dir, bytes_still_needed([t for _, t in transfers], partial_dir))
    for file, transfer in transfers:
        with hub.hub_errors(plan.ref.repo):
            download(transfer, partial_dir, progress(file.name) if progress else None)
    model = LocalModel(
        name=plan.name,
        files=[str(d) for d in plan.destinations],
        source="pulled",
        repo=plan.ref.repo,
        quant=plan.ref.quant,
        alias=plan.alias,
        sha256=[f.sha256 for f in plan.files],
        added_at=time.time(),
    )
    library.save(model)
    return model


def find_local(text: str, library: Library) -> LocalModel | None:
    """A registered or HF-cache model by name, alias or user/repo[:QUANT] (default quant: any 4-bit one)."""
    models = library.models()  # one scan of the manifests and the HF cache
    model = next((m for m in models if m.matches(text)), None)
    if model is not None:
        return model
    entry = lookup(text)
    ref = entry.ref if entry else parse_hub_ref(text)
    if ref is None:
        return None
    candidates = [m for m in models if m.repo and m.repo.lower() == ref.repo.lower()]
    if ref.quant:
        candidates = [m for m in candidates if (m.quant or "").upper() == ref.quant]
    return candidates[0] if candidates else None


def looks_like_path(text: str) -> bool:
    return text.lower().endswith(".gguf") or text.startswith((".", "/", "~")) or Path(text).exists()


def unavailable_message(text: str, library: Library, reason: str) -> str:
    local = [m.alias or m.name for m in library.models()]
    available = ", ".join(local[:8]) + (" …" if len(local) > 8 else "") if local else "none"
    return f"{reason}; {text} is not downloaded. Available locally: {available}"
