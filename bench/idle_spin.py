#!/usr/bin/env python3
"""What a decode's CPU threads burn while the CPU has nothing to do: one token decoded, then a pause as long as a
GPU's step (the CPU waits on the GPU there), with the process's CPU time read across the pause. llama.cpp's
OpenMP threads spin after a parallel region before they sleep; with every layer on a GPU that spinning is all
the CPU threads do, so the engine decodes one token with one thread there (engine/offload.py, decode_threads).
Runs on the CPU (no GPU needed): the spinning is the CPU backend's, whatever else the machine has.

  bench/idle_spin.py [--model GGUF] [--pause-ms 2] [--tokens 40] [--rounds 3] [--out FILE]
"""

# isort: skip_file
from __future__ import annotations

import llama_cpp as ll  # first, before numpy: a CUDA build segfaults at load otherwise (engine/native.py)

import argparse
import datetime
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import default_model, emit, load_runner  # noqa: E402
from localchat.engine.protocol import LoadOptions  # noqa: E402
from localchat.engine.runner import LlamaRunner  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def busy_cores(runner: LlamaRunner, threads: int, tokens: int, pause: float, start: int) -> float:
    """Cores' worth of CPU the process spent during the pauses after one-token decodes with `threads`."""
    ll.llama_set_n_threads(runner.ctx, threads, runner.info.threads)
    batch, spent, paused = runner.batch, 0.0, 0.0
    batch.n_tokens, batch.n_seq_id[0], batch.seq_id[0][0], batch.logits[0] = 1, 1, 0, True
    for i in range(tokens):
        batch.token[0], batch.pos[0] = runner.cached[-1], start + i
        if ll.llama_decode(runner.ctx, batch) != 0:
            raise SystemExit("llama_decode failed")
        ll.llama_synchronize(runner.ctx)
        before, began = cpu_seconds(), time.perf_counter()
        time.sleep(pause)
        spent, paused = spent + cpu_seconds() - before, paused + time.perf_counter() - began
    ll.llama_memory_seq_rm(ll.llama_get_memory(runner.ctx), 0, start, -1)
    return spent / paused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--pause-ms", type=float, default=2.0)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    model = Path(args.model or default_model())
    runner = load_runner(model, LoadOptions(n_ctx=512))
    prompt = runner.prompt_tokens("Story 0:")[:4]
    runner._forget_from(0)
    runner._decode(prompt, 0, want_logits=True)
    threads = runner.info.threads
    rounds = []
    for number in range(args.rounds):  # interleaved: both settings see the same machine
        row = {str(n): busy_cores(runner, n, args.tokens, args.pause_ms / 1000, len(prompt)) for n in (threads, 1)}
        rounds.append(row)
        cores = ", ".join(f"{n} threads {c:.2f} cores" for n, c in row.items())
        print(f"round {number + 1}: {cores}", file=sys.stderr)
    runner.close()
    summary = {
        "date": datetime.date.today().isoformat(),
        "model": model.name,
        "pause_ms": args.pause_ms,
        "busy_cores_while_idle": {n: statistics.median(r[n] for r in rounds) for n in rounds[0]},
        "rounds": rounds,
    }
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
