"""`localchat run MODEL [PROMPT]`: one reply to stdout, or a line-based chat (Ollama's verb)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any, Literal

import click

from localchat.chat.line_commands import LineSession
from localchat.chat.sampling import SamplingParams
from localchat.commands.line_chat import line_chat, switch_local
from localchat.commands.models import resolve_model
from localchat.commands.options import (
    build_load_options,
    build_lookup,
    build_sampling,
    draft_option,
    engine_options,
    sampling_options,
)
from localchat.commands.streaming import (
    EXIT_INTERRUPTED,
    ReplyPrinter,
    load_with_progress,
    stream_reply,
    timing_text,
)
from localchat.config import paths
from localchat.engine.protocol import ChatMessage, Done, Generate, TokenLogprob
from localchat.errors import LocalchatError
from localchat.text import inert, one_line


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
    "--nowordwrap", "no_word_wrap", is_flag=True, help="do not wrap words at the terminal's width (as Ollama's flag)"
)
@click.option(
    "--format",
    "reply_format",
    type=click.Choice(["json"]),
    help="the reply is a JSON object (a grammar holds the model to it; as Ollama's --format json)",
)
@click.option("--verbose", is_flag=True, help="timings after each reply, on stderr (as Ollama's run --verbose)")
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
    no_word_wrap: bool,
    reply_format: Literal["json"] | None,
    verbose: bool,
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
    reply = ReplyPrinter(show_reasoning=not hide_thinking and sys.stdout.isatty(), wrap=not no_word_wrap)
    if endpoint is not None:
        if logprobs:
            raise LocalchatError("--logprobs reads the local engine's logits: leave it out with --endpoint")
        run_remote(endpoint, model, prompt, system, sampling, reply_format, as_json, reply, verbose)
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
        if prompt is None:
            if piped is not None:
                raise LocalchatError("stdin was empty: pipe in a prompt, or give PROMPT")
            session = LineSession(system, sampling, info, verbose, reply_format)
            line_chat(engine, session, switch_local(engine, options), thinking, reply, lookup)
            return
        messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
        request = Generate(
            messages, sampling=sampling, thinking=thinking, logprobs=logprobs or 0, lookup=lookup, format=reply_format
        )
        done = stream_reply(engine, request, reply if not as_json else None)
        report = run_report(model, info.offload, info.load_s, done) if as_json else None
        end_reply(report, done, timing_text(done, info.load_s) if verbose else None, reply_format)


def end_reply(
    report: dict[str, Any] | None, done: Done, timings: str | None = None, reply_format: str | None = None
) -> None:
    """After a streamed reply: the --json report (or the last newline) and --verbose's timings, then its end as
    the exit code says."""
    if report is not None:
        click.echo(json.dumps(report, ensure_ascii=False))
    elif not done.text.endswith("\n"):
        click.echo()
    if timings is not None:
        click.echo(timings, err=True)
    if reply_format and done.stop_reason == "length":
        click.echo(f"localchat: the reply reached its most tokens (-n): its {reply_format} is cut off", err=True)
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
    reply_format: Literal["json"] | None,
    as_json: bool,
    reply: ReplyPrinter,
    verbose: bool,
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
    if prompt is None:
        session = LineSession(system, sampling, backend.model, verbose, reply_format)
        line_chat(backend, session, lambda ref: open_remote(url, ref), None, reply)
        return
    messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
    request = Generate(messages, sampling=sampling, format=reply_format)
    done = stream_reply(backend, request, reply if not as_json else None)
    report = run_report(model, {"endpoint": endpoint.url}, backend.model.load_s, done) if as_json else None
    end_reply(report, done, timing_text(done, backend.model.load_s) if verbose else None, reply_format)


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
