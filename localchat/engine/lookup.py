"""Prompt-lookup drafting: guesses for the next tokens copied from earlier in the context (no second model).

A reply that repeats text the conversation holds ("return it with the function renamed") continues as it did
there: where the last few tokens occurred before, the tokens that followed them are a draft the model verifies
in one batch (engine/runner.py). Pure Python over token ids; a few dictionary operations per token.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence

# The n-gram lengths matched, longest first: a match on 3 tokens is rarely a coincidence, on 2 often is.
LONGEST, SHORTEST = 3, 2


class PromptLookup:
    """The context's tokens and, for each n-gram in it, where its latest earlier occurrence was followed."""

    def __init__(self, tokens: Sequence[int]) -> None:
        self.tokens = list(tokens)
        # n-gram (a tuple of LONGEST or fewer tokens) → the position of the token that followed it last time
        self._after: dict[tuple[int, ...], int] = {}
        for end in range(SHORTEST, len(self.tokens)):
            self._index(end)

    def _index(self, end: int) -> None:
        """Index the n-grams that end just before position `end` (each was followed by tokens[end])."""
        tokens = self.tokens
        for n in range(SHORTEST, min(LONGEST, end) + 1):
            self._after[tuple(tokens[end - n : end])] = end

    def append(self, token: int) -> None:
        self.tokens.append(token)
        self._index(len(self.tokens) - 1)

    def draft(self, limit: int) -> tuple[list[int], int]:
        """Up to `limit` tokens that followed the longest earlier match of the context's end, and the length of
        that match (0: nothing matched, no draft)."""
        tokens = self.tokens
        if limit <= 0:
            return [], 0
        for n in range(min(LONGEST, len(tokens)), SHORTEST - 1, -1):
            start = self._after.get(tuple(tokens[-n:]))
            if start is not None:
                return tokens[start : start + limit], n
        return [], 0


# Before a reply has shown how wide batches cost on this machine: each row past the first adds half a one-token
# decode (2 CPU cores, SmolLM2-135M: a 2-row batch costs 1.73 of one row, then ~0.45 a row; on a GPU ~0).
PRIOR_ROW_COST = 0.5
FORGET = 0.9  # each draft's outcome weighs this much less at the next: the estimate follows copy runs and prose
RECENT = 16  # decodes of each width remembered
MARGIN = 1.05  # a draft must promise this much more than one row's yield: a miss costs more than a take gains
RELAX = 0.02  # how far an untried match length drifts back to its prior at each match it was not tried on


# The draft model's guesses (engine/draft.py) are priced as one more source beside the match lengths.
DRAFT_MODEL = -1  # (never a match length)
# Before its first draft, a guess of the draft model is priced at a tenth of a target decode (a 0.5B for a 7B).
PRIOR_GUESS_COST = 0.1


class DraftPolicy:
    """How many drafted tokens pay for the wider batch that checks them. A draft of k tokens, each taken with
    probability p once the ones before it were, yields 1 + p + … + p^k tokens for the cost of a (k+1)-row decode;
    the policy picks the k with the best yield per second, and 0 (decode alone) where none beats one row. p is
    learnt per match length from this reply's drafts, the costs from its own decodes."""

    def __init__(self, step_s: dict[int, deque[float]] | None = None, most: int = 16) -> None:
        self.most = most
        self.drafted = 0
        self.accepted = 0
        # rows in a decode → its recent durations: the machine's, so the runner keeps them across replies
        self._step_s = step_s if step_s is not None else {}
        # match length (or DRAFT_MODEL) → (tokens taken, drafts cut short): a prior that trusts long matches
        # more, and a draft model's guesses as much as a 2-token match
        self._outcomes = {n: self._prior(n) for n in (DRAFT_MODEL, *range(SHORTEST, LONGEST + 1))}

    @staticmethod
    def _prior(match: int) -> list[float]:
        return [2.0 * (SHORTEST if match == DRAFT_MODEL else match), 1.0]

    def cost(self, rows: int) -> float:
        """Seconds of a `rows`-row decode over a one-row decode's: measured, or drawn from the nearest measured
        width (a line through one row's cost), or the prior. Each width's fastest recent decode: other work on
        the machine only ever adds time, and would otherwise make one row look dear and wide batches cheap."""
        one = self._fastest(1)
        if rows == 1 or not one:
            return 1.0 + PRIOR_ROW_COST * (rows - 1)
        known = self._fastest(rows)
        if known:
            return known / one
        wider = [r for r in self._step_s if r > 1]
        if not wider:
            return 1.0 + PRIOR_ROW_COST * (rows - 1)
        nearest = min(wider, key=lambda r: abs(r - rows))
        return 1.0 + (self._fastest(nearest) / one - 1.0) * (rows - 1) / (nearest - 1)

    def _fastest(self, rows: int) -> float:
        samples = self._step_s.get(rows)
        return min(samples) if samples else 0.0

    def guess_cost(self, guess_s: Collection[float]) -> float:
        """A draft model's guess over a one-row decode of the target: its fastest recent guess's time."""
        one = self._fastest(1)
        if not guess_s or not one:
            return PRIOR_GUESS_COST
        return min(guess_s) / one

    def length(self, match: int, room: int, guess_cost: float = 0.0) -> int:
        """Tokens to draft after a match of `match` tokens (or DRAFT_MODEL's guesses, each costing `guess_cost`
        of a one-row decode), at most `room`."""
        if match < SHORTEST and match != DRAFT_MODEL:
            return 0
        taken, cut = self._outcomes[match]
        p = taken / (taken + cut)
        best, best_ratio = 0, MARGIN
        expected, chance = 1.0, 1.0
        for k in range(1, min(room, self.most) + 1):
            chance *= p
            expected += chance
            ratio = expected / (self.cost(k + 1) + k * guess_cost)
            if ratio > best_ratio:
                best, best_ratio = k, ratio
        if not best:  # not drafting teaches nothing: drift back to the prior, so a copy run later is tried
            taken, cut = self._outcomes[match]
            prior_taken, prior_cut = self._prior(match)
            self._outcomes[match] = [taken + (prior_taken - taken) * RELAX, cut + (prior_cut - cut) * RELAX]
        return best

    def timed(self, rows: int, seconds: float) -> None:
        self._step_s.setdefault(rows, deque(maxlen=RECENT)).append(seconds)

    def record(self, match: int, drafted: int, accepted: int) -> None:
        self.drafted += drafted
        self.accepted += accepted
        outcome = self._outcomes[match]
        outcome[0] = outcome[0] * FORGET + accepted
        outcome[1] = outcome[1] * FORGET + (accepted < drafted)
