"""The sampler chain: how the next token is picked from the logits, in llama.cpp's own samplers (all in C), and
numpy's argmax for a plain greedy reply on the CPU."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import llama_cpp as ll
import numpy as np

from localchat.chat.sampling import PENALTY_LAST_N, SamplingParams

RANDOM_SEED = 0xFFFFFFFF


def sampler_chain(
    sampling: SamplingParams, history: Sequence[int], n_vocab: int, pick: bool = True
) -> ll.llama_sampler_p:
    """llama.cpp's sampler chain for these settings (penalties, then greedy or top-k/top-p/min-p/temperature),
    primed with the last tokens of `history` for the repeat penalty. The caller frees it. pick=False: the filters
    alone, without the final greedy or random pick (what chat/distribution.py reshapes like)."""
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    add = ll.llama_sampler_chain_add
    if sampling.repeat_penalty != 1.0:
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
    prime(chain, sampling, history)
    return chain


def prime(chain: ll.llama_sampler_p, sampling: SamplingParams, history: Sequence[int]) -> None:
    """Feed the repeat penalty the last tokens of `history` (a chain just made, or just reset)."""
    if sampling.repeat_penalty != 1.0:
        for token in history[-PENALTY_LAST_N:]:
            ll.llama_sampler_accept(chain, token)


def token_picker(
    chain: ll.llama_sampler_p, ctx: ll.llama_context_p, n_vocab: int, sampling: SamplingParams, in_graph: bool
) -> Callable[[int], int]:
    """How the token at a batch row is picked: by the chain, or for a plain greedy reply sampled on the CPU, by
    numpy's argmax over the row's logits. That is the token llama.cpp's greedy sampler picks (the first of the
    largest logits) in 8 µs where the chain takes 59 (it fills a candidate entry for each of SmolLM2's 49k tokens
    first; this project's 2-core AMD EPYC, 2026-12-07): ~1% of a token where the output layer is on the CPU."""
    if in_graph or not sampling.greedy or sampling.repeat_penalty != 1.0:
        return partial(ll.llama_sampler_sample, chain, ctx)
    as_array, logits_at = np.ctypeslib.as_array, ll.llama_get_logits_ith

    def argmax(row: int) -> int:
        return int(as_array(logits_at(ctx, row), shape=(n_vocab,)).argmax())

    return argmax


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
        chain = sampler_chain(sampling, history, self.n_vocab)
        if not self.in_graph or not allow_graph:
            return chain, False
        self.close()
        if not ll.llama_set_sampler(self.ctx, 0, chain):  # llama.cpp cannot run this chain in the graph here
            return chain, False
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
