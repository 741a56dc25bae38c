"""The sampler chain: how the next token is picked from the logits, in llama.cpp's own samplers (all in C)."""

from __future__ import annotations

from collections.abc import Sequence

import llama_cpp as ll

from localchat.chat.sampling import SamplingParams

PENALTY_LAST_N = 64
RANDOM_SEED = 0xFFFFFFFF


def sampler_chain(sampling: SamplingParams, history: Sequence[int], n_vocab: int) -> ll.llama_sampler_p:
    """llama.cpp's sampler chain for these settings (penalties, then greedy or top-k/top-p/min-p/temperature),
    primed with the last tokens of `history` for the repeat penalty. The caller frees it."""
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    add = ll.llama_sampler_chain_add
    if sampling.repeat_penalty != 1.0:
        add(chain, ll.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, sampling.repeat_penalty, 0.0, 0.0))
    if sampling.temperature <= 0:
        add(chain, ll.llama_sampler_init_greedy())
    else:
        if sampling.top_k > 0:
            add(chain, ll.llama_sampler_init_top_k(sampling.top_k))
        add(chain, ll.llama_sampler_init_top_p(sampling.top_p, 1))
        add(chain, ll.llama_sampler_init_min_p(sampling.min_p, 1))
        add(chain, ll.llama_sampler_init_temp(sampling.temperature))
        add(chain, ll.llama_sampler_init_dist(RANDOM_SEED if sampling.seed is None else sampling.seed))
    prime(chain, sampling, history)
    return chain


def prime(chain: ll.llama_sampler_p, sampling: SamplingParams, history: Sequence[int]) -> None:
    """Feed the repeat penalty the last tokens of `history` (a chain just made, or just reset)."""
    if sampling.repeat_penalty != 1.0:
        for token in history[-PENALTY_LAST_N:]:
            ll.llama_sampler_accept(chain, token)


def chain_key(sampling: SamplingParams) -> tuple:
    """What makes two chains the same (the reply's length does not)."""
    s = sampling
    return (s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.seed)
