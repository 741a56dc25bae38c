"""Talking to a backend from the command line: loading with a progress line, a reply streamed to stdout, and
Ctrl-C that stops either (what `run`, the line chat, `tokenize` and `arena` share)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from localchat.commands.word_wrap import WordWrap
from localchat.engine.protocol import Delta, Done, Generate, LoadOptions, ModelInfo
from localchat.errors import LoadCancelled, LocalchatError
from localchat.text import inert

if TYPE_CHECKING:
    from localchat.chat.backend import ChatBackend
    from localchat.engine.client import EngineClient

EXIT_INTERRUPTED = 130


@contextmanager
def cancel_on_interrupt(engine: ChatBackend | EngineClient) -> Iterator[None]:
    """Ctrl-C while a reply streams stops the reply (the engine is in its own session and never sees it)."""
    previous = signal.signal(signal.SIGINT, lambda *_: engine.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def load_with_progress(engine: EngineClient, path: Path, options: LoadOptions) -> ModelInfo:
    """Load, showing how far it has come on a terminal (a 7B takes a while); Ctrl-C stops the load and localchat."""
    try:
        return loading(engine, path, options)
    except LoadCancelled:
        click.echo(f"localchat: stopped loading {inert(path.name)}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def loading(engine: EngineClient, path: Path, options: LoadOptions) -> ModelInfo:
    """Load with a progress line on a terminal; Ctrl-C stops the load (LoadCancelled)."""
    shown = sys.stderr.isatty()

    def progress(fraction: float) -> None:
        if shown:
            sys.stderr.write(f"\rloading {inert(path.name)}… {fraction:.0%}")
            sys.stderr.flush()

    try:
        with cancel_on_interrupt(engine):
            return engine.load(path, options, progress)
    finally:
        if shown:
            sys.stderr.write("\r\x1b[K")  # the line goes: what follows is the reply
            sys.stderr.flush()


DIM, PLAIN = "\x1b[2m", "\x1b[0m"


class ReplyPrinter:
    """A reply on stdout as it streams: the reasoning dimmed (on a terminal, unless hidden), then the answer.
    Raw bytes when piped (scripts get the exact text); on a terminal, inert control characters, and words wrapped
    at its width as Ollama's run wraps them (`wrap=False`: --nowordwrap)."""

    def __init__(self, show_reasoning: bool, wrap: bool = True) -> None:
        self.show_reasoning = show_reasoning
        self.terminal = sys.stdout.isatty()
        self.wrap = wrap and self.terminal
        self.in_reasoning = False
        self.lines: WordWrap | None = None

    def start(self) -> None:
        self.in_reasoning = False
        self.lines = WordWrap(terminal_width()) if self.wrap else None  # read as each reply starts

    def _shown(self, text: str) -> str:
        if not self.terminal:
            return text
        text = inert(text)
        if self.lines is None:
            return text
        self.lines.resize(terminal_width())  # a resize mid-reply: the rest wraps at the new width
        return self.lines.feed(text)

    def __call__(self, delta: Delta) -> None:
        out = []
        if delta.reasoning and self.show_reasoning:
            if not self.in_reasoning:
                out.append(DIM)
                self.in_reasoning = True
            out.append(self._shown(delta.reasoning))
        if delta.text:
            out.append(self._end_reasoning())
            out.append(self._shown(delta.text))
        sys.stdout.write("".join(out))
        sys.stdout.flush()

    def _end_reasoning(self) -> str:
        if not self.in_reasoning:
            return ""
        self.in_reasoning = False
        return PLAIN + self._shown("\n\n")

    def finish(self, done: Done) -> None:
        end = self._end_reasoning()
        if done.reasoning_state == "open" and end:
            end += self._shown("(the reply ended inside its reasoning: no answer yet)")
        elif done.reasoning_state == "open":  # the reasoning was not printed: say where it is
            click.echo("localchat: the reply ended inside its reasoning, with no answer (--json has it)", err=True)
        elif done.reasoning_state == "stray":
            click.echo("localchat: the model wrote a closing reasoning marker with no opening one", err=True)
        sys.stdout.write(end)
        sys.stdout.flush()


def terminal_width() -> int:
    """The terminal's width now. Not shutil's, which believes $COLUMNS first: readline sets that variable when it
    starts and leaves it so after a resize (and children inherit it)."""
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


def stream_reply(engine: ChatBackend, request: Generate, printer: ReplyPrinter | None) -> Done:
    """The reply, printed as it streams unless `printer` is None (--json)."""
    if printer is not None:
        printer.start()
    with cancel_on_interrupt(engine):
        for event in engine.generate(request):
            if isinstance(event, Done):
                if printer is not None:
                    printer.finish(event)
                return event
            if printer is not None:
                printer(event)
    raise LocalchatError("the engine ended the reply without a result")


def timing_text(done: Done, load_s: float = 0.0) -> str:
    """`--verbose` / `/set verbose`: a reply's timings as Ollama's run prints them (the load where there was one)."""
    usage, timings = done.usage, done.timings
    cached = usage.prompt_tokens - usage.evaluated_prompt_tokens
    rows = [("total duration", _duration(load_s + timings.ttft_s + timings.decode_s))]
    if load_s:
        rows.append(("load duration", _duration(load_s)))
    rows += [
        ("prompt eval count", f"{usage.evaluated_prompt_tokens} token(s)" + (f", {cached} cached" if cached else "")),
        ("prompt eval duration", _duration(timings.prompt_s)),
        ("prompt eval rate", f"{timings.prompt_tok_s:.2f} tokens/s"),
        ("eval count", f"{usage.completion_tokens} token(s)"),
        ("eval duration", _duration(timings.decode_s)),
        ("eval rate", f"{timings.decode_tok_s:.2f} tokens/s"),
    ]
    return "\n".join(f"{name + ':':<22}{value}" for name, value in rows)


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s" if seconds >= 1 else f"{seconds * 1000:.1f}ms"
