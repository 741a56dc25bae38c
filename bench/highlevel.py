#!/usr/bin/env python3
"""llama-cpp-python's high-level API (`Llama.eval` / `Llama.generate`) on the same measurements as
`localchat bench`: a fresh 512-token prompt, then 128 greedy tokens. Prints one JSON object.
Usage: bench/highlevel.py MODEL THREADS
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from llama_cpp import Llama


def main() -> int:
    model, threads = sys.argv[1], int(sys.argv[2])
    llm = Llama(model, n_ctx=4096, n_batch=512, n_ubatch=512, n_threads=threads, verbose=False)
    filler = "The quick brown fox jumps over the lazy dog while the river runs past old stone bridges. " * 60
    prompts, decodes = [], []
    for rep in range(3):
        tokens = llm.tokenize(f"Run {rep}. {filler}".encode())[:512]
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        prompts.append(len(tokens) / (time.perf_counter() - started))
        llm.reset()
        llm.eval(llm.tokenize(f"Story {rep}:".encode()))
        started = time.perf_counter()
        count = 0
        for _token in llm.generate([], temp=0.0, reset=False):
            count += 1
            if count == 128:
                break
        decodes.append((count - 1) / (time.perf_counter() - started))
    print(json.dumps({"prompt_tok_s": statistics.median(prompts), "decode_tok_s": statistics.median(decodes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
