"""The next-token distribution as the sampler chain reshapes it, computed from stored candidates: no model call.

The engine stores, at each position of a reply, the N likeliest tokens with their logits and raw probabilities
(softmax over the whole vocabulary). `reshape` runs the chain engine/sampler.py builds in llama.cpp — repeat
penalty, then greedy, or top-k, top-p, min-p and temperature, in that order — over those N. Where the chain keeps
tokens beyond the N (a wide top-p on a flat distribution), the mass of the unseen rest is counted in the sums and
the result says it is not exact.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from localchat.chat.sampling import SamplingParams


class Candidate(Protocol):
    """One candidate for the next token: its id, the model's logit, and its raw log-probability (the engine's
    protocol.Candidate is one)."""

    @property
    def id(self) -> int: ...

    @property
    def logit(self) -> float: ...

    @property
    def logprob(self) -> float: ...


@dataclass(frozen=True)
class Scored:
    """A candidate made by hand (tests, the llama.cpp comparison)."""

    id: int
    logit: float
    logprob: float


@dataclass(frozen=True)
class Shaped:
    """Each stored candidate's probability after the chain (0: filtered out), in the order given."""

    probabilities: tuple[float, ...]
    exact: bool  # False: the chain keeps tokens beyond the stored ones, whose exact mass is unknown here


def penalised(logit: float, penalty: float) -> float:
    """llama.cpp's repeat penalty: a positive logit is divided by it, a negative one multiplied."""
    return logit / penalty if logit > 0 else logit * penalty


def reshape(candidates: Sequence[Candidate], sampling: SamplingParams, recent: Collection[int] = ()) -> Shaped:
    """The chain's distribution over `candidates` (the likeliest tokens, most likely first, as the engine stores
    them). `recent`: the tokens the repeat penalty looks back on (the last 64 of prompt and reply)."""
    if not candidates:
        return Shaped((), True)
    recent = set(recent) if sampling.repeat_penalty != 1.0 else set()
    logits = [penalised(c.logit, sampling.repeat_penalty) if c.id in recent else c.logit for c in candidates]
    # The raw probabilities are over the whole vocabulary: what the stored ones leave is the unseen tail.
    shift = candidates[0].logit - candidates[0].logprob  # log of the softmax's denominator over the vocabulary
    tail = max(0.0, 1.0 - sum(math.exp(c.logprob) for c in candidates))  # raw probability of the rest
    smallest = min(math.exp(c.logprob) for c in candidates)  # no unseen token is likelier than this one
    order = sorted(range(len(candidates)), key=lambda i: -logits[i])
    if sampling.greedy:
        result = [0.0] * len(candidates)
        result[order[0]] = 1.0
        # An unseen token cannot win: the stored ones are the likeliest (a penalty can only lower them so far).
        return Shaped(tuple(result), logits[order[0]] - shift >= math.log(smallest) or not recent)
    unseen = len(order) if sampling.top_k <= 0 else max(0, sampling.top_k - len(order))
    kept = order[: sampling.top_k] if sampling.top_k > 0 else order
    # Raw mass of the unseen tokens still in the running: all of the tail, or at most top_k - N of them.
    tail_mass = tail if sampling.top_k <= 0 else min(tail, unseen * smallest)
    exact = True

    def probabilities(indices: list[int], temperature: float, rest: float) -> list[float]:
        """Softmax at `temperature` over `indices`, with `rest` of raw mass beside them (scaled likewise)."""
        top = max(logits[i] for i in indices) / temperature
        weights = [math.exp(logits[i] / temperature - top) for i in indices]
        rest_weight = 0.0
        if rest > 0:  # the tail's raw mass, as a weight at this temperature (a bound: its tokens are smaller)
            rest_weight = math.exp((math.log(rest) + shift) / temperature - top)
        total = sum(weights) + rest_weight
        return [w / total for w in weights]

    if sampling.top_p < 1.0:  # the smallest set, most likely first, whose probability reaches top_p
        cumulative, cut = 0.0, len(kept)
        for position, p in enumerate(probabilities(kept, 1.0, tail_mass)):
            cumulative += p
            if cumulative >= sampling.top_p:
                cut = position + 1
                break
        else:
            exact = exact and tail_mass == 0.0  # the set reaches past the stored candidates
        if cut < len(kept):
            tail_mass = 0.0
        kept = kept[:cut]
    if sampling.min_p > 0.0 and kept:  # what is below min_p × the top's probability goes
        floor = logits[kept[0]] + math.log(sampling.min_p)
        kept = [i for i in kept if logits[i] >= floor]
        if tail_mass > 0 and math.log(smallest) + shift < floor:
            tail_mass = 0.0  # every unseen token is below the floor
    if tail_mass > 0:
        exact = False
    result = [0.0] * len(candidates)
    for index, p in zip(kept, probabilities(kept, sampling.temperature, tail_mass), strict=True):
        result[index] = p
    return Shaped(tuple(result), exact)
