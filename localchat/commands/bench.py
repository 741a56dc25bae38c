"""`localchat bench MODEL`: load time, TTFT, prompt and decode speed, prefix reuse over 10 turns."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import click

from localchat.commands.models import resolve_model
from localchat.commands.options import build_load_options, draft_option, engine_options
from localchat.config import paths


@click.command()
@click.argument("model")
@click.option("--repetitions", "-r", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--endpoint", metavar="NAME|URL", help="measure MODEL on an OpenAI-compatible server instead")
@click.option(
    "--speed-only", is_flag=True, help="prompt and decode speed alone, as llama-bench measures them (no other case)"
)
@engine_options
@draft_option
def bench(model: str, repetitions: int, as_json: bool, endpoint: str | None, speed_only: bool, **flags: Any) -> None:
    """Measure MODEL's speed with this build of the engine (or on a server, and what this client costs)."""
    if endpoint is not None:
        bench_remote(model, endpoint, repetitions, as_json)
        return
    from localchat.bench import LONG_CHAT, run_bench  # the engine client: only for this command

    path = resolve_model(model)
    result = run_bench(path, build_load_options(flags), repetitions, paths().ensure().engine_log, speed_only)
    if as_json:
        report = asdict(result)
        if result.cancel_ms is not None and math.isnan(result.cancel_ms):
            report["cancel_ms"] = None
        click.echo(json.dumps(report))
        return
    click.echo(f"model        {result.model}")
    click.echo(f"threads      {result.threads}    context {result.n_ctx}")
    click.echo(f"load         {result.load_s:.2f} s")
    click.echo(
        f"prompt       {result.prompt_tok_s:.1f} tok/s  ({result.prompt_tokens} tokens, TTFT {result.ttft_s:.3f} s)"
    )
    where = "in llama.cpp's graph" if result.sampler == "graph" else "on the CPU"
    click.echo(f"decode       {result.decode_tok_s:.1f} tok/s (tokens picked {where})")
    if speed_only:
        return
    logprobs_cost = 1 - result.decode_logprobs_tok_s / result.decode_tok_s if result.decode_tok_s else 0.0
    click.echo(f"  + logprobs {result.decode_logprobs_tok_s:.1f} tok/s (top 5 per token: {logprobs_cost:+.1%} slower)")
    click.echo(f"cancel       {result.cancel_ms:.0f} ms from cancel to stop, mid-prompt")
    click.echo("turn  new  evaluated  ttft")
    for number, turn in enumerate(result.turns, 1):
        click.echo(f"{number:>4} {turn.new_tokens:>4} {turn.evaluated_tokens:>10}  {turn.ttft_s:.3f} s")
    click.echo(f"turn {len(result.turns)} evaluated/new = {result.last_turn_ratio:.2f}")
    click.echo(
        f"count        {LONG_CHAT}-message chat: first {result.count_long_first_ms:.0f} ms, then "
        f"{result.count_long_key_ms:.1f} ms a keystroke (2-message chat: {result.count_short_key_ms:.1f} ms)"
    )
    if result.reopen is not None:
        r = result.reopen
        ratio = r.restored_ttft_s / r.cold_ttft_s if r.cold_ttft_s else 0.0
        click.echo(
            f"reopen       {r.history_tokens}-token chat after a restart: TTFT {r.restored_ttft_s:.3f} s restored vs "
            f"{r.cold_ttft_s:.3f} s re-read ({ratio:.0%}; {'same reply' if r.same_text else 'the reply differs'})"
        )
    for name, case in result.speculative.items():
        click.echo(
            f"{case.source} {name:<14}{case.lookup_tok_s:.1f} tok/s vs {case.plain_tok_s:.1f} plain "
            f"= {case.speedup:.2f}x "
            f"({case.acceptance:.0%} of drafts taken, {case.tokens} tokens, "
            f"{'same text' if case.same_text else 'text differs: see README, Prompt lookup'})"
        )


def bench_remote(model: str, endpoint: str, repetitions: int, as_json: bool) -> None:
    from localchat.backends.endpoints import resolve_endpoint
    from localchat.backends.remote import RemoteBackend
    from localchat.bench import run_remote_bench

    result = run_remote_bench(RemoteBackend(resolve_endpoint(endpoint), model), repetitions)
    if as_json:
        click.echo(json.dumps(asdict(result)))
        return
    click.echo(f"endpoint     {result.endpoint}  model {result.model}")
    click.echo(f"replies      {result.replies}, {result.tokens} tokens, TTFT {result.ttft_s:.3f} s (median)")
    click.echo(f"decode       {result.decode_tok_s:.1f} tok/s")
    click.echo(
        f"this client  {result.client_cpu_ms_per_token:.3f} ms of CPU a token: "
        f"{result.client_share_of_decode:.1%} of a token's decode time"
    )
