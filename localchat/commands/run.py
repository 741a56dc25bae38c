"""`localchat run MODEL [PROMPT]`: one reply to stdout, or a line-based chat (Ollama's verb)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localchat.chat.context import plan_prompt
from localchat.chat.sampling import SamplingParams
from localchat.commands.models import resolve_model
from localchat.commands.options import build_load_options, build_sampling, engine_options, sampling_options
from localchat.config import paths
from localchat.engine.protocol import ChatMessage, Done, Generate, LoadOptions, ModelInfo
from localchat.errors import LoadCancelled, LocalchatError
from localchat.text import inert, one_line

if TYPE_CHECKING:
    from localchat.engine.client import EngineClient

EXIT_INTERRUPTED = 130


@click.command()
@click.argument("model")
@click.argument("prompt", required=False)
@click.option("--system", help="system prompt")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object (text, usage, timings) when done")
@engine_options
@sampling_options
def run(model: str, prompt: str | None, system: str | None, as_json: bool, **flags: Any) -> None:
    """Chat with MODEL (a name, user/repo[:QUANT] or .gguf path; pulled if missing). With PROMPT or piped
    stdin, print one reply and exit."""
    sampling = build_sampling(flags)
    options = build_load_options(flags)
    path = resolve_model(model)
    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    if piped is not None and piped.strip():
        prompt = f"{prompt}\n\n{piped}" if prompt else piped
    elif prompt is not None and not prompt.strip():
        raise LocalchatError("the prompt is empty: give some text, or leave PROMPT out to chat")
    from localchat.engine.client import EngineClient  # the engine's client: only when a model runs

    with EngineClient(paths().ensure().engine_log) as engine:
        info = load_with_progress(engine, path, options)
        if info.offload_note or info.gpu_layers:
            click.echo(f"localchat: {one_line(info.offload_text)}", err=True)
        if prompt is None:
            if piped is not None:
                raise LocalchatError("stdin was empty: pipe in a prompt, or give PROMPT")
            line_chat(engine, system, sampling)
            return
        messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
        done = stream_reply(engine, Generate(messages, sampling=sampling), echo=not as_json)
        if as_json:
            click.echo(json.dumps(run_report(model, info, done), ensure_ascii=False))
        elif not done.text.endswith("\n"):
            click.echo()
        if done.stop_reason == "error":
            raise LocalchatError(f"the reply was cut off: {done.error}")
        if done.stop_reason == "cancelled":
            sys.exit(EXIT_INTERRUPTED)


def run_report(model: str, info: ModelInfo, done: Done) -> dict[str, Any]:
    return {
        "text": done.text,
        "model": model,
        "offload": info.offload,
        "stop_reason": done.stop_reason,
        "usage": asdict(done.usage),
        "timings": {
            "load_s": info.load_s,
            "ttft_s": done.timings.ttft_s,
            "prompt_tok_s": done.timings.prompt_tok_s,
            "decode_tok_s": done.timings.decode_tok_s,
        },
    }


@contextmanager
def cancel_on_interrupt(engine: EngineClient) -> Iterator[None]:
    """Ctrl-C while a reply streams stops the reply (the engine is in its own session and never sees it)."""
    previous = signal.signal(signal.SIGINT, lambda *_: engine.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def load_with_progress(engine: EngineClient, path: Path, options: LoadOptions) -> ModelInfo:
    """Load, showing how far it has come on a terminal (a 7B takes a while); Ctrl-C stops the load."""
    shown, stopped = sys.stderr.isatty(), False

    def progress(fraction: float) -> None:
        if shown:
            sys.stderr.write(f"\rloading {inert(path.name)}… {fraction:.0%}")
            sys.stderr.flush()

    try:
        with cancel_on_interrupt(engine):
            return engine.load(path, options, progress)
    except LoadCancelled:
        stopped = True
    finally:
        if shown:
            sys.stderr.write("\r\x1b[K")  # the line goes: what follows is the reply
            sys.stderr.flush()
    if stopped:
        click.echo(f"localchat: stopped loading {inert(path.name)}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def stream_reply(engine: EngineClient, request: Generate, echo: bool) -> Done:
    # Raw bytes when piped (scripts get the exact text); inert control characters on a terminal.
    show = inert if sys.stdout.isatty() else (lambda text: text)
    with cancel_on_interrupt(engine):
        for event in engine.generate(request):
            if isinstance(event, Done):
                return event
            if echo:
                sys.stdout.write(show(event.text))
                sys.stdout.flush()
    raise LocalchatError("the engine ended the reply without a result")


def line_chat(engine: EngineClient, system: str | None, sampling: SamplingParams) -> None:
    """A plain multi-turn chat for terminals where the TUI won't do. /bye or Ctrl-D leaves, /clear forgets."""
    history: list[ChatMessage] = [ChatMessage("system", system)] if system else []
    n_ctx = engine.model.n_ctx
    click.echo(f"Chatting with {inert(engine.model.name)} ({n_ctx}-token context). /bye or Ctrl-D to leave.", err=True)
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            click.echo(err=True)
            return
        except KeyboardInterrupt:
            click.echo("\n(use /bye or Ctrl-D to leave)", err=True)
            continue
        text = line.strip()
        if text in ("/bye", "/exit", "/quit"):
            return
        if text == "/clear":
            history = history[:1] if system else []
            click.echo("(conversation cleared)", err=True)
            continue
        if not text:
            continue
        candidate = [*history, ChatMessage("user", line)]
        try:
            plan = plan_prompt(candidate, engine.measure(candidate), n_ctx, sampling.max_tokens)
        except LocalchatError as exc:
            click.echo(f"localchat: {one_line(exc.message)}", err=True)
            continue
        if plan.dropped:
            click.echo(f"(left out the {len(plan.dropped)} oldest messages to fit the context window)", err=True)
        done = stream_reply(engine, Generate(plan.messages, sampling=sampling), echo=True)
        click.echo()
        if done.stop_reason == "error":
            click.echo(f"localchat: {one_line(done.error or '')}; the next message starts a new engine", err=True)
        elif done.stop_reason == "cancelled":
            click.echo("(stopped)", err=True)
        history = [*candidate, ChatMessage("assistant", done.text)]
