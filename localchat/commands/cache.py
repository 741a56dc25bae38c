"""`localchat cache [clear]`: the saved KV states of recent chats (engine/saved_states.py) — how much, and clearing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from localchat.config import paths


def states_folder() -> Path:
    return paths().saved_states


def describe(files: int, size: int, budget: int) -> str:
    return f"{files} saved chat state{'s' if files != 1 else ''}, {size / 2**20:.0f} MB of {budget / 2**20:.0f} MB"


def saved_states() -> dict[str, Any]:
    """The saved chat states' folder: files, bytes and budget (what `localchat cache` shows)."""
    from localchat.commands.options import build_load_options
    from localchat.engine.state_files import usage

    held = usage(states_folder())
    return {"files": held.files, "bytes": held.bytes, "budget_bytes": build_load_options({}).saved_states_bytes}


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object: files, bytes, budget_bytes, folder")
@click.pass_context
def cache(context: click.Context, as_json: bool) -> None:
    """Saved chat states: a long chat reopened restores them instead of reading its history again."""
    if context.invoked_subcommand is not None:
        return
    report = saved_states() | {"folder": str(states_folder())}
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{describe(report['files'], report['bytes'], report['budget_bytes'])} in {states_folder()}")


@cache.command()
def clear() -> None:
    """Delete every saved chat state (chats then read their history again when reopened)."""
    from localchat.engine.state_files import clear as clear_states

    gone = clear_states(states_folder())
    click.echo(f"deleted {gone.files} saved chat state{'s' if gone.files != 1 else ''} ({gone.bytes / 2**20:.0f} MB)")
