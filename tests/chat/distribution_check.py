"""Run as a process: chat/distribution.py's reshaping of the stored top candidates against llama.cpp's own sampler
chain over the whole vocabulary, on the real model's logits at a few positions. Prints one JSON line per
(position, settings). (A process of its own: the test process never imports llama_cpp.)"""

from __future__ import annotations

import ctypes
import json
import math
import sys

import llama_cpp as ll
import numpy as np

from localchat.chat.distribution import Scored, reshape
from localchat.chat.sampling import PENALTY_LAST_N, SamplingParams
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
from localchat.engine.sampler import sampler_chain
from localchat.models.gguf import read_gguf

STORED = 64
SEEDS = range(40)
SETTINGS = {
    "greedy": SamplingParams(temperature=0),
    "greedy+penalty": SamplingParams(temperature=0, repeat_penalty=1.5),
    "balanced": SamplingParams(),
    "top_k=5": SamplingParams(temperature=1.0, top_k=5, top_p=1.0, min_p=0.0),
    "top_p=0.5": SamplingParams(temperature=1.0, top_k=0, top_p=0.5, min_p=0.0),
    "min_p=0.2": SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.2),
    "hot": SamplingParams(temperature=1.6, top_k=20, top_p=0.9, min_p=0.05),
    "cold+penalty": SamplingParams(temperature=0.3, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.3),
    "wide": SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0),
}


TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data


def token_array(ids: np.ndarray, logits: np.ndarray) -> tuple[ll.llama_token_data_array, np.ndarray]:
    """A llama_token_data_array over a numpy buffer (kept alive by the caller through the second value)."""
    data = np.zeros(len(ids), dtype=TOKEN_DATA)
    data["id"], data["logit"] = ids, logits
    pointer = data.ctypes.data_as(ctypes.POINTER(ll.llama_token_data))
    return ll.llama_token_data_array(pointer, len(ids), -1, False), data


def llama_survivors(row: np.ndarray, sampling: SamplingParams, history: list[int]) -> dict[int, float]:
    """llama.cpp's filters over the whole vocabulary, then the softmax the final pick draws from."""
    array, _buffer = token_array(np.arange(len(row)), row)
    chain = sampler_chain(sampling, history, len(row), pick=False)
    ll.llama_sampler_apply(chain, ctypes.byref(array))
    ll.llama_sampler_free(chain)
    kept = [(data_at(array, i).id, data_at(array, i).logit) for i in range(array.size)]
    if sampling.temperature <= 0:
        best = max(kept, key=lambda pair: pair[1])[0]
        return {best: 1.0}
    top = max(logit for _, logit in kept)
    weights = {token: math.exp(logit - top) for token, logit in kept}
    total = sum(weights.values())
    return {token: w / total for token, w in weights.items() if w / total > 1e-12}


def data_at(array: ll.llama_token_data_array, i: int) -> ll.llama_token_data:
    return array.data[i]


def llama_choice(row: np.ndarray, sampling: SamplingParams, history: list[int]) -> int:
    array, _ = token_array(np.arange(len(row)), row)
    chain = sampler_chain(sampling, history, len(row))
    ll.llama_sampler_apply(chain, ctypes.byref(array))
    ll.llama_sampler_free(chain)
    return array.data[array.selected].id


def choice_from(probabilities: dict[int, float], sampling: SamplingParams) -> int:
    """llama.cpp's own random pick (its dist sampler, this seed) over a distribution given as probabilities. It
    draws along the array as the filters left it: sorted, most likely first, after top-k or top-p; in the
    vocabulary's order when only min-p (or nothing) ran."""
    sorted_first = sampling.top_k > 0 or sampling.top_p < 1.0
    ordered = sorted(probabilities.items(), key=(lambda pair: -pair[1]) if sorted_first else (lambda pair: pair[0]))
    array, _ = token_array(np.array([t for t, _ in ordered]), np.log(np.array([p for _, p in ordered])))
    dist = ll.llama_sampler_init_dist(sampling.seed)
    ll.llama_sampler_apply(dist, ctypes.byref(array))
    ll.llama_sampler_free(dist)
    return array.data[array.selected].id


def main(model: str) -> None:
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), ctypes.create_string_buffer(2))
    prompts = ["Write a short poem about the sea.", "What is 2 + 2?", "List three colours, repeat them twice."]
    for prompt_text in prompts:
        tokens = runner.chat_tokens([ChatMessage("user", prompt_text)])
        runner._forget_from(0)
        runner._decode(tokens, 0, want_logits=True)
        for step in range(3):  # three positions: the reply's first tokens
            row = np.ctypeslib.as_array(ll.llama_get_logits_ith(runner.ctx, -1), shape=(runner.n_vocab,)).copy()
            row64 = row.astype(np.float64)
            log_total = float(row64.max() + np.log(np.exp(row64 - row64.max()).sum()))
            top = np.argsort(-row64, kind="stable")[:STORED]
            stored = [Scored(int(i), float(row[i]), float(row64[i] - log_total)) for i in top]
            history = tokens[-PENALTY_LAST_N:]
            for name, sampling in SETTINGS.items():
                shaped = reshape(stored, sampling, history)
                ours = {c.id: p for c, p in zip(stored, shaped.probabilities, strict=True) if p > 0}
                theirs = llama_survivors(row, sampling, tokens)
                seeded = [replace_seed(sampling, seed) for seed in SEEDS]
                print(
                    json.dumps(
                        {
                            "prompt": prompt_text,
                            "step": step,
                            "settings": name,
                            "exact": shaped.exact,
                            "sum": sum(shaped.probabilities),
                            "ours": len(ours),
                            "theirs": len(theirs),
                            "same_set": set(ours) == set(theirs),
                            "max_diff": max(
                                abs(ours.get(t, 0.0) - theirs.get(t, 0.0)) for t in set(ours) | set(theirs)
                            ),
                            "top_raw": stored[0].id,
                            "greedy_pick": max(ours, key=ours.get),
                            "choices_agree": sum(llama_choice(row, s, tokens) == choice_from(ours, s) for s in seeded),
                            "seeds": len(seeded),
                        }
                    )
                )
            token = int(top[0])
            tokens.append(token)
            runner._decode([token], len(tokens) - 1, want_logits=True)
    runner.close()


def replace_seed(sampling: SamplingParams, seed: int) -> SamplingParams:
    return sampling.with_overrides(seed=seed)


if __name__ == "__main__":
    main(sys.argv[1])
