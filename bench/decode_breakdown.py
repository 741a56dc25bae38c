#!/usr/bin/env python3
"""Where a decoded token's time goes on a GPU, in one process, interleaved round by round (same model, same
context, same library), against llama-bench's own tg loop run as a subprocess in the same rounds:

  llama-bench   the binary: decode one token, wait for it (llama_synchronize), next (tools/llama-bench, test_gen)
  llama-bench-1-thread   the same with -t 1 (the CPU's part of a decode at full offload is one embedding row)
  tg            that loop from Python: decode, synchronize, a fixed token (what the ctypes calls add)
  tg-1-thread   the same with one thread for a one-token decode (the engine's context has every core)
  tg-bench-context     the same on a second context made with llama-bench's parameters (n_ctx 256, its 128 and
                       the warm-up; n_batch 2048, n_ubatch 512): what the engine's context parameters cost
  graph         the chain attached to the context (greedy, in the graph): decode, llama_sampler_sample, the
                sampled token fed to the next decode (what sampling in the graph adds)
  graph-token   the same, the token read with llama_get_sampled_token_ith alone (the chain's accept skipped)
  cpu-argmax    no chain attached: decode, the logits row read by numpy's argmax on the CPU
  localchat     the engine's decode loop (engine/generation.py), greedy, prompt lookup and draft off
  localchat-1-thread     the same with one thread for a one-token decode

Each mode decodes --tokens tokens from a 4-token prompt after a warm-up of 16; per token it reports the
milliseconds in all, inside llama_decode (building and launching the work), waiting for the result, and the
rest (Python). Run on the GPU machine after bench/cuda_device.sh built llama.cpp (LLAMA_CPP_LIB_PATH set):
  bench/decode_breakdown.py --llama-bench PATH --model 1b.gguf [--model 7b.gguf] [--rounds 5] [--out FILE]
"""

# isort: skip_file
from __future__ import annotations

import llama_cpp as ll  # first, before numpy: a CUDA build segfaults at load otherwise (engine/native.py)

import argparse
import ctypes
import datetime
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.protocol import LoadOptions  # noqa: E402
from localchat.engine.runner import LlamaRunner  # noqa: E402
from localchat.engine.worker import _silence_llama_logs  # noqa: E402
from localchat.models.gguf import read_gguf  # noqa: E402

WARM_UP = 16
GREEDY = SamplingParams(temperature=0.0, max_tokens=1)


def llama_bench(binary: str, model: str, tokens: int, threads: int | None = None) -> float:
    """llama-bench's tg: milliseconds per token."""
    command = [binary, "-m", model, "-ngl", "999", "-p", "0", "-n", str(tokens), "-r", "3", "-o", "json"]
    command += ["-t", str(threads)] if threads else []
    rows = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return 1000 / rows[0]["avg_ts"]


class Loop:
    """One mode's raw loop over llama.cpp's calls, timed in parts."""

    def __init__(self, ctx: ll.llama_context_p, batch: ll.llama_batch, start: int, token: int) -> None:
        self.ctx, self.batch, self.start, self.token = ctx, batch, start, token
        batch.n_tokens, batch.n_seq_id[0], batch.seq_id[0][0], batch.logits[0] = 1, 1, 0, True

    def run(self, tokens: int, next_token: Callable[[], int]) -> dict[str, float]:
        ctx, batch = self.ctx, self.batch
        decode = ll.llama_decode
        token = self.token
        inside = waiting = 0.0
        started = 0.0
        for i in range(WARM_UP + tokens):
            if i == WARM_UP:
                inside = waiting = 0.0
                started = time.perf_counter()
            batch.token[0], batch.pos[0] = token, self.start + i
            a = time.perf_counter()
            if decode(ctx, batch) != 0:
                raise SystemExit("llama_decode failed")
            b = time.perf_counter()
            token = next_token()
            c = time.perf_counter()
            inside += b - a
            waiting += c - b
        ll.llama_synchronize(ctx)
        total = time.perf_counter() - started
        ll.llama_memory_seq_rm(ll.llama_get_memory(ctx), 0, self.start, -1)
        return parts(total, inside, waiting, tokens)


def parts(total: float, inside: float, waiting: float, tokens: int) -> dict[str, float]:
    ms = 1000 / tokens
    return {
        "ms": total * ms,
        "decode_call_ms": inside * ms,
        "wait_ms": waiting * ms,
        "rest_ms": (total - inside - waiting) * ms,
    }


def measure(model: str, binary: str | None, tokens: int, rounds: int) -> dict:
    flag = ctypes.create_string_buffer(2)
    runner = LlamaRunner(read_gguf(Path(model)), LoadOptions(n_ctx=4096, gpu_layers=999), flag)
    prompt = runner.prompt_tokens("Story 0:")[:4]
    runner._forget_from(0)
    runner._decode(prompt, 0, want_logits=True)
    ctx, n_vocab, threads = runner.ctx, runner.n_vocab, runner.info.threads
    fixed = prompt[-1]
    # A context as llama-bench makes one (tools/llama-bench, to_cparams; n_ctx there is n_prompt + n_gen, here
    # room for the warm-up too), decoding from position 0 as its tg does.
    params = ll.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = 256, 2048, 512
    params.n_threads = params.n_threads_batch = threads
    bench_ctx, bench_batch = ll.llama_init_from_model(runner.model, params), ll.llama_batch_init(1, 0, 1)

    def synchronized(context: ll.llama_context_p) -> Callable[[], int]:
        def tg() -> int:
            ll.llama_synchronize(context)
            return fixed

        return tg

    def cpu_argmax() -> int:
        row = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        return int(row.argmax())

    chain: list = []

    def graph() -> int:
        return ll.llama_sampler_sample(chain[0], ctx, -1)

    def graph_token() -> int:
        return ll.llama_get_sampled_token_ith(ctx, -1)

    def localchat(timed: bool = False) -> dict[str, float]:
        """The engine's loop; `timed`: with llama_decode and llama_sampler_sample wrapped to time them (each
        wrapper adds a Python call to the token)."""
        spent: dict[str, list[float]] = {"decode": [], "sample": []}
        real = ll.llama_decode, ll.llama_sampler_sample

        def timing(call: Callable, key: str) -> Callable:
            def timed_call(*args: object) -> object:
                began = time.perf_counter()
                try:
                    return call(*args)
                finally:
                    spent[key].append(time.perf_counter() - began)

            return timed_call

        if timed:
            ll.llama_decode, ll.llama_sampler_sample = timing(real[0], "decode"), timing(real[1], "sample")
        try:
            del runner.cached[len(prompt) :]
            done = runner.generate(
                prompt, SamplingParams(temperature=0.0, max_tokens=WARM_UP + tokens), lambda text, n: None, True,
                lookup=False, draft=False,
            )  # fmt: skip
        finally:
            ll.llama_decode, ll.llama_sampler_sample = real
        runner._forget_from(len(prompt))
        result = {"ms": 1000 / done.timings.decode_tok_s, "in_graph": float(done.sampler == "graph")}
        if timed:  # decode_s runs from the first token's sample: the prompt's decode and that sample left out
            decodes = len(spent["decode"]) - 1
            result = parts(done.timings.decode_s, sum(spent["decode"][1:]), sum(spent["sample"][1:]), decodes)
        return result

    per_round: list[dict[str, dict[str, float]]] = []
    for number in range(rounds):
        row: dict[str, dict[str, float]] = {}
        if binary:
            row["llama-bench"] = {"ms": llama_bench(binary, model, tokens)}
            row["llama-bench-1-thread"] = {"ms": llama_bench(binary, model, tokens, threads=1)}
        loop = Loop(ctx, runner.batch, len(prompt), fixed)
        runner.samplers.close()  # nothing attached: the graph ends at the logits, as llama-bench's does
        row["tg"] = loop.run(tokens, synchronized(ctx))
        ll.llama_set_n_threads(ctx, 1, threads)
        row["tg-1-thread"] = loop.run(tokens, synchronized(ctx))
        ll.llama_set_n_threads(ctx, threads, threads)
        row["tg-bench-context"] = Loop(bench_ctx, bench_batch, 0, fixed).run(tokens, synchronized(bench_ctx))
        row["cpu-argmax"] = loop.run(tokens, cpu_argmax)
        attached, in_graph = runner.samplers.take(GREEDY, prompt)
        chain[:] = [attached]
        # Without a GPU the chain runs on the CPU (so the script can be tried anywhere): named so.
        row["graph" if in_graph else "cpu-chain"] = loop.run(tokens, graph)
        if in_graph:
            row["graph-token"] = loop.run(tokens, graph_token)
        runner.samplers.give_back(attached, in_graph)
        row["localchat"] = localchat()
        ll.llama_set_n_threads(ctx, 1, threads)
        row["localchat-1-thread"] = localchat()
        ll.llama_set_n_threads(ctx, threads, threads)
        row["localchat-timed"] = localchat(timed=True)
        per_round.append(row)
        print(
            f"{Path(model).name} round {number + 1}: "
            + ", ".join(f"{mode} {r['ms']:.3f}" for mode, r in row.items())
            + " ms/token",
            file=sys.stderr,
        )
    ll.llama_batch_free(bench_batch)
    ll.llama_free(bench_ctx)
    runner.close()
    modes = per_round[0].keys()
    medians = {
        mode: {key: statistics.median(r[mode][key] for r in per_round) for key in per_round[0][mode]} for mode in modes
    }
    reference = medians["llama-bench" if binary else "tg"]["ms"]
    return {
        "model": Path(model).name,
        "tokens": tokens,
        "median": medians,
        "speed_vs_reference": {mode: reference / medians[mode]["ms"] for mode in modes},
        "rounds": per_round,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--llama-bench", default=None)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    _silence_llama_logs()
    summary: dict = {"date": datetime.date.today().isoformat(), "command": " ".join(sys.argv), "models": []}
    for model in args.model:  # written after each: a lease cut short keeps what was measured
        summary["models"].append(measure(model, args.llama_bench, args.tokens, args.rounds))
        if args.out:
            Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
