"""The arena: each message goes to two contestants (two models, or one model with two sampling settings), shown as
A and B in an order drawn afresh for every message; the vote is stored with who sat where, so ratings
(chat/ratings.py) and position bias can be read from the database.

On a machine with few cores the two replies are generated one after the other (in an order drawn too), each on its
contestant's own engine process when both models fit in memory together, else on one engine that swaps them.
Blocking calls: the TUI runs them in a worker thread.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from localchat.chat.context import UNKNOWN_CONTEXT, plan_to_fit
from localchat.chat.ratings import VOTES, Battle, Vote
from localchat.chat.sampling import PRESETS, SamplingParams
from localchat.chat.session import reply_stats
from localchat.engine.client import EngineClient
from localchat.engine.protocol import (
    ChatMessage,
    Delta,
    Done,
    Generate,
    LoadOptions,
    StopReason,
    Timings,
    Usage,
)
from localchat.errors import LoadCancelled, LocalchatError
from localchat.store.db import Conversation, NewBattle, Store

Side = str  # "a" or "b"
SIDES: tuple[Side, Side] = ("a", "b")
VOTE_KEYS: dict[str, Vote] = {"a": "a", "b": "b", "t": "tie", "tie": "tie", "n": "bad", "bad": "bad"}
SEED_RANGE = 2**32 - 1  # SamplingParams' seeds: 0 .. 2**32 - 2


@dataclass(frozen=True)
class Contestant:
    model: str  # the name rated, and shown once the vote is in
    path: Path
    sampling: SamplingParams

    @property
    def settings(self) -> str:
        return settings_label(self.sampling)

    @property
    def key(self) -> str:
        """What the per-settings leaderboard rates: the model with its settings."""
        return f"{self.model} ({self.settings})"


def settings_label(sampling: SamplingParams | dict) -> str:
    """A preset's name when the settings are one (whatever the seed and length), else their summary."""
    if isinstance(sampling, dict):
        sampling = SamplingParams().with_overrides(**sampling)
    plain = replace(sampling, seed=None, max_tokens=SamplingParams.max_tokens)
    named = [name for name, params in PRESETS.items() if params == plain]
    return named[0] if named else plain.summary()


def parse_vote(text: str) -> Vote:
    vote = VOTE_KEYS.get(text.strip().lower())
    if vote is None:
        raise LocalchatError(f"the vote {text.strip()!r} is not one of a, b, t (tie), n (both bad)")
    return vote


@dataclass(frozen=True)
class Round:
    """One message's battle: who sits at A and B, which goes first, and what both are sent."""

    battle_id: int
    seats: dict[Side, Contestant]  # each with its own seed
    first: Side
    messages: tuple[ChatMessage, ...]  # [system] + history + the prompt

    @property
    def order(self) -> tuple[Side, Side]:
        return (self.first, "b" if self.first == "a" else "a")


class ArenaEngines:
    """The contestants' engines: one process per model when both fit in memory together (asked once the first is
    loaded: `fits_beside`), else one process that loads each model in turn. One model with two settings: one."""

    def __init__(
        self,
        options: LoadOptions,
        log_path: Path | None,
        fits_beside: Callable[[Path], bool],
        progress: Callable[[str, float], None] | None = None,  # (model, fraction) while one loads
    ) -> None:
        self.options, self.log_path = options, log_path
        self.fits_beside, self.progress = fits_beside, progress
        self.engines: list[EngineClient] = []
        self.loaded: dict[int, Path] = {}  # engine index -> the model it holds
        self.swapping = False  # the two did not fit together: one engine takes turns

    def engine_for(self, contestant: Contestant) -> EngineClient:
        for index, path in self.loaded.items():
            if path == contestant.path:
                return self.engines[index]
        if not self.engines or (not self.swapping and len(self.engines) == 1 and self._second_fits(contestant)):
            self.engines.append(EngineClient(self.log_path))
        index = len(self.engines) - 1
        engine = self.engines[index]
        self.loaded.pop(index, None)
        report = (lambda f: self.progress(contestant.model, f)) if self.progress else None
        engine.load(contestant.path, self.options, report, reset_cancel=False)
        self.loaded[index] = contestant.path
        return engine

    def _second_fits(self, contestant: Contestant) -> bool:
        self.swapping = not self.fits_beside(contestant.path)
        return not self.swapping

    def cancel(self) -> None:
        for engine in self.engines:
            engine.cancel()

    def reset_cancel(self) -> None:
        for engine in self.engines:
            engine.reset_cancel()

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


class Arena:
    """Rounds between one pair of contestants, stored as battles in `store` (from `source`: app or cli)."""

    def __init__(
        self,
        store: Store,
        engines: ArenaEngines,
        pair: tuple[Contestant, Contestant],
        source: str,
        rng: random.Random | None = None,
        lookup: bool = True,
    ) -> None:
        self.store, self.engines, self.pair, self.source = store, engines, pair, source
        self.rng = rng or random.SystemRandom()
        self.lookup = lookup
        self.dropped: dict[Side, int] = {}  # the last round's oldest messages left out to fit, per side (said)

    def start(self, prompt: str, history: Sequence[ChatMessage] = ()) -> Round:
        """Seat the pair in a fresh random order, each with its own seed, and store the battle (no vote yet)."""
        if not prompt.strip():
            raise LocalchatError("the prompt is empty: give some text")
        seats = list(self.pair)
        self.rng.shuffle(seats)
        seeds = self.rng.sample(range(SEED_RANGE), 2)  # never one seed for both: the same model would echo itself
        a, b = (replace(c, sampling=replace(c.sampling, seed=s)) for c, s in zip(seats, seeds, strict=True))
        first: Side = self.rng.choice(SIDES)
        messages = (*history, ChatMessage("user", prompt))
        earlier = [{"role": m.role, "content": m.content} for m in history]
        battle = NewBattle(
            prompt, earlier, a.model, a.sampling.to_dict(), b.model, b.sampling.to_dict(), first, self.source
        )
        return Round(self.store.add_battle(battle), {"a": a, "b": b}, first, messages)

    def play(self, round_: Round, on_event: Callable[[Side, Delta | Done], None]) -> dict[Side, Done]:
        """Both replies, in the round's order; each stored as it ends (a stop keeps what came, and ends the round)."""
        results: dict[Side, Done] = {}
        self.engines.reset_cancel()
        self.dropped = {}
        for side in round_.order:
            done = self._reply(round_, side, on_event)
            results[side] = done
            stats = reply_stats(done, round_.seats[side].model)
            if self.dropped.get(side):
                stats["dropped_messages"] = self.dropped[side]
            self.store.save_battle_reply(round_.battle_id, side, done.text, stats)
            on_event(side, done)
            if done.stop_reason == "cancelled":
                break
        return results

    def _reply(self, round_: Round, side: Side, on_event: Callable[[Side, Delta | Done], None]) -> Done:
        contestant = round_.seats[side]
        parts: list[str] = []
        try:
            engine = self.engines.engine_for(contestant)
            n_ctx = engine.model.n_ctx or UNKNOWN_CONTEXT
            plan = plan_to_fit(round_.messages, engine.measure, n_ctx, contestant.sampling.max_tokens)
            self.dropped[side] = len(plan.dropped)
            request = Generate(plan.messages, sampling=contestant.sampling, lookup=self.lookup)
            for event in engine.generate(request, reset_cancel=False):
                if isinstance(event, Done):
                    return event
                parts.append(event.text)
                on_event(side, event)
        except LoadCancelled:
            return failed("".join(parts), "stopped while loading", "cancelled")
        except LocalchatError as exc:
            return failed("".join(parts), exc.message)
        return failed("".join(parts), "the engine ended the reply without a result")

    def vote(self, round_: Round, vote: Vote) -> None:
        if vote not in VOTES:
            raise LocalchatError(f"the vote {vote!r} is not one of {', '.join(VOTES)}")
        self.store.vote_battle(round_.battle_id, vote)

    def stop(self) -> None:
        self.engines.cancel()

    def close(self) -> None:
        self.engines.close()


def dropped_note(dropped: dict[Side, int]) -> str | None:
    """What to say when a side's context window could not hold the whole chat (never left out silently)."""
    most = max(dropped.values(), default=0)
    return f"left out the {most} oldest messages to fit a context window" if most else None


def winner_history(round_: Round, vote: Vote, results: dict[Side, Done]) -> tuple[ChatMessage, ...]:
    """What the next message is sent with: the winner's reply (A's on a tie); after "both bad", the round is left
    out, prompt and all, so no model is shown a bad answer as its own."""
    if vote == "bad":
        return round_.messages[:-1]
    side = "b" if vote == "b" else "a"
    return (*round_.messages, ChatMessage("assistant", results[side].text))


def save_as_chat(store: Store, winner: Contestant, history: Sequence[ChatMessage]) -> Conversation:
    """The arena's chat as a chat of its own, to go on with the winner: its replies stored as the winner's, its
    settings kept without the seed the arena drew for its seat (a fixed seed would repeat itself)."""
    first = next((m.content for m in history if m.role == "user"), "Arena")
    chat = store.create_conversation(title=f"Arena: {' '.join(first.split())[:40]}")
    store.update_conversation(chat.id, sampling=winner.sampling.to_dict() | {"seed": None})
    parent = None
    for said in history:
        model = winner.model if said.role == "assistant" else None
        parent = store.add_message(chat.id, said.role, said.content, parent, model=model).id
    return chat


def failed(text: str, error: str, stop_reason: StopReason = "error") -> Done:
    return Done(stop_reason, text, Usage(0, 0, 0), Timings(0, 0, 0, 0, 0), error=error)


def stored_battles(store: Store, by_settings: bool = False) -> list[Battle]:
    """The voted battles as the ratings read them: per model, or per model with its settings."""

    def name(row: dict, side: Side) -> str:
        model = row[f"model_{side}"]
        return f"{model} ({settings_label(row[f'settings_{side}'])})" if by_settings else model

    return [Battle(name(row, "a"), name(row, "b"), row["vote"]) for row in store.battles()]
