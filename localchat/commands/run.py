"""`localchat run MODEL [PROMPT]`: one reply to stdout, or a line-based chat (Ollama's verb)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localchat.chat.context import UNKNOWN_CONTEXT, plan_to_fit
from localchat.chat.line_commands import LineSession, gather, run_command
from localchat.chat.sampling import SamplingParams
from localchat.commands.models import resolve_model
from localchat.commands.options import (
    build_load_options,
    build_lookup,
    build_sampling,
    draft_option,
    engine_options,
    sampling_options,
)
from localchat.config import paths
from localchat.engine.protocol import ChatMessage, Delta, Done, Generate, LoadOptions, ModelInfo, TokenLogprob
from localchat.errors import LoadCancelled, LocalchatError
from localchat.text import inert, one_line

if TYPE_CHECKING:
    from localchat.chat.backend import ChatBackend
    from localchat.engine.client import EngineClient

EXIT_INTERRUPTED = 130


@click.command()
@click.argument("model")
@click.argument("prompt", required=False)
@click.option("--system", help="system prompt")
@click.option(
    "--json", "as_json", is_flag=True, help="print one JSON object (text, reasoning, usage, timings) when done"
)
@click.option(
    "--think/--no-think", "thinking", default=None, help="a thinking model reasons first, or not (default: the model's)"
)
@click.option("--hide-thinking", is_flag=True, help="do not print a thinking model's reasoning")
@click.option(
    "--logprobs",
    type=click.IntRange(1, 20),
    help="with --json: each token's log-probability and the N likeliest candidates (OpenAI's logprobs)",
)
@click.option(
    "--endpoint", metavar="NAME|URL", help="an OpenAI-compatible server (config.toml's name, or its …/v1 URL)"
)
@click.option(
    "--lookup/--no-lookup",
    default=None,
    help="draft tokens copied from the conversation, checked by the model: same text, sooner [on]",
)
@engine_options
@draft_option
@sampling_options
def run(
    model: str,
    prompt: str | None,
    system: str | None,
    as_json: bool,
    thinking: bool | None,
    hide_thinking: bool,
    logprobs: int | None,
    endpoint: str | None,
    lookup: bool | None,
    **flags: Any,
) -> None:
    """Chat with MODEL (a name, user/repo[:QUANT] or .gguf path; pulled if missing). With PROMPT or piped
    stdin, print one reply and exit. A thinking model's reasoning is printed dimmed on a terminal; piped
    output is the answer alone (`--json` has both)."""
    sampling = build_sampling(flags)
    options = build_load_options(flags)
    lookup = build_lookup(lookup)
    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    if piped is not None and piped.strip():
        prompt = f"{prompt}\n\n{piped}" if prompt else piped
    elif prompt is not None and not prompt.strip():
        raise LocalchatError("the prompt is empty: give some text, or leave PROMPT out to chat")
    if endpoint is not None:
        if logprobs:
            raise LocalchatError("--logprobs reads the local engine's logits: leave it out with --endpoint")
        run_remote(endpoint, model, prompt, system, sampling, as_json, hide_thinking)
        return
    path = resolve_model(model)
    from localchat.engine.client import EngineClient  # the engine's client: only when a model runs

    with EngineClient(paths().ensure().engine_log) as engine:
        info = load_with_progress(engine, path, options)
        if info.offload_note or info.gpu_layers:
            click.echo(f"localchat: {one_line(info.offload_text)}", err=True)
        if info.draft_note:
            click.echo(f"localchat: {one_line(info.draft_note)}", err=True)
        if thinking is not None and info.thinking not in ("switch", "soft"):
            does = "always thinks" if info.thinking == "always" else "does not think"
            click.echo(f"localchat: {inert(path.name)} {does}: --think/--no-think changes nothing", err=True)
        reply = ReplyPrinter(show_reasoning=not hide_thinking and sys.stdout.isatty())
        if prompt is None:
            if piped is not None:
                raise LocalchatError("stdin was empty: pipe in a prompt, or give PROMPT")
            line_chat(engine, system, sampling, thinking, reply, lookup)
            return
        messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
        request = Generate(messages, sampling=sampling, thinking=thinking, logprobs=logprobs or 0, lookup=lookup)
        done = stream_reply(engine, request, reply if not as_json else None)
        end_reply(run_report(model, info.offload, info.load_s, done) if as_json else None, done)


def end_reply(report: dict[str, Any] | None, done: Done) -> None:
    """After a streamed reply: the --json report (or the last newline), then its end as the exit code says."""
    if report is not None:
        click.echo(json.dumps(report, ensure_ascii=False))
    elif not done.text.endswith("\n"):
        click.echo()
    if done.stop_reason == "error":
        raise LocalchatError(f"the reply was cut off: {done.error} (what came is kept above)")
    if done.stop_reason == "cancelled":
        sys.exit(EXIT_INTERRUPTED)


def run_remote(
    url: str,
    model: str,
    prompt: str | None,
    system: str | None,
    sampling: SamplingParams,
    as_json: bool,
    hide_thinking: bool,
) -> None:
    """One reply from MODEL on an OpenAI-compatible server, printed as a local one is (same --json shape)."""
    from localchat.backends.endpoints import open_remote

    backend = open_remote(url, model)
    endpoint = backend.endpoint
    if not endpoint.loopback and endpoint.url.startswith("http://"):
        click.echo(
            f"localchat: {inert(endpoint.url)} is plain http: the prompt and the key travel unencrypted", err=True
        )
    if backend.ignored:
        click.echo(
            f"localchat: {inert(url)} gets OpenAI's sampling fields only: {', '.join(backend.ignored)} are not sent",
            err=True,
        )
    reply = ReplyPrinter(show_reasoning=not hide_thinking and sys.stdout.isatty())
    if prompt is None:
        line_chat(backend, system, sampling, None, reply)
        return
    messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
    done = stream_reply(backend, Generate(messages, sampling=sampling), reply if not as_json else None)
    end_reply(run_report(model, {"endpoint": endpoint.url}, backend.model.load_s, done) if as_json else None, done)


def run_report(model: str, offload: dict[str, Any], load_s: float, done: Done) -> dict[str, Any]:
    report = {
        "text": done.text,
        "reasoning": done.reasoning or None,
        "reasoning_state": done.reasoning_state,  # none, closed, open (ended mid-reasoning), stray (see text)
        "model": model,
        "offload": offload,
        "stop_reason": done.stop_reason,
        "usage": asdict(done.usage),
        "timings": {
            "load_s": load_s,
            "ttft_s": done.timings.ttft_s,
            "prompt_tok_s": done.timings.prompt_tok_s,
            "decode_tok_s": done.timings.decode_tok_s,
            "thinking_s": done.timings.thinking_s,
        },
        # prompt lookup's drafts where it ran (null: it did not; a server's reply)
        "speculative": asdict(done.speculative) if done.speculative is not None else None,
    }
    if done.logprobs:
        report["logprobs"] = {"content": [openai_logprob(entry) for entry in done.logprobs]}
    return report


def openai_logprob(entry: TokenLogprob) -> dict[str, Any]:
    def one(token: str, logprob: float, raw: bytes) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(raw)}

    top = [one(c.token, c.logprob, c.raw) for c in entry.top]
    return one(entry.token, entry.logprob, entry.raw) | {"top_logprobs": top}


@contextmanager
def cancel_on_interrupt(engine: ChatBackend | EngineClient) -> Iterator[None]:
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


DIM, PLAIN = "\x1b[2m", "\x1b[0m"


class ReplyPrinter:
    """A reply on stdout as it streams: the reasoning dimmed (on a terminal, unless hidden), then the answer.
    Raw bytes when piped (scripts get the exact text); inert control characters on a terminal."""

    def __init__(self, show_reasoning: bool) -> None:
        self.show_reasoning = show_reasoning
        self.terminal = sys.stdout.isatty()
        self.in_reasoning = False

    def start(self) -> None:
        self.in_reasoning = False

    def __call__(self, delta: Delta) -> None:
        out = []
        if delta.reasoning and self.show_reasoning:
            if not self.in_reasoning:
                out.append(DIM)
                self.in_reasoning = True
            out.append(inert(delta.reasoning))
        if delta.text:
            out.append(self._end_reasoning())
            out.append(inert(delta.text) if self.terminal else delta.text)
        sys.stdout.write("".join(out))
        sys.stdout.flush()

    def _end_reasoning(self) -> str:
        if not self.in_reasoning:
            return ""
        self.in_reasoning = False
        return f"{PLAIN}\n\n"

    def finish(self, done: Done) -> None:
        end = self._end_reasoning()
        if done.reasoning_state == "open" and end:
            end += "(the reply ended inside its reasoning: no answer yet)"
        elif done.reasoning_state == "open":  # the reasoning was not printed: say where it is
            click.echo("localchat: the reply ended inside its reasoning, with no answer (--json has it)", err=True)
        elif done.reasoning_state == "stray":
            click.echo("localchat: the model wrote a closing reasoning marker with no opening one", err=True)
        sys.stdout.write(end)
        sys.stdout.flush()


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


def line_chat(
    engine: ChatBackend,
    system: str | None,
    sampling: SamplingParams,
    thinking: bool | None,
    printer: ReplyPrinter,
    lookup: bool = True,
) -> None:
    """A plain multi-turn chat for terminals where the TUI won't do. /bye or Ctrl-D leaves, /clear forgets, /? lists
    the rest (chat/line_commands.py)."""
    with readline_prompt(paths().data_dir / "line_history"):
        _line_chat(engine, LineSession(system, sampling), thinking, printer, lookup)


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


def _line_chat(
    engine: ChatBackend,
    session: LineSession,
    thinking: bool | None,
    printer: ReplyPrinter,
    lookup: bool,
) -> None:
    history: list[ChatMessage] = []  # the turns; the system prompt goes before them as each is sent
    n_ctx = engine.model.n_ctx or UNKNOWN_CONTEXT  # a server that does not say: it refuses what is too long
    size = f"{engine.model.n_ctx}-token context" if engine.model.n_ctx else "context size not given by the server"
    click.echo(f"Chatting with {inert(engine.model.name)} ({size}). /? for help, /bye or Ctrl-D to leave.", err=True)
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
                click.echo(command.say, err=True)
            if command.leave:
                return
            if command.clear:
                history = []
            continue
        if not line.strip():
            continue
        system_message = [ChatMessage("system", session.system)] if session.system else []
        candidate = [*system_message, *history, ChatMessage("user", line)]
        try:
            plan = plan_to_fit(
                candidate, lambda sent: engine.measure(sent, thinking), n_ctx, session.sampling.max_tokens
            )
        except LocalchatError as exc:
            click.echo(f"localchat: {one_line(exc.message)}", err=True)
            continue
        if plan.dropped:
            click.echo(f"(left out the {len(plan.dropped)} oldest messages to fit the context window)", err=True)
        done = stream_reply(
            engine, Generate(plan.messages, sampling=session.sampling, thinking=thinking, lookup=lookup), printer
        )
        click.echo()
        if done.stop_reason == "error":
            click.echo(f"localchat: {one_line(done.error or '')}; the next message starts a new engine", err=True)
        elif done.stop_reason == "cancelled":
            click.echo("(stopped)", err=True)
        history = [*candidate[len(system_message) :], ChatMessage("assistant", done.text)]
