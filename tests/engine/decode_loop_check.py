"""Run as a process: one reply generated with the next decode launched before the token's text is sent (what a
GPU does) and with the text sent first (the CPU's order), greedy, then each cancelled after a few tokens.
Prints one JSON line per order. (A process of its own: the test process never imports llama_cpp.)"""

from __future__ import annotations

import ctypes
import json
import sys
from functools import partial

import llama_cpp as ll

from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
from localchat.engine.sampler import sampler_chain, token_picker
from localchat.models.gguf import read_gguf


def main(model: str) -> None:
    abort_flag = ctypes.create_string_buffer(2)
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), abort_flag)
    prompt = runner.chat_tokens([ChatMessage("user", "Write a short poem about the sea.")])
    for overlap in (False, True):
        runner.overlap_decode = overlap
        runner._forget_from(0)
        emitted: list[str] = []
        greedy = SamplingParams(temperature=0, max_tokens=40)
        full = runner.generate(prompt, greedy, lambda t, n, out=emitted: out.append(t))
        full_cached = list(runner.cached)

        cancelled: list[str] = []

        def cancel_after_five(text: str, count: int, out: list[str] = cancelled) -> None:
            out.append(text)
            if count == 5:
                abort_flag[0] = b"\1"

        runner._forget_from(0)
        stopped = runner.generate(prompt, greedy, cancel_after_five)
        abort_flag[0] = b"\0"
        print(
            json.dumps(
                {
                    "overlap": overlap,
                    "text": full.text,
                    "emitted": "".join(emitted),
                    "stop_reason": full.stop_reason,
                    "completion": full.usage.completion_tokens,
                    "cached_is_prompt_then_reply": full_cached[: len(prompt)] == prompt,
                    "cached_reply_tokens": len(full_cached) - len(prompt),
                    "cancelled_text": stopped.text,
                    "cancelled_emitted": "".join(cancelled),
                    "cancelled_reason": stopped.stop_reason,
                    "cancelled_completion": stopped.usage.completion_tokens,
                    "cancelled_cached_prefix": runner.cached[: len(prompt)] == prompt,
                    "cancelled_cached_reply_tokens": len(runner.cached) - len(prompt),
                }
            )
        )
    # On the CPU every layer runs there: a one-token decode gets every thread, as a prompt does.
    threads = {"set": runner.info.threads, "decode": ll.llama_n_threads(runner.ctx)}
    threads["prompt"] = ll.llama_n_threads_batch(runner.ctx)
    runner.close()
    print(json.dumps({"chain_kept": chain_kept(model), "threads": threads, "greedy": greedy_picks(model)}))


def greedy_picks(model: str) -> dict:
    """A plain greedy reply on the CPU is picked by numpy's argmax (engine/sampler.py): at each of 48 steps of a
    reply, the token it picks against the one llama.cpp's greedy chain picks from the same logits."""
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), ctypes.create_string_buffer(2))
    greedy = SamplingParams(temperature=0)
    chain = sampler_chain(greedy, [], runner.n_vocab)
    fast = token_picker(chain, runner.ctx, runner.n_vocab, greedy, in_graph=False)
    tokens = runner.chat_tokens([ChatMessage("user", "Name three rivers and say why they matter.")])
    runner._decode(tokens, 0, want_logits=True)
    picks = []
    for _ in range(48):
        picked, chained = fast(-1), ll.llama_sampler_sample(chain, runner.ctx, -1)
        picks.append([picked, chained])
        runner._decode([chained], len(runner.cached), want_logits=True)
    others = [
        token_picker(chain, runner.ctx, runner.n_vocab, settings, in_graph)
        for settings, in_graph in (
            (greedy, True),
            (SamplingParams(temperature=0.7), False),
            (SamplingParams(temperature=0, repeat_penalty=1.1), False),
        )
    ]
    ll.llama_sampler_free(chain)
    runner.close()
    return {
        "picks": picks,
        "fast_is_the_chain": isinstance(fast, partial),
        "others_are_the_chain": [isinstance(other, partial) for other in others],
    }


def chain_kept(model: str) -> list[bool]:
    """With sampling in the graph, whether each reply kept the chain attached by the one before (attaching another
    makes llama.cpp plan its graph again: a GPU's prompt ran at 0.55 of llama-bench's speed so)."""
    runner = LlamaRunner(
        read_gguf(model), LoadOptions(n_ctx=512, backend_sampling=True), ctypes.create_string_buffer(2)
    )
    prompt = runner.chat_tokens([ChatMessage("user", "Hi")])
    kept, previous = [], None
    for settings in (
        SamplingParams(temperature=0, max_tokens=2, seed=1),
        SamplingParams(temperature=0, max_tokens=2),  # greedy has no seed: the same chain
        SamplingParams(temperature=0, max_tokens=2, top_k=5),  # nor filters
        SamplingParams(temperature=0.7, max_tokens=2, seed=3),  # another chain
        SamplingParams(temperature=0.7, max_tokens=2, seed=3),
        SamplingParams(temperature=0.7, max_tokens=2, seed=4),
    ):
        runner.generate(prompt, settings, lambda t, n: None)
        attached = runner.samplers._attached
        chain = attached[1] if attached else None
        kept.append(chain is not None and previous is not None and ctypes.addressof(chain.contents) == previous)
        previous = ctypes.addressof(chain.contents) if chain else None
    runner.close()
    return kept


if __name__ == "__main__":
    main(sys.argv[1])
