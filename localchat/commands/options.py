"""Flags shared by commands that load a model (run, bench), turned into validated values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from localchat.chat.sampling import DEFAULT_PRESET, PRESETS, SamplingParams, from_settings
from localchat.config import load_settings, paths
from localchat.engine.protocol import GpuLayers, LoadOptions
from localchat.errors import InvalidSetting, LocalchatError


class GpuLayersType(click.ParamType):
    name = "auto|all|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> GpuLayers:
        return parse_gpu_layers(value, lambda message: self.fail(message, param, ctx))


def parse_gpu_layers(value: Any, fail: Callable[[str], Any]) -> GpuLayers:
    text = str(value).strip().lower()
    if text in ("auto", "all"):
        return text  # type: ignore[return-value]
    if text.isdigit():
        return int(text)
    return fail(f"{value!r} is not auto, all or a number of layers (0 = CPU only)")


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--threads", "-t", type=click.IntRange(1, 1024), help="CPU threads [physical cores]")(
        command
    )
    command = click.option(
        "--gpu-layers", "--ngl", type=GpuLayersType(), help="layers to offload to the GPU: auto, all or N [auto]"
    )(command)
    command = click.option(
        "--mmap/--no-mmap",
        default=None,
        help="map the model file, or read it into memory (llama.cpp's --no-mmap) [read in where the model is split "
        "between GPU and CPU: prompts run faster so]",
    )(command)
    command = click.option(
        "--backend-sampling/--no-backend-sampling",
        default=None,
        help="pick tokens inside llama.cpp's graph, not on the CPU [when the output layer is on a GPU]",
    )(command)
    return click.option(
        "--ctx", "-c", type=click.IntRange(16, 10_000_000), help="context window in tokens [min(trained, 4096)]"
    )(command)


def draft_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--draft",
        metavar="MODEL",
        help="a small model of the same family that guesses tokens for MODEL to check: same text, sooner",
    )(command)


def sampling_options(command: Callable[..., Any]) -> Callable[..., Any]:
    flags = [
        ("--seed", "-s", int, "random seed (same seed + temperature 0 gives the same text)"),
        ("--max-tokens", "-n", int, "most tokens in the reply"),
        ("--repeat-penalty", None, float, "penalty for repeating recent tokens (1 = off)"),
        ("--min-p", None, float, "drop tokens less likely than min_p × the top token"),
        ("--top-k", None, int, "sample from the k most likely tokens (0 = all)"),
        ("--top-p", None, float, "sample from the smallest set with this total probability"),
        ("--temperature", "--temp", float, "randomness; 0 = always the most likely token"),
    ]
    for long, short, kind, help_text in flags:
        names = [long] + ([short] if short else [])
        command = click.option(*names, type=kind, help=help_text)(command)
    return click.option("--preset", type=click.Choice(list(PRESETS)), help=f"sampling preset [{DEFAULT_PRESET}]")(
        command
    )


DEFAULT_STATE_CACHE_MB = 2048  # saved chat states (engine/saved_states.py): ~40 long chats of a 1B model

SAMPLING_FLAGS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed")


def build_sampling(flags: dict[str, Any]) -> SamplingParams:
    """Preset, then the settings file, then flags; each later one overrides."""
    configured = dict(load_settings().get("sampling", {}))
    if flags.get("preset"):
        configured["preset"] = flags["preset"]
    base = from_settings(configured)
    try:
        return base.with_overrides(**{k: flags.get(k) for k in SAMPLING_FLAGS})
    except InvalidSetting as exc:
        field = exc.message.split(" ", 1)[0]
        raise InvalidSetting(f"--{field.replace('_', '-')}: {exc.message}") from None


def build_load_options(flags: dict[str, Any]) -> LoadOptions:
    configured = load_settings().get("engine", {})

    def pick(name: str, default: Any = None) -> Any:  # a flag beats the settings file; 0 is a real value
        return flags[name] if flags.get(name) is not None else configured.get(name, default)

    gpu_layers = parse_gpu_layers(pick("gpu_layers", "auto"), _bad_setting("engine.gpu_layers"))
    ctx, threads = pick("ctx"), pick("threads")
    for name, value in (("engine.ctx", ctx), ("engine.threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidSetting(f"settings: {name} must be a positive whole number (got {value!r})")
    backend_sampling, mmap = pick("backend_sampling"), pick("mmap")
    for name, value in (("engine.backend_sampling", backend_sampling), ("engine.mmap", mmap)):
        if value is not None and not isinstance(value, bool):
            raise InvalidSetting(f"settings: {name} must be true or false (got {value!r})")
    state_mb = pick("state_cache_mb", DEFAULT_STATE_CACHE_MB)
    if isinstance(state_mb, bool) or not isinstance(state_mb, int) or state_mb < 0:
        raise InvalidSetting(
            f"settings: engine.state_cache_mb must be a whole number of MB, 0 for off (got {state_mb!r})"
        )
    draft, configured_draft = flags.get("draft"), configured.get("draft")
    if draft is None and configured_draft is not None:
        if not isinstance(configured_draft, str) or not configured_draft.strip():
            raise InvalidSetting(f"settings: engine.draft must be a model name or path (got {configured_draft!r})")
        draft = configured_draft
    return LoadOptions(
        n_ctx=ctx,
        gpu_layers=gpu_layers,
        threads=threads,
        backend_sampling=backend_sampling,
        mmap=mmap,
        saved_states=str(paths().saved_states) if state_mb else None,
        saved_states_bytes=state_mb * 2**20,
        draft=str(_draft_path(draft, "--draft" if flags.get("draft") else "settings: engine.draft")) if draft else None,
        # a draft named for every model (the settings) is left out where it does not fit one; --draft is an order
        draft_required=flags.get("draft") is not None,
    )


def _draft_path(ref: str, source: str) -> Path:
    """A draft model as `run` finds a model (a path, or a local name), but never pulled behind one's back."""
    from localchat.commands.models import resolve_model  # commands/models.py imports this module

    try:
        path = resolve_model(ref, allow_pull=False)
    except LocalchatError as exc:
        raise InvalidSetting(f"{source}: {exc.message}") from None
    if not path.is_file():
        raise InvalidSetting(f"{source}: no model file at {path}: give a downloaded model's name or a .gguf path")
    return path


def build_lookup(flag: bool | None) -> bool:
    """Prompt lookup (engine/lookup.py): the flag, else the settings file's engine.lookup, else on."""
    if flag is not None:
        return flag
    configured = load_settings().get("engine", {}).get("lookup", True)
    if not isinstance(configured, bool):
        raise InvalidSetting(f"settings: engine.lookup must be true or false (got {configured!r})")
    return configured


def _bad_setting(name: str) -> Callable[[str], Any]:
    def fail(message: str) -> Any:
        raise InvalidSetting(f"settings: {name}: {message}")

    return fail
