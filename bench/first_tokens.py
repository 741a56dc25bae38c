#!/usr/bin/env python3
"""What a reply's first tokens cost beside its steady decode, in the engine's own loop (engine/generation.py),
and whether evaluating the prompt's last token apart avoids that cost.

A chat reply starts with a prompt decoded in one batch, then one-token decodes. On a GPU, llama.cpp runs a
one-token decode through a CUDA graph, kept per context under the address of the graph's first node, and captured
only once the graph has kept its shape for two decodes. A prompt batch that yields logits is built in the same
place as the one-token decodes (llama.cpp keeps one graph for batches with outputs and one for batches without),
so it could reset that graph: the first one-token decode after it would run without a graph and the second
capture it anew, in every reply, which llama-bench's tg never pays (no prompt comes before its tokens). Measured
on an H100 (2026-12-07, README "Benchmarks") it costs nothing: the first gaps are the steady ones.
Per reply, this measures the time to the first token and the gaps between tokens as they are emitted, three ways:
  batch:  the whole prompt in one batch with the last token's logits (what a chat does today);
  apart:  the prompt but its last token in a batch without logits, then the last token alone (one-token decodes
          from the first, so the one-token graph may survive the prompt);
  reused: the prompt cached, with logits, by an earlier batch; the reply decodes its last token again.
for a few-token prompt (as `localchat bench` decodes) and a long one (as llama-bench's pp512).

  bench/first_tokens.py --model M.gguf [--replies 5] [--tokens 128] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import default_model, emit, load_runner  # noqa: E402
from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.protocol import LoadOptions  # noqa: E402
from localchat.engine.runner import LlamaRunner  # noqa: E402

FIRST = 4  # the gaps reported one by one: the first decodes after the prompt
WAYS = ("batch", "apart", "reused")
FILLER = "The quick brown fox jumps over the lazy dog while the river runs past old stone bridges. "


def reply(runner: LlamaRunner, prompt: list[int], tokens: int, way: str) -> dict[str, object]:
    """One greedy reply of `tokens` tokens after `prompt`, reached `way`; times in ms."""
    runner._forget_from(0)
    started = time.perf_counter()
    if way == "apart":
        runner._decode(prompt[:-1], 0, want_logits=False)
    elif way == "reused":
        runner._decode(prompt, 0, want_logits=True)
        started = time.perf_counter()  # its prompt was evaluated before: not this reply's time
    stamps: list[float] = []
    done = runner.generate(
        prompt, SamplingParams(temperature=0.0, max_tokens=tokens), lambda text, n: stamps.append(time.perf_counter()),
        True, lookup=False, draft=False,
    )  # fmt: skip
    # The first token is emitted when the first decode after it has been launched (engine/generation.py
    # overlaps the two on a GPU): its stamp is close to the end of the prompt's evaluation.
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(stamps)]
    ttft = 1000 * (stamps[0] - started)
    return {
        "ttft_ms": round(ttft, 3),
        "first_gaps_ms": [round(g, 3) for g in gaps[:FIRST]],
        "steady_gap_ms": round(statistics.median(gaps[FIRST:]), 4),
        "reply_ms": round(1000 * (stamps[-1] - started), 3),
        "decode_tok_s": done.timings.decode_tok_s,
        "sampler": done.sampler,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--replies", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--out")
    args = parser.parse_args()
    model = args.model or default_model()
    runner = load_runner(model, LoadOptions(n_ctx=4096))
    prompts = {
        "short": lambda n: runner.prompt_tokens(f"Story {n}:"),
        "long": lambda n: runner.prompt_tokens(f"Run {n}. {FILLER * 60}")[:512],
    }
    runs = {(length, way): [] for length in prompts for way in WAYS}
    for number in range(args.replies + 1):  # the first round warms up, and is left out
        for (length, way), rows in runs.items():  # interleaved: each way sees the same machine
            row = reply(runner, prompts[length](number), args.tokens, way)
            if number:
                rows.append(row)
    summary: dict[str, object] = {"date": datetime.date.today().isoformat(), "model": Path(model).name}
    for (length, way), rows in runs.items():
        summary[f"{length}_{way}"] = {
            "prompt_tokens": len(prompts[length](0)),
            **{
                key: round(statistics.median(float(r[key]) for r in rows), 3)  # type: ignore[arg-type]
                for key in ("ttft_ms", "reply_ms", "decode_tok_s", "steady_gap_ms")
            },
            "first_gaps_ms": [
                round(statistics.median(r["first_gaps_ms"][i] for r in rows), 3)  # type: ignore[index]
                for i in range(FIRST)
            ],
            "sampler": rows[-1]["sampler"],
            "replies": rows,
        }
    runner.close()
    emit(summary, args.out)


if __name__ == "__main__":
    main()
