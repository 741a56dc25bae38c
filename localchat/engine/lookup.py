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
# How far the context's end agrees with the text before a match, in the classes the policy learns apart: the
# longer a copy has run, the likelier it runs on (SmolLM2's edit reply, 2026-12-06: a draft token was taken
# 63-77% of the time after an agreement of under 8 tokens, 95% after 8-31, every time after 32 or more).
AGREEMENT = (SHORTEST, LONGEST, 4, 8, 16, 32)


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
        """Up to `limit` tokens that followed the longest earlier match of the context's end, and how far the
        context agrees with the text there, as one of AGREEMENT (0: nothing matched, no draft). A match in a
        loop's last turn runs on into the draft itself: the loop is drafted round again."""
        tokens = self.tokens
        if limit <= 0:
            return [], 0
        for n in range(min(LONGEST, len(tokens)), SHORTEST - 1, -1):
            start = self._after.get(tuple(tokens[-n:]))
            if start is not None:
                draft = tokens[start : start + limit]
                while len(draft) < limit:  # the copy reached the context's end: it goes on as it began
                    draft.append(draft[start + len(draft) - len(tokens)])
                return draft, self._agreement(start, n)
        return [], 0

    def _agreement(self, start: int, matched: int) -> int:
        """The class of AGREEMENT of how many tokens before `start` equal the context's last ones."""
        tokens, end = self.tokens, len(self.tokens)
        length = matched
        while length < AGREEMENT[-1] and length < start and tokens[start - length - 1] == tokens[end - length - 1]:
            length += 1
        return max(a for a in AGREEMENT if a <= length)


# Before a reply has shown how wide batches cost on this machine: each row past the first adds half a one-token
# decode (2 CPU cores, SmolLM2-135M: a 2-row batch costs 1.73 of one row, then ~0.45 a row; on a GPU ~0).
PRIOR_ROW_COST = 0.5
FORGET = 0.9  # each draft's outcome weighs this much less at the next: the estimate follows copy runs and prose
RECENT = 16  # decodes of each width remembered
MARGIN = 1.05  # a draft must promise this much more than one row's yield: a miss costs more than a take gains
RELAX = 0.02  # how far an untried source drifts back to its prior at each draft it was not tried for


# The draft model's guesses (engine/draft.py) are priced as one more source beside the agreement classes.
DRAFT_MODEL = -1  # (never an agreement)
# Before its first draft, a guess of the draft model is priced at a tenth of a target decode (a 0.5B for a 7B).
PRIOR_GUESS_COST = 0.1


def context_span(context: int) -> int:
    """Which span of context lengths (under 256 tokens, then each doubling) a decode at `context` cached tokens
    is timed in. Attention over more cached tokens makes every row dearer, and by different amounts: costs timed
    over 2,000 cached tokens kept SmolLM2 from drafting at all in a short chat right after (`localchat bench`,
    2026-12-06: its prose case, run after the edit case, drafted nothing; a fresh engine drafted half of it)."""
    return max(0, context.bit_length() - 8)


class DraftPolicy:
    """How many drafted tokens pay for the wider batch that checks them. A draft of k tokens, each taken with
    probability p once the ones before it were, yields 1 + p + … + p^k tokens for the cost of a (k+1)-row decode;
    the policy picks the k with the best yield per second, and 0 (decode alone) where none beats one row. p is
    learnt per source (how far a copy agreed, lookup's AGREEMENT, or DRAFT_MODEL) from this reply's drafts, the
    costs from the machine's decodes at about the same context length (context_span)."""

    def __init__(self, step_s: dict[tuple[int, int], deque[float]] | None = None, most: int = 16) -> None:
        self.most = most
        self.drafted = 0
        self.accepted = 0
        # (context span, rows in a decode) → its recent durations: the machine's, so the runner keeps them across
        # replies
        self._step_s = step_s if step_s is not None else {}
        # context span → the cost of 0..most + 1 rows, until one of its widths' fastest decode changes: priced
        # once, not at every token (a token's budget is a few milliseconds, and the UI's share of the CPU is
        # taken from it)
        self._costs: dict[int, list[float]] = {}
        # agreement (or DRAFT_MODEL) → (tokens taken, drafts cut short): a prior that trusts long agreements
        # more, a draft token taken with a / (a + 1) (0.67 after 2 agreeing tokens, 0.80 after 4, 0.97 after 32:
        # near what SmolLM2's edit reply took, AGREEMENT; twice as trusting cost its sampled prose 1.5% in
        # drafts tried and missed before each reply had learnt better), and a draft model's guesses 0.8
        self._outcomes = {n: self._prior(n) for n in (DRAFT_MODEL, *AGREEMENT)}

    @staticmethod
    def _prior(source: int) -> list[float]:
        return [4.0 if source == DRAFT_MODEL else float(source), 1.0]

    def cost(self, rows: int, context: int = 0) -> float:
        """Seconds of a `rows`-row decode over a one-row decode's at `context` cached tokens."""
        table = self._table(context_span(context))
        return table[rows] if rows < len(table) else self._priced(context_span(context), rows)

    def _table(self, span: int) -> list[float]:
        table = self._costs.get(span)
        if table is None:
            table = self._costs[span] = [0.0] + [self._priced(span, rows) for rows in range(1, self.most + 2)]
        return table

    def _priced(self, span: int, rows: int) -> float:
        """Measured, or for a width not measured yet the cheapest cost per added row that any measured width or
        the prior has. Optimistic, so that a width that may pay is tried and then known: a line from the nearest
        width kept SmolLM2 and Gemma from ever trying wide drafts where a 3-row batch was dear (Gemma's Q4_K
        kernels take rows in pairs: 3 rows cost more than 4), and the rate of the one width tried first, where
        it was dear, kept SmolLM2 from ever drafting wide in its edit. Each width's fastest recent decode: other work on
        the machine only ever adds time, and would otherwise make one row look dear and wide batches cheap."""
        one = self._fastest(span, 1)
        if rows == 1 or not one:
            return 1.0 + PRIOR_ROW_COST * (rows - 1)
        known = self._fastest(span, rows)
        if known:
            return known / one
        slopes = [(self._fastest(span, r) / one - 1.0) / (r - 1) for s, r in self._step_s if s == span and r > 1]
        return 1.0 + min([*slopes, PRIOR_ROW_COST]) * (rows - 1)

    def _fastest(self, span: int, rows: int) -> float:
        samples = self._step_s.get((span, rows))
        return min(samples) if samples else 0.0

    def guess_cost(self, guess_s: Collection[float], context: int = 0) -> float:
        """A draft model's guess over a one-row decode of the target: its fastest recent guess's time."""
        one = self._fastest(context_span(context), 1)
        if not guess_s or not one:
            return PRIOR_GUESS_COST
        return min(guess_s) / one

    def length(self, source: int, room: int, guess_cost: float = 0.0, context: int = 0) -> int:
        """Tokens to draft from `source` at `context` cached tokens: a copy that agreed that far, or DRAFT_MODEL's
        guesses (each costing `guess_cost` of a one-row decode); at most `room`. None before one row has been
        timed at about this context length: every cost is measured against it."""
        if source < SHORTEST and source != DRAFT_MODEL:
            return 0
        span = context_span(context)
        if not self._fastest(span, 1):
            return 0
        costs = self._table(span)
        taken, cut = self._outcomes[source]
        p = taken / (taken + cut)
        best, best_ratio = 0, MARGIN
        expected, chance = 1.0, 1.0
        for k in range(1, min(room, self.most) + 1):
            chance *= p
            expected += chance
            ratio = expected / (costs[k + 1] + k * guess_cost)
            if ratio > best_ratio:
                best, best_ratio = k, ratio
        if not best:  # not drafting teaches nothing: drift back to the prior, so a copy run later is tried
            prior_taken, prior_cut = self._prior(source)
            self._outcomes[source] = [taken + (prior_taken - taken) * RELAX, cut + (prior_cut - cut) * RELAX]
        return best

    def timed(self, rows: int, seconds: float, context: int = 0) -> None:
        """A decode of `rows` rows took `seconds` at `context` cached tokens."""
        span = context_span(context)
        samples = self._step_s.setdefault((span, rows), deque(maxlen=RECENT))
        fastest = min(samples) if samples else 0.0
        samples.append(seconds)
        if min(samples) != fastest:
            self._costs.pop(span, None)

    def record(self, source: int, drafted: int, accepted: int) -> None:
        self.drafted += drafted
        self.accepted += accepted
        outcome = self._outcomes[source]
        outcome[0] = outcome[0] * FORGET + accepted
        outcome[1] = outcome[1] * FORGET + (accepted < drafted)
