"""Run as a process: one reply generated with the next decode launched before the token's text is sent (what a
GPU does) and with the text sent first (the CPU's order), greedy, then each cancelled after a few tokens.
Prints one JSON line per order. (A process of its own: the test process never imports llama_cpp.)"""

from __future__ import annotations

import ctypes
import json
import sys
from dataclasses import replace
from functools import partial

import llama_cpp as ll
import numpy as np

from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
from localchat.engine.sampler import RepeatPenalty, sampler_chain, token_picker
from localchat.models.gguf import read_gguf
from tests.chat.distribution_check import token_array


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
    picks = {"greedy": greedy_picks(model), "penalised": penalised_picks(model)}
    print(json.dumps({"chain_kept": chain_kept(model), "threads": threads, **picks}))


def greedy_picks(model: str) -> dict:
    """A plain greedy reply on the CPU is picked by numpy's argmax (engine/sampler.py): at each of 48 steps of a
    reply, the token it picks against the one llama.cpp's greedy chain picks from the same logits."""
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), ctypes.create_string_buffer(2))
    greedy = SamplingParams(temperature=0)
    chain = sampler_chain(greedy, [], runner.n_vocab)
    tokens = runner.chat_tokens([ChatMessage("user", "Name three rivers and say why they matter.")])
    fast = token_picker(chain, runner.ctx, runner.n_vocab, greedy, in_graph=False, history=tokens)
    runner._decode(tokens, 0, want_logits=True)
    picks = []
    for _ in range(48):
        picked, chained = fast(-1), ll.llama_sampler_sample(chain, runner.ctx, -1)
        picks.append([picked, chained])
        runner._decode([chained], len(runner.cached), want_logits=True)
    others = [
        token_picker(chain, runner.ctx, runner.n_vocab, settings, in_graph, tokens)
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


def penalised_picks(model: str) -> dict[str, dict]:
    """With a repeat penalty the CPU's picker penalises the logits row itself (engine/sampler.py): at each of 48
    steps, its token against the one llama.cpp's whole chain (its penalties sampler included, the same seed) picks
    from the same row after it, whether the row was left as it was, and the token of the chain without a penalty."""
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), ctypes.create_string_buffer(2))
    # Longer than the 64 tokens the penalty looks back on, each of its first words once: a picker primed with
    # fewer of the prompt's tokens would leave some of them unpenalised.
    question = (
        "Here are some animals: otter, badger, heron, lynx, marten, stoat, plover, bison, ibex, tapir, quokka, "
        "dingo, gecko, newt. Now write the word 'cat' twenty times, then the word 'dog' twenty times."
    )
    tokens = runner.chat_tokens([ChatMessage("user", question)])
    result: dict = {"prompt_tokens": len(tokens), "crafted": crafted_row(runner.n_vocab)}
    for name, settings in (
        ("greedy", SamplingParams(temperature=0, repeat_penalty=1.5)),
        ("sampled", SamplingParams(temperature=0.8, repeat_penalty=1.5, seed=5)),
    ):
        runner._forget_from(0)
        runner._decode(tokens, 0, want_logits=True)
        own = sampler_chain(settings, tokens, runner.n_vocab, penalties=False)
        whole = sampler_chain(settings, tokens, runner.n_vocab)
        unpenalised = sampler_chain(replace(settings, repeat_penalty=1.0), tokens, runner.n_vocab)
        penalties_alone = sampler_chain(replace(settings, temperature=0), tokens, runner.n_vocab, pick=False)
        picker = token_picker(own, runner.ctx, runner.n_vocab, settings, in_graph=False, history=tokens)
        penalty = RepeatPenalty(settings.repeat_penalty, tokens)  # its row, beside llama.cpp's penalised one
        steps = []
        for _ in range(48):
            row = np.ctypeslib.as_array(ll.llama_get_logits_ith(runner.ctx, -1), shape=(runner.n_vocab,))
            before = row.copy()
            picked = picker(-1)
            unchanged = bool(np.array_equal(row, before))
            chained, plain = (
                ll.llama_sampler_sample(whole, runner.ctx, -1),
                ll.llama_sampler_sample(unpenalised, runner.ctx, -1),
            )
            array, theirs = token_array(np.arange(runner.n_vocab), before)
            ll.llama_sampler_apply(penalties_alone, ctypes.byref(array))
            ll.llama_sampler_accept(penalties_alone, chained)
            ours, penalised = before.copy(), []

            def as_chained(row: np.ndarray = ours, seen: list = penalised, token: int = chained) -> int:
                seen.append(row.copy())  # the row as the penalty left it for the pick
                return token

            penalty.pick(ours, as_chained)
            steps.append(
                {
                    "picked": picked,
                    "chained": chained,
                    "unpenalised": plain,
                    "row_unchanged": unchanged,
                    "same_penalised_row": bool(np.array_equal(penalised[0], theirs["logit"])),
                    "penalised_at_or_below_zero": int(np.sum((theirs["logit"] != before) & (before <= 0))),
                }
            )
            runner._decode([chained], len(runner.cached), want_logits=True)
        for chain in (own, whole, unpenalised, penalties_alone):
            ll.llama_sampler_free(chain)
        result[name] = {"steps": steps, "is_the_chain": isinstance(picker, partial)}
    runner.close()
    return result


def crafted_row(n_vocab: int) -> dict[str, bool]:
    """Logits exactly at zero (+0 and -0) and near it, on both sides, among the recent tokens: llama.cpp multiplies
    those at or below zero by the penalty and divides the rest. Whether the picker's row is llama.cpp's."""
    history = list(range(100, 180))
    row = np.random.default_rng(7).normal(0, 4, n_vocab).astype(np.float32)
    row[history[-8:]] = [0.0, -0.0, 1e-7, -1e-7, 3.25, -3.25, 1e30, -1e30]
    same = {}
    for factor in (0.75, 1.3):
        chain = sampler_chain(SamplingParams(temperature=0, repeat_penalty=factor), history, n_vocab, pick=False)
        array, theirs = token_array(np.arange(n_vocab), row)
        ll.llama_sampler_apply(chain, ctypes.byref(array))
        ll.llama_sampler_free(chain)
        ours, seen = row.copy(), []
        RepeatPenalty(factor, history).pick(ours, lambda ours=ours, seen=seen: seen.append(ours.copy()) or 0)
        # compared as bits: +0 and -0 must come out as llama.cpp leaves them too
        same[str(factor)] = seen[0].tobytes() == theirs["logit"].tobytes()
    return same


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
