"""`localchat tokenize MODEL [TEXT]`: the text as the model's tokens (what the live counter counts)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from localchat.commands.models import resolve_model
from localchat.commands.options import build_load_options, engine_options
from localchat.config import paths
from localchat.errors import LocalchatError
from localchat.text import inert

# Two background colours, alternating from token to token, and one for special tokens (ANSI 256 colours).
BACKGROUNDS = ("\x1b[48;5;24m", "\x1b[48;5;58m")
SPECIAL = "\x1b[48;5;88m"
RESET = "\x1b[0m"


@click.command()
@click.argument("model")
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help='one JSON object: {"count": N, "tokens": [{"id", "piece"}]}')
@engine_options
def tokenize(model: str, text: str | None, as_json: bool, **flags: Any) -> None:
    """Split TEXT (or stdin) into MODEL's tokens: pieces and ids. The pieces joined give the text back."""
    if text is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise LocalchatError("no text: give TEXT, or pipe it in")
        text = sys.stdin.read()
    if not text:
        raise LocalchatError("no text: the text to tokenize is empty")
    options = build_load_options(flags)
    path = resolve_model(model)
    from localchat.commands.streaming import load_with_progress  # the engine's client: only when a model runs
    from localchat.engine.client import EngineClient

    with EngineClient(paths().ensure().engine_log) as engine:
        load_with_progress(engine, path, options)
        tokens = engine.tokenize(text)
    if as_json:
        rows = [{"id": t.id, "piece": t.piece} for t in tokens]
        click.echo(json.dumps({"count": len(tokens), "tokens": rows}, ensure_ascii=False))
    elif sys.stdout.isatty():
        shown = [
            f"{SPECIAL if t.special else BACKGROUNDS[i % 2]}{inert(t.piece).replace(chr(10), '↵' + chr(10))}{RESET}"
            for i, t in enumerate(tokens)
        ]
        click.echo("".join(shown))
        click.echo(f"{len(tokens)} tokens", err=True)
    else:
        for t in tokens:
            click.echo(f"{t.id}\t{json.dumps(t.piece, ensure_ascii=False)}")
