"""Ratings from blind pairwise votes: a Bradley–Terry fit on the Elo scale, as Chatbot Arena ranks models.

Pure: votes in, a leaderboard out. A tie (and "both bad", which says nothing about which is better) counts as half
a win for each side. Every contestant also plays one virtual tie against a fixed 1000-rated anchor: a prior that
keeps a model that has only ever won finite, and pulls a model with few votes toward the middle. The 95% interval
is a bootstrap over the votes (resampled with a fixed seed, so the same votes give the same table).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Vote = Literal["a", "b", "tie", "bad"]
VOTES: tuple[Vote, ...] = ("a", "b", "tie", "bad")
BASE, SCALE = 1000.0, 400.0  # Elo's scale: 400 points = 10:1 odds
ANCHOR = "\0anchor"  # the virtual opponent (no real name can hold a NUL)
BOOTSTRAP_ROUNDS = 200
ITERATIONS, TOLERANCE = 10_000, 1e-10


@dataclass(frozen=True)
class Battle:
    a: str  # the contestant shown as A
    b: str
    vote: Vote


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    votes: int  # battles it was in
    ci: tuple[float, float]  # 95% bootstrap interval of the rating


def scores(vote: Vote) -> tuple[float, float]:
    """A's and B's share of one battle."""
    return {"a": (1.0, 0.0), "b": (0.0, 1.0)}.get(vote, (0.5, 0.5))


def fit(battles: Iterable[Battle]) -> dict[str, float]:
    """Each contestant's rating: the Bradley–Terry maximum (with the anchor's prior), by Hunter's MM updates."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)  # (x, y) with x < y: battles between them
    for battle in battles:
        if battle.a == battle.b:
            continue  # the same contestant on both sides tells nothing about its rating
        score_a, score_b = scores(battle.vote)
        wins[battle.a] += score_a
        wins[battle.b] += score_b
        games[tuple(sorted((battle.a, battle.b)))] += 1  # type: ignore[index]
    names = sorted({name for pair in games for name in pair})
    for name in names:
        wins[name] += 0.5  # the virtual tie with the anchor
        games[(name, ANCHOR)] += 1
    strength = dict.fromkeys(names, 1.0) | {ANCHOR: 1.0}
    opponents: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (x, y), count in games.items():
        opponents[x].append((y, count))
        opponents[y].append((x, count))
    for _ in range(ITERATIONS):
        change = 0.0
        for name in names:
            denominator = sum(count / (strength[name] + strength[other]) for other, count in opponents[name])
            new = wins[name] / denominator
            change = max(change, abs(math.log(new / strength[name])))
            strength[name] = new
        if change < TOLERANCE:
            break
    return {name: BASE + SCALE * math.log10(strength[name] / strength[ANCHOR]) for name in names}


def leaderboard(battles: Sequence[Battle], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> list[Rating]:
    """The contestants, best first, with their vote counts and 95% intervals."""
    ratings = fit(battles)
    votes: dict[str, int] = defaultdict(int)
    for battle in battles:
        for name in {battle.a, battle.b}:
            votes[name] += 1
    samples: dict[str, list[float]] = defaultdict(list)
    rng = random.Random(seed)
    for _ in range(rounds if battles else 0):
        resampled = fit(rng.choices(battles, k=len(battles)))
        for name in ratings:
            samples[name].append(resampled.get(name, BASE))  # not drawn this round: the prior's rating
    table = []
    for name, rating in ratings.items():
        drawn = sorted(samples[name]) or [rating]
        low, high = drawn[int(0.025 * (len(drawn) - 1))], drawn[math.ceil(0.975 * (len(drawn) - 1))]
        table.append(Rating(name, rating, votes[name], (min(low, rating), max(high, rating))))
    return sorted(table, key=lambda r: (-r.rating, r.model))


@dataclass(frozen=True)
class PositionBias:
    """How often the side shown as A won, of the votes that picked a side (0.5: no bias)."""

    a_wins: int
    decisive: int

    @property
    def share(self) -> float | None:
        return self.a_wins / self.decisive if self.decisive else None


def position_bias(battles: Iterable[Battle]) -> PositionBias:
    decided = [b.vote for b in battles if b.vote in ("a", "b")]
    return PositionBias(decided.count("a"), len(decided))


def table_lines(table: Sequence[Rating], bias: PositionBias) -> list[str]:
    """The leaderboard as text (the CLI prints it, the app shows it): rank, model, rating, interval, votes."""
    width = max([len("model"), *(len(r.model) for r in table)])
    lines = [f"{'rank':>4}  {'model':<{width}}  {'rating':>6}  {'95% CI':>13}  votes"]
    for rank, row in enumerate(table, 1):
        low, high = row.ci
        lines.append(f"{rank:>4}  {row.model:<{width}}  {row.rating:>6.0f}  {low:>6.0f}–{high:<6.0f}  {row.votes}")
    if bias.share is not None:
        lines.append(f"A won {bias.share:.0%} of {bias.decisive} votes that picked a side (50%: no position bias)")
    return lines
