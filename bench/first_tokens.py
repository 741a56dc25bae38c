#!/usr/bin/env python3
"""What a reply's first tokens cost beside its steady decode, in the engine's own loop (engine/generation.py).

A chat reply starts with a prompt decoded in one batch, then one-token decodes. On a GPU, llama.cpp runs a
one-token decode through a CUDA graph that it captures once the graph's shape has held for two decodes: after a
batch the shape has changed, so the first one-token decode runs without a graph and the second captures it anew,
in every reply. llama-bench's tg never pays that (no prompt comes before its tokens). This measures, per reply,
the time between the tokens as they are emitted: after a fresh prompt of a few tokens (as `localchat bench`
decodes and as a chat does) and after a prompt whose cache is reused up to its last token (a one-token decode,
the same shape as the decodes after it).

  bench/first_tokens.py --model M.gguf [--replies 7] [--tokens 128] [--out FILE]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import itertools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import default_model, emit  # noqa: E402
from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.protocol import LoadOptions  # noqa: E402
from localchat.engine.runner import LlamaRunner  # noqa: E402
from localchat.engine.worker import _silence_llama_logs  # noqa: E402
from localchat.models.gguf import read_gguf  # noqa: E402

FIRST = 4  # the gaps reported one by one: the first decodes after the prompt


def reply(runner: LlamaRunner, prompt: list[int], tokens: int, reuse: bool) -> dict[str, object]:
    """One greedy reply of `tokens` tokens; the gaps between emitted tokens (ms)."""
    runner._forget_from(len(prompt) - 1 if reuse else 0)
    stamps: list[float] = []
    done = runner.generate(
        prompt, SamplingParams(temperature=0.0, max_tokens=tokens), lambda text, n: stamps.append(time.perf_counter()),
        True, lookup=False, draft=False,
    )  # fmt: skip
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(stamps)]
    return {
        "first_gaps_ms": [round(g, 3) for g in gaps[:FIRST]],
        "steady_gap_ms": statistics.median(gaps[FIRST:]),
        "decode_tok_s": done.timings.decode_tok_s,
        "sampler": done.sampler,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--replies", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--out")
    args = parser.parse_args()
    model = args.model or default_model()
    _silence_llama_logs()
    runner = LlamaRunner(read_gguf(Path(model)), LoadOptions(n_ctx=4096), ctypes.create_string_buffer(2))
    runs: dict[str, list[dict[str, object]]] = {"fresh_prompt": [], "reused_prompt": []}
    for number in range(args.replies + 1):  # the first of each kind warms up, and is left out
        prompt = runner.prompt_tokens(f"Story {number}:")
        for kind, reuse in (("fresh_prompt", False), ("reused_prompt", True)):
            if reuse:
                runner._forget_from(0)
                runner._decode(prompt, 0, want_logits=True)
            row = reply(runner, prompt, args.tokens, reuse)
            if number:
                runs[kind].append(row)
    summary: dict[str, object] = {"date": datetime.date.today().isoformat(), "model": Path(model).name}
    for kind, rows in runs.items():
        summary[kind] = {
            "decode_tok_s": statistics.median(float(r["decode_tok_s"]) for r in rows),  # type: ignore[arg-type]
            "first_gaps_ms": [
                round(statistics.median(r["first_gaps_ms"][i] for r in rows), 3)  # type: ignore[index]
                for i in range(FIRST)
            ],
            "steady_gap_ms": round(statistics.median(float(r["steady_gap_ms"]) for r in rows), 4),  # type: ignore[arg-type]
            "sampler": rows[-1]["sampler"],
            "replies": rows,
        }
    runner.close()
    emit(summary, args.out)


if __name__ == "__main__":
    main()
