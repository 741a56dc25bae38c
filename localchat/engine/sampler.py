"""The sampler chain: how the next token is picked from the logits, in llama.cpp's own samplers (all in C), and
on the CPU numpy's argmax for a greedy reply and numpy's repeat penalty over the row itself."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial

import llama_cpp as ll
import numpy as np

from localchat.chat.sampling import PENALTY_LAST_N, SamplingParams

RANDOM_SEED = 0xFFFFFFFF


def sampler_chain(
    sampling: SamplingParams, history: Sequence[int], n_vocab: int, pick: bool = True, penalties: bool = True
) -> ll.llama_sampler_p:
    """llama.cpp's sampler chain for these settings (penalties, then greedy or top-k/top-p/min-p/temperature),
    primed with the last tokens of `history` for the repeat penalty. The caller frees it. pick=False: the filters
    alone, without the final greedy or random pick (what chat/distribution.py reshapes like). penalties=False:
    without the repeat penalty, which a picker on the CPU applies itself (token_picker)."""
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    add = ll.llama_sampler_chain_add
    if penalties and sampling.repeat_penalty != 1.0:
        add(chain, ll.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, sampling.repeat_penalty, 0.0, 0.0))
    if sampling.greedy:
        if pick:
            add(chain, ll.llama_sampler_init_greedy())
    else:
        if sampling.top_k > 0:
            add(chain, ll.llama_sampler_init_top_k(sampling.top_k))
        add(chain, ll.llama_sampler_init_top_p(sampling.top_p, 1))
        add(chain, ll.llama_sampler_init_min_p(sampling.min_p, 1))
        add(chain, ll.llama_sampler_init_temp(sampling.temperature))
        if pick:
            add(chain, ll.llama_sampler_init_dist(RANDOM_SEED if sampling.seed is None else sampling.seed))
    if penalties:
        prime(chain, sampling, history)
    return chain


def json_chain(vocab: ll.llama_vocab_p, sampling: SamplingParams, n_vocab: int) -> ll.llama_sampler_p:
    """The chain for a reply that must be a JSON object (Ollama's format "json"): llama.cpp's JSON grammar first,
    which leaves only the tokens that keep the text valid JSON (and the end of generation once the object is
    closed), then the chain for these settings without its repeat penalty (the picker applies that). The caller
    frees it; the picker must sample through it (token_picker's `constrained`), never take the row's argmax."""
    from llama_cpp.llama_grammar import JSON_GBNF  # llama.cpp's grammars/json.gbnf

    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    grammar = ll.llama_sampler_init_grammar(vocab, JSON_GBNF.encode(), b"root")
    if not grammar:
        raise RuntimeError("llama.cpp did not take its own JSON grammar")
    ll.llama_sampler_chain_add(chain, grammar)
    ll.llama_sampler_chain_add(chain, sampler_chain(sampling, (), n_vocab, penalties=False))
    return chain


def prime(chain: ll.llama_sampler_p, sampling: SamplingParams, history: Sequence[int]) -> None:
    """Feed the repeat penalty the last tokens of `history` (a chain just made, or just reset)."""
    if sampling.repeat_penalty != 1.0:
        for token in history[-PENALTY_LAST_N:]:
            ll.llama_sampler_accept(chain, token)


def token_picker(
    chain: ll.llama_sampler_p,
    ctx: ll.llama_context_p,
    n_vocab: int,
    sampling: SamplingParams,
    in_graph: bool,
    history: Sequence[int],
    constrained: bool = False,
) -> Callable[[int], int]:
    """How the token at a batch row is picked. In the graph: by the chain attached there. On the CPU the chain
    comes without its repeat penalty (SamplerSlot.take) and the picker applies it, to the tokens of `history`
    (the prompt) and those it picked since; a greedy reply then takes numpy's argmax over the row. That is the
    token llama.cpp's greedy sampler picks (the first of the largest logits) in 8 µs where the chain takes 59 (it
    fills a candidate entry for each of SmolLM2's 49k tokens first; this project's 2-core AMD EPYC, 2026-12-07):
    ~1% of a token where the output layer is on the CPU. A `constrained` chain (a grammar) is always sampled
    through: its grammar must see, and accept, each token."""
    sample = partial(ll.llama_sampler_sample, chain, ctx)
    if in_graph:
        return sample
    as_array, logits_at = np.ctypeslib.as_array, ll.llama_get_logits_ith

    def argmax(row: int) -> int:
        return int(as_array(logits_at(ctx, row), shape=(n_vocab,)).argmax())

    choose = argmax if sampling.greedy and not constrained else sample
    if sampling.repeat_penalty == 1.0:
        return choose
    penalty = RepeatPenalty(sampling.repeat_penalty, history)

    def penalised(row: int) -> int:
        return penalty.pick(as_array(logits_at(ctx, row), shape=(n_vocab,)), partial(choose, row))

    return penalised


class RepeatPenalty:
    """llama.cpp's repeat penalty (its penalties sampler, without frequency or presence terms), applied to the
    logits row in place for the pick and undone after it (a log-probability reader reads the raw row). llama.cpp
    looks each of the vocabulary's candidates up among the recent tokens: 110-140 µs a token for SmolLM2's 49k,
    ~2% of its decode on this project's CPU; here it is the 64 recent tokens alone. The same float32 arithmetic,
    so the same picks."""

    def __init__(self, factor: float, history: Sequence[int]) -> None:
        self.factor = np.float32(factor)
        self.recent: deque[int] = deque(history[-PENALTY_LAST_N:], maxlen=PENALTY_LAST_N)

    def pick(self, logits: np.ndarray, choose: Callable[[], int]) -> int:
        """`choose()`'s token with the penalty applied to `logits` (the row it reads); that token is then recent."""
        ids = np.fromiter(set(self.recent), dtype=np.intp, count=-1)
        kept = logits[ids]
        logits[ids] = np.where(kept <= 0, kept * self.factor, kept / self.factor)
        try:
            token = choose()
        finally:
            logits[ids] = kept
        self.recent.append(token)
        return token


def chain_key(sampling: SamplingParams) -> tuple:
    """What makes two chains the same (the reply's length does not; nor, for a greedy chain, the seed and the
    filters, which it does not have: a greedy prompt with a seed then keeps the chain a greedy reply attached)."""
    s = sampling
    if s.greedy:
        return ("greedy", s.repeat_penalty)
    return (s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.seed)


class SamplerSlot:
    """The chain for each reply. Where sampling runs in llama.cpp's graph (`in_graph`), the chain attached to the
    context is kept while the settings stay the same: attaching one makes llama.cpp re-plan its graph (measured on
    an H200: a 512-token prompt at 0.55 of llama-bench's speed when it was attached anew for each reply)."""

    def __init__(self, ctx: ll.llama_context_p, n_vocab: int, in_graph: bool) -> None:
        self.ctx = ctx
        self.n_vocab = n_vocab
        self.in_graph = in_graph
        self._attached: tuple[tuple, ll.llama_sampler_p] | None = None

    def take(
        self, sampling: SamplingParams, history: Sequence[int], allow_graph: bool = True
    ) -> tuple[ll.llama_sampler_p, bool]:
        """The chain for this reply, and whether it runs in the graph (then it is the attached one, reset)."""
        key = chain_key(sampling)
        if not allow_graph:
            self.close()
        elif self.in_graph and self._attached is not None and self._attached[0] == key:
            chain = self._attached[1]
            ll.llama_sampler_reset(chain)  # the penalty's history and the seed's random state start again
            prime(chain, sampling, history)
            return chain, True
        if not self.in_graph or not allow_graph:  # the picker applies the repeat penalty (token_picker)
            return sampler_chain(sampling, history, self.n_vocab, penalties=False), False
        chain = sampler_chain(sampling, history, self.n_vocab)
        self.close()
        if not ll.llama_set_sampler(self.ctx, 0, chain):  # llama.cpp cannot run this chain in the graph here
            ll.llama_sampler_free(chain)
            return sampler_chain(sampling, history, self.n_vocab, penalties=False), False
        self._attached = (key, chain)
        return chain, True

    def give_back(self, chain: ll.llama_sampler_p, in_graph: bool) -> None:
        if not in_graph:  # an attached chain stays for the next reply
            ll.llama_sampler_free(chain)

    def close(self) -> None:
        """Detach and free the attached chain (detached first: the context holds the pointer)."""
        if self._attached is not None:
            ll.llama_set_sampler(self.ctx, 0, None)
            ll.llama_sampler_free(self._attached[1])
            self._attached = None
