"""Ollama's model verbs: pull, list, show, rm, import, search."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from localchat.commands.options import GpuLayersType, build_load_options
from localchat.config import paths
from localchat.engine.protocol import GpuLayers
from localchat.errors import LocalchatError
from localchat.models import hub
from localchat.models.catalog import CATALOG
from localchat.models.gguf import fallback_family, shown_parameters
from localchat.models.library import Library, LocalModel
from localchat.models.manager import (
    PullPlan,
    find_local,
    looks_like_path,
    machine_fit,
    plan_pull,
    run_pull,
    unavailable_message,
)
from localchat.models.memory import offload_report
from localchat.text import inert

# Names, licences and hub text are shown literally: no Rich markup or :emoji: codes, control characters inert.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def say(text: str) -> None:
    """One line to stderr, literally: it may hold a model name, a file path or a hub answer."""
    err.print(inert(text))


def out() -> Console:
    """stdout; piped output is not cut to 80 columns."""
    console = Console(highlight=False, markup=False, emoji=False)
    return console if console.is_terminal else Console(highlight=False, width=250, markup=False, emoji=False)


def add_row(table: Table, *cells: object) -> None:
    table.add_row(*(inert(str(cell)) for cell in cells))


def library() -> Library:
    return Library(paths().ensure())


def pull_with_progress(plan: PullPlan, lib: Library) -> LocalModel:
    """Say what will be downloaded and whether it fits, then download with a progress bar."""
    fit = plan.fit()
    if plan.note:
        say(plan.note)
    for file in plan.files:
        say(f"pulling {plan.ref.repo}/{file.name} ({file.size / 1e9:.2f} GB)")
    say(f"memory: {fit.message}")
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, TimeRemainingColumn(), console=err, disable=not err.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress_for(name: str) -> Callable[[int, int], None]:
            def update(done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(Path(name).name, total=total)
                bar.update(tasks[name], completed=done)

            return update

        try:
            model = run_pull(plan, lib, progress_for)
        except KeyboardInterrupt:
            bar.stop()
            say("pull interrupted: run the same command again to resume")
            sys.exit(130)
    unchecked = [file.name for file in plan.files if not file.sha256]
    if unchecked:
        say(f"saved {model.name} (the hub gave no sha256 for {', '.join(unchecked)}: only the size was checked)")
    else:
        say(f"verified sha256 and saved {model.name}")
    return model


def remote_rows() -> list[dict]:
    """The models of each server named in config.toml, beside the local ones (a server that is down: one row
    saying so)."""
    from localchat.backends.endpoints import named_endpoints, served_models

    rows: list[dict] = []
    for named in named_endpoints():
        names, error = served_models(named)
        base = {"source": "endpoint", "endpoint": named.endpoint.url, "endpoint_name": named.name}
        rows += [{"name": name, **base} for name in names]
        if error:
            rows.append({"name": f"({named.name})", **base, "error": error})
    return rows


def print_remote(rows: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table("NAME", "SOURCE", box=None)
    for row in rows:
        add_row(table, row["name"], f"endpoint {row['endpoint']}")
    out().print(table)


@click.command()
@click.argument("ref")
def pull(ref: str) -> None:
    """Download a model: user/repo[:QUANT] from the Hugging Face Hub, or a catalog name."""
    lib = library()
    try:
        plan = plan_pull(ref, lib)
    except hub.HubUnreachable as exc:
        raise LocalchatError(unavailable_message(ref, lib, exc.message)) from None
    pull_with_progress(plan, lib)


def resolve_model(ref: str, allow_pull: bool = True) -> Path:
    """What `run` and `bench` call: a path as is; a local model by name; otherwise pull it (as Ollama's run)."""
    if looks_like_path(ref):
        return Path(ref).expanduser()
    lib = library()
    model = find_local(ref, lib)
    if model is None:
        if not allow_pull:
            raise LocalchatError(unavailable_message(ref, lib, "not found"))
        try:
            plan = plan_pull(ref, lib)
        except hub.HubUnreachable as exc:
            raise LocalchatError(unavailable_message(ref, lib, exc.message)) from None
        model = pull_with_progress(plan, lib)
    lib.touch(model)
    return model.path


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "never"
    seconds = time.time() - stamp
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="one JSON array")
@click.option("--catalog", is_flag=True, help="list the curated catalog instead")
@click.option("--endpoint", metavar="NAME|URL", help="only the models an OpenAI-compatible server serves")
def list_models(as_json: bool, catalog: bool, endpoint: str | None) -> None:
    """Models on this machine: pulled, imported, and GGUFs in the Hugging Face cache."""
    if endpoint is not None:
        from localchat.backends.endpoints import resolve_endpoint
        from localchat.backends.remote import RemoteBackend

        server = resolve_endpoint(endpoint)
        rows = [
            {"name": name, "source": "endpoint", "endpoint": server.url} for name in RemoteBackend(server, "").models()
        ]
        print_remote(rows, as_json)
        return
    if catalog:
        rows = [asdict(entry) for entry in CATALOG]
        if as_json:
            click.echo(json.dumps(rows))
            return
        table = Table("NAME", "PARAMS", "CONTEXT", "THINKS", "REPO", "WHY", box=None)
        for entry in CATALOG:
            context = f"{entry.context // 1024}k"
            thinks = "yes" if entry.thinks else ""
            add_row(table, entry.alias, entry.parameters, context, thinks, f"{entry.repo}:{entry.quant}", entry.why)
        out().print(table)
        return
    lib = library()
    rows = []
    for model in lib.models():
        try:
            summary = lib.summary(model)
        except LocalchatError as exc:
            rows.append({"name": model.alias or model.name, "source": model.source, "error": exc.message})
            continue
        rows.append(
            {
                "name": model.alias or model.name,
                "ref": model.name,
                "source": model.source,
                "path": str(model.path),
                "parameters": summary.parameters,
                "quant": summary.quantization,
                "size_bytes": model.size_bytes,
                "context_length": summary.context_length,
                "last_used": model.last_used,
            }
        )
    rows += remote_rows()
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table("NAME", "PARAMS", "QUANT", "SIZE", "CONTEXT", "SOURCE", "LAST USED", box=None)
    for row in rows:
        if row["source"] == "endpoint":
            source = f"endpoint {row['endpoint_name']}"
            add_row(table, row["name"], "-", "-", "-", "-", source, row.get("error", ""))
            continue
        if "error" in row:
            add_row(table, row["name"], "-", "-", "-", "-", row["source"], row["error"])
            continue
        add_row(
            table,
            row["name"],
            shown_parameters(row["parameters"]),
            row["quant"],
            f"{row['size_bytes'] / 1e9:.2f} GB" if row["size_bytes"] >= 1e8 else f"{row['size_bytes'] / 1e6:.0f} MB",
            str(row["context_length"]),
            row["source"],
            _ago(row["last_used"]),
        )
    out().print(table)


@click.command()
@click.argument("ref")
@click.option("--ctx", "-c", type=click.IntRange(16, 10_000_000), default=4096, show_default=True)
@click.option(
    "--gpu-layers", "--ngl", type=GpuLayersType(), help="the offload to plan: auto, all or N [settings, auto]"
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def show(ref: str, ctx: int, gpu_layers: GpuLayers | None, as_json: bool) -> None:
    """GGUF metadata of a model and a memory estimate for --ctx on this machine."""
    lib = library()
    if looks_like_path(ref):
        path = Path(ref).expanduser().resolve()
        model = LocalModel(path.stem, [str(path)], "imported")
    else:
        model = find_local(ref, lib)
        if model is None:
            raise LocalchatError(unavailable_message(ref, lib, "not found"))
    summary = lib.summary(model)
    setting = build_load_options({"gpu_layers": gpu_layers}).gpu_layers
    measured = machine_fit(summary, ctx, setting)
    estimate, fit, offload = measured.estimate, measured.fit, measured.offload
    report = {
        "name": model.alias or model.name,
        "path": str(model.path),
        "architecture": summary.architecture,
        "model_name": summary.name,
        "parameters": summary.parameters,
        "quant": summary.quantization,
        "layers": summary.layers,
        "context_length": summary.context_length,
        "chat_template": summary.chat_template,
        "license": summary.license,
        "memory": {
            "ctx": ctx,
            "weights_bytes": estimate.weights,
            "kv_cache_bytes": estimate.kv_cache,
            "compute_bytes": estimate.compute,
            "total_bytes": estimate.total,
            "free_ram_bytes": measured.free_ram,
            "free_vram_bytes": measured.free_vram,
            "verdict": fit.verdict,
            "gpu_layers": fit.gpu_layers,
            "message": fit.message,
        },
        "offload": offload_report(
            setting, offload.gpu_layers, summary.layers + 1, offload.vram_bytes, measured.free_vram, offload.note
        ),
    }
    if as_json:
        click.echo(json.dumps(report))
        return

    def echo(line: str) -> None:  # every line may quote the model file
        click.echo(inert(line))

    for key in ("name", "path", "architecture", "model_name", "parameters", "quant", "layers", "context_length"):
        echo(f"{key.replace('_', ' '):<16}{report[key]}")
    fallback = {"gemma": "Gemma's format", "chatml": "ChatML"}[fallback_family(report["architecture"] or "")]
    echo(f"{'chat template':<16}{'yes' if summary.chat_template else f'no ({fallback} is used)'}")
    echo(f"{'license':<16}{summary.license or 'unknown'}")
    echo(
        f"{'memory':<16}{estimate.total / 1e9:.2f} GB at {ctx} tokens = weights {estimate.weights / 1e9:.2f} + "
        f"KV cache {estimate.kv_cache / 1e9:.2f} + buffers {estimate.compute / 1e9:.2f}"
    )
    echo(f"{'fit':<16}{fit.message}")
    if measured.free_vram is not None:
        plan = f"{offload.gpu_layers} of {summary.layers + 1} layers, ~{offload.vram_bytes / 1e9:.2f} GB VRAM"
        echo(f"{'gpu layers':<16}{setting} → {plan}" + (f" ({offload.note})" if offload.note else ""))


@click.command()
@click.argument("ref")
@click.option("-y", "--yes", is_flag=True, help="do not ask")
def rm(ref: str, yes: bool) -> None:
    """Remove a model (an imported file is only forgotten, never deleted)."""
    lib = library()
    model = find_local(ref, lib)
    if model is None:
        raise LocalchatError(unavailable_message(ref, lib, "not found"))
    what = "delete its files" if model.source == "pulled" else "forget it (the file stays)"
    if not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise LocalchatError(f"not removing {model.name} without confirmation: add -y")
        if not click.confirm(f"Remove {model.name} and {what}?", err=True):
            raise LocalchatError("nothing removed")
    lib.remove(model)
    say(f"removed {model.name}")


@click.command(name="import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="the name to use it by [the file name]")
def import_model(path: Path, name: str | None) -> None:
    """Register a local .gguf file (validated; not copied)."""
    model = library().import_file(path, name)
    say(f"imported {model.name} ({model.path})")


@click.command()
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON array")
def search(query: str, limit: int, as_json: bool) -> None:
    """Find GGUF repos on the hub, most downloaded first, with the 4-bit files they offer."""
    results = hub.search(query, limit)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results]))
        return
    table = Table("REPO", "DOWNLOADS", "4-BIT FILES", box=None)
    for result in results:
        add_row(table, result.repo, f"{result.downloads:,}", ", ".join(result.four_bit) or "-")
    out().print(table)
