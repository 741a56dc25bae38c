"""`localchat run MODEL` with no prompt: a line-based chat as Ollama's (readline, history, slash commands from
chat/line_commands.py), for terminals where the TUI won't do."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from localchat.chat.context import UNKNOWN_CONTEXT, plan_to_fit
from localchat.chat.line_commands import LineSession, gather, run_command
from localchat.commands.models import resolve_model
from localchat.commands.streaming import ReplyPrinter, loading, stream_reply, timing_text
from localchat.config import paths
from localchat.engine.protocol import ChatMessage, Generate, LoadOptions, ModelInfo
from localchat.errors import LoadCancelled, LocalchatError
from localchat.text import inert, one_line

if TYPE_CHECKING:
    from localchat.chat.backend import ChatBackend
    from localchat.engine.client import EngineClient


def line_chat(
    engine: ChatBackend,
    session: LineSession,
    switch: Callable[[str], ChatBackend],
    thinking: bool | None,
    printer: ReplyPrinter,
    lookup: bool = True,
) -> None:
    """A plain multi-turn chat for terminals where the TUI won't do. /bye or Ctrl-D leaves, /clear forgets, /load
    switches the model with `switch`, /? lists the rest (chat/line_commands.py)."""
    with readline_prompt(paths().data_dir / "line_history"):
        _line_chat(engine, session, switch, thinking, printer, lookup)


@contextmanager
def readline_prompt(history: Path) -> Iterator[None]:
    """In a terminal input() reads through readline, as Ollama's prompt does: line editing, Up for earlier lines
    (kept in `history` across runs, as ~/.ollama/history), and a paste of several lines as one message (Python
    turns readline's bracketed paste off for its own REPL: bpo-42819)."""
    try:
        import readline
    except ImportError:  # not on Windows
        yield
        return
    readline.parse_and_bind("set enable-bracketed-paste on")
    readline.set_history_length(1000)
    with contextlib.suppress(OSError):  # none yet
        readline.read_history_file(history)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # written whole, then put in place: never a half-written file
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(f"{history}.tmp")
            os.replace(f"{history}.tmp", history)


@contextmanager
def typeahead_unshown() -> Iterator[None]:
    """While a reply streams, what is typed is not echoed into it by the terminal: it waits, kept, and readline
    shows it at the next prompt (typed ahead, "/bye" landed in the middle of the reply's text)."""
    try:
        import termios

        fd = sys.stdin.fileno()
        before = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError):  # not a terminal (or not POSIX): nothing is echoed anyway
        yield
        return
    quiet = list(before)
    quiet[3] &= ~termios.ECHO  # lflag
    termios.tcsetattr(fd, termios.TCSANOW, quiet)  # TCSANOW: the typed-ahead input stays queued
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, before)


def _context(model: ModelInfo) -> str:
    return f"{model.n_ctx}-token context" if model.n_ctx else "context size not given by the server"


def _line_chat(
    engine: ChatBackend,
    session: LineSession,
    switch: Callable[[str], ChatBackend],
    thinking: bool | None,
    printer: ReplyPrinter,
    lookup: bool,
) -> None:
    history: list[ChatMessage] = []  # the turns; the system prompt goes before them as each is sent
    model = session.model
    say = f"Chatting with {inert(model.name)} ({_context(model)}). /? for help, /bye or Ctrl-D to leave."
    click.echo(say, err=True)
    while True:
        try:
            line = gather(input(">>> "), lambda: input("... "))
        except EOFError:
            click.echo(err=True)
            return
        except KeyboardInterrupt:
            click.echo("\n(use /bye or Ctrl-D to leave)", err=True)
            continue
        command = run_command(line, session)
        if command is not None:
            session = command.session
            if command.say:
                click.echo(inert(command.say), err=True)  # /show info quotes the model file
            if command.leave:
                return
            if command.clear:
                history = []
            if command.load is not None:
                engine, session = _switch(engine, session, switch, command.load)
            continue
        if not line.strip():
            continue
        system_message = [ChatMessage("system", session.system)] if session.system else []
        candidate = [*system_message, *history, ChatMessage("user", line)]
        try:
            n_ctx = session.model.n_ctx or UNKNOWN_CONTEXT  # a server that does not say: it refuses what is too long
            plan = plan_to_fit(
                candidate, partial(engine.measure, thinking=thinking), n_ctx, session.sampling.max_tokens
            )
        except LocalchatError as exc:
            click.echo(f"localchat: {one_line(exc.message)}", err=True)
            continue
        if plan.dropped:
            click.echo(f"(left out the {len(plan.dropped)} oldest messages to fit the context window)", err=True)
        with typeahead_unshown():
            done = stream_reply(
                engine,
                Generate(
                    plan.messages,
                    sampling=session.sampling,
                    thinking=thinking,
                    lookup=lookup,
                    format=session.format,
                ),
                printer,
            )
        click.echo()
        if session.verbose:
            click.echo(timing_text(done), err=True)
        if done.stop_reason == "error":
            click.echo(f"localchat: {one_line(done.error or '')}; the next message starts a new engine", err=True)
        elif done.stop_reason == "cancelled":
            click.echo("(stopped)", err=True)
        history = [*candidate[len(system_message) :], ChatMessage("assistant", done.text)]


def _switch(
    engine: ChatBackend, session: LineSession, switch: Callable[[str], ChatBackend], ref: str
) -> tuple[ChatBackend, LineSession]:
    """/load: the chat goes on with the model asked for, or says why not and goes on as it was."""
    click.echo(f"Loading model '{inert(ref)}'", err=True)
    try:
        engine = switch(ref)
    except LocalchatError as exc:
        if engine.model is None:  # the model before did not load again either: nothing is left to chat with
            raise LocalchatError(f"{exc.message}; no model is loaded, so the chat ends") from None
        click.echo(f"localchat: {one_line(exc.message)}", err=True)
        return engine, session
    except KeyboardInterrupt:  # a server's model being opened
        click.echo(f"(stopped: still chatting with {inert(session.model.name)})", err=True)
        return engine, session
    model = engine.model or session.model
    note = "" if model.architecture == "remote" else f", {model.offload_text}"
    say = f"Chatting with {inert(model.name)} ({_context(model)}{one_line(note)}); /clear starts afresh."
    click.echo(say, err=True)
    return engine, replace(session, model=model)


def switch_local(engine: EngineClient, options: LoadOptions) -> Callable[[str], ChatBackend]:
    """The line chat's /load: the model asked for (one already here, as Ollama's /load does not pull), or where it
    does not load, the one before again, so the chat goes on."""

    def switch(ref: str) -> ChatBackend:
        path = resolve_model(ref, allow_pull=False)
        previous = engine.model
        try:
            loading(engine, path, options)
            return engine
        except LoadCancelled:
            why = f"stopped loading {path.name}"
        except LocalchatError as exc:
            why = exc.message
        if previous is None:
            raise LocalchatError(why)
        if engine.model is None:  # the engine had let the previous model go
            loading(engine, Path(previous.path), options)
        raise LocalchatError(f"{why}; still chatting with {previous.name}")

    return switch
