"""`localchat arena MODEL_A MODEL_B PROMPT`: both reply blind (A/B shuffled), the vote comes from stdin; and
`localchat arena --leaderboard`: the ratings those votes give (chat/ratings.py)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from localchat.chat.sampling import PRESETS, SamplingParams, parse_number
from localchat.commands.options import (
    build_load_options,
    build_lookup,
    build_sampling,
    engine_options,
    sampling_options,
)
from localchat.config import paths
from localchat.errors import InvalidSetting, LocalchatError
from localchat.text import inert

if TYPE_CHECKING:  # the arena's modules load when a battle runs, not when the CLI starts
    from localchat.chat.arena import Contestant
    from localchat.chat.ratings import Rating
    from localchat.engine.protocol import Delta, Done
    from localchat.store.db import Store

VOTE_PROMPT = "Which is better? a = A, b = B, t = tie, n = both bad: "
NO_VOTES = "no votes yet: run `localchat arena MODEL_A MODEL_B PROMPT`, or the app's arena (F10)"


@click.command()
@click.argument("model_a", required=False)
@click.argument("model_b", required=False)
@click.argument("prompt", required=False)
@click.option("--leaderboard", is_flag=True, help="the ratings from your votes instead of a battle")
@click.option("--by-settings", is_flag=True, help="with --leaderboard: rate each model with its settings apart")
@click.option("--json", "as_json", is_flag=True, help="JSON: the leaderboard as a list; a battle as two lines")
@click.option("--a", "settings_a", multiple=True, metavar="KEY=VALUE", help="a setting for MODEL_A only")
@click.option("--b", "settings_b", multiple=True, metavar="KEY=VALUE", help="a setting for MODEL_B only")
@engine_options
@sampling_options
def arena(
    model_a: str | None,
    model_b: str | None,
    prompt: str | None,
    leaderboard: bool,
    by_settings: bool,
    as_json: bool,
    settings_a: tuple[str, ...],
    settings_b: tuple[str, ...],
    **flags: Any,
) -> None:
    """Two models (or one with two settings, e.g. --a temperature=0.2 --b preset=creative) answer PROMPT, shown
    as A and B in a random order; type a, b, t (tie) or n (both bad) and the names are shown. Votes rate the
    models: see --leaderboard. With --json, a first line has the replies, the second the names and vote."""
    from localchat.store.db import open_database

    store = open_database(paths().ensure().database)
    if leaderboard:
        if model_a is not None:
            raise click.UsageError("--leaderboard takes no models or prompt")
        print_leaderboard(store, by_settings, as_json)
        return
    if model_b is None or prompt is None:
        raise click.UsageError("give MODEL_A, MODEL_B and PROMPT (or --leaderboard)")
    if not prompt.strip():
        raise LocalchatError("the prompt is empty: give some text")
    sampling = build_sampling(flags)
    pair = (contestant(model_a, sampling, settings_a, "--a"), contestant(model_b, sampling, settings_b, "--b"))
    battle(store, pair, prompt, flags, as_json)


def contestant(ref: str, base: SamplingParams, settings: tuple[str, ...], flag: str) -> Contestant:
    from localchat.chat.arena import Contestant
    from localchat.commands.models import library, resolve_model

    sampling = side_sampling(base, settings, flag)
    path = resolve_model(ref)
    model = library().local_file(path)
    return Contestant(model.alias or model.name, path, sampling)


def side_sampling(base: SamplingParams, settings: tuple[str, ...], flag: str) -> SamplingParams:
    """The shared settings with one side's KEY=VALUE changes (preset=NAME first, then the rest)."""
    values: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not value.strip():
            raise InvalidSetting(f"{flag} {item!r}: write KEY=VALUE, e.g. {flag} temperature=0.2")
        values[key] = value.strip()
    if "preset" in values:
        name = values.pop("preset")
        if name not in PRESETS:
            raise InvalidSetting(f"{flag} preset={name}: choose one of {', '.join(PRESETS)}")
        base = PRESETS[name].with_overrides(max_tokens=base.max_tokens, seed=base.seed)
    try:
        return base.with_overrides(**{key: _number(value, f"{flag} {key}") for key, value in values.items()})
    except InvalidSetting as exc:
        raise InvalidSetting(f"{flag}: {exc.message}") from None


def _number(text: str, what: str) -> float | int:
    try:
        return parse_number(text)
    except ValueError:
        raise InvalidSetting(f"{what}={text}: not a number") from None


def battle(
    store: Store, pair: tuple[Contestant, Contestant], prompt: str, flags: dict[str, Any], as_json: bool
) -> None:
    from localchat.chat.arena import Arena, ArenaEngines, parse_vote
    from localchat.commands.models import library
    from localchat.commands.streaming import cancel_on_interrupt
    from localchat.models.manager import fits_beside_loaded

    options = build_load_options(flags)
    lib = library()
    engines = ArenaEngines(options, paths().engine_log, lambda path: fits_beside_loaded(lib, path, options.n_ctx))
    arena_ = Arena(store, engines, pair, "cli", lookup=build_lookup(None))
    printer = SidePrinter(as_json)
    try:
        round_ = arena_.start(prompt)
        with cancel_on_interrupt(engines):
            results = arena_.play(round_, printer)
    finally:
        arena_.close()
    if engines.swapping:
        click.echo("localchat: the two models do not fit in memory together: they were loaded in turn", err=True)
    if any(done.stop_reason == "cancelled" for done in results.values()):
        click.echo(f"localchat: stopped; battle {round_.battle_id} is kept without a vote", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps({"battle": round_.battle_id} | {s: side_report(results[s]) for s in "ab"}))
    if sys.stdin is not None and sys.stdin.isatty():
        sys.stderr.write(VOTE_PROMPT)
        sys.stderr.flush()
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        raise LocalchatError(f"no vote on stdin: battle {round_.battle_id} is kept without one")
    try:
        vote = parse_vote(line)
    except LocalchatError as exc:
        raise LocalchatError(f"{exc.message}: battle {round_.battle_id} is kept without a vote") from None
    arena_.vote(round_, vote)
    if as_json:
        named = {s: side_report(results[s]) | seat_report(round_.seats[s]) for s in "ab"}
        click.echo(json.dumps({"battle": round_.battle_id, "vote": vote, "first": round_.first} | named))
        return
    for side in "ab":
        seat = round_.seats[side]
        click.echo(f"{side.upper()}: {inert(seat.model)} ({seat.settings}){side_stats(results[side])}")


def side_report(done: Done) -> dict[str, Any]:
    return {
        "text": done.text,
        "stop_reason": done.stop_reason,
        "error": done.error,
        "completion_tokens": done.usage.completion_tokens,
        "decode_tok_s": done.timings.decode_tok_s,
    }


def seat_report(seat: Contestant) -> dict[str, Any]:
    return {"model": seat.model, "settings": seat.settings, "sampling": seat.sampling.to_dict()}


def side_stats(done: Done) -> str:
    if done.stop_reason == "error":
        return f" · failed: {inert(done.error or '')}"
    return f" · {done.usage.completion_tokens} tokens, {done.timings.decode_tok_s:.1f} tok/s"


class SidePrinter:
    """Each reply as it streams, under its seat's letter (the order the replies are generated in is drawn too)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json, self.side = as_json, None
        self.terminal = sys.stdout.isatty()

    def __call__(self, side: str, event: Delta | Done) -> None:
        from localchat.engine.protocol import Done

        if self.as_json:
            return
        if side != self.side:
            self.side = side
            click.echo(f"── {side.upper()} ──")
        if isinstance(event, Done):
            if event.stop_reason == "error":
                click.echo(f"(failed: {inert(event.error or '')})", nl=False)
            click.echo("\n")
            return
        sys.stdout.write(inert(event.text) if self.terminal else event.text)
        sys.stdout.flush()


def print_leaderboard(store: Store, by_settings: bool, as_json: bool) -> None:
    from localchat.chat.arena import stored_battles
    from localchat.chat.ratings import leaderboard, position_bias, table_lines

    battles = stored_battles(store, by_settings)
    table = leaderboard(battles)
    if as_json:
        click.echo(json.dumps([row_json(r) for r in table]))
        return
    if not battles:
        click.echo(NO_VOTES)
        return
    if not table:
        click.echo(f"{len(battles)} votes, all between one model's settings: see --by-settings")
        return
    for line in table_lines(table, position_bias(battles)):
        click.echo(inert(line))


def row_json(row: Rating) -> dict[str, Any]:
    return {"model": row.model, "rating": round(row.rating, 1), "votes": row.votes, "ci": [round(x, 1) for x in row.ci]}
