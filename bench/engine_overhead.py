#!/usr/bin/env python3
"""What the engine process costs a token: the same greedy reply decoded in this process (engine/generation.py
called directly, nothing emitted) and through the engine process (EngineClient, as the app and `localchat
bench` decode: the worker's Delta batching, the pipe, the client reading it), interleaved, both models loaded
side by side with the same options.

  bench/engine_overhead.py --model M.gguf [--rounds 5] [--replies 3] [--tokens 128] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import default_model, emit, load_runner  # noqa: E402
from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.client import EngineClient  # noqa: E402
from localchat.engine.protocol import Done, Generate, LoadOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out")
    args = parser.parse_args()
    model = args.model or default_model()
    options = LoadOptions(n_ctx=4096, threads=args.threads)
    sampling = SamplingParams(temperature=0.0, max_tokens=args.tokens)
    runner = load_runner(model, options)
    rows: dict[str, list[float]] = {"in_process": [], "engine_process": []}
    with EngineClient() as engine:
        engine.load(model, options)

        def in_process(text: str) -> float:
            runner._forget_from(0)
            done = runner.generate(
                runner.prompt_tokens(text), sampling, lambda piece, n: None, True, lookup=False, draft=False
            )
            return done.timings.decode_tok_s

        def engine_process(text: str) -> float:
            request = Generate(prompt=text, sampling=sampling, ignore_eos=True, lookup=False, draft=False)
            done = [event for event in engine.generate(request) if isinstance(event, Done)][-1]
            return done.timings.decode_tok_s

        for number in range(args.rounds + 1):  # the first round warms up, and is left out
            order = (in_process, engine_process) if number % 2 else (engine_process, in_process)
            for way in order:
                speeds = [way(f"Story {number}.{reply}:") for reply in range(args.replies)]
                if number:
                    rows[way.__name__].append(statistics.median(speeds))
            if number:
                print(
                    f"round {number}: in process {rows['in_process'][-1]:.1f}, "
                    f"engine process {rows['engine_process'][-1]:.1f} tok/s",
                    file=sys.stderr,
                )
    runner.close()
    inside, outside = statistics.median(rows["in_process"]), statistics.median(rows["engine_process"])
    emit(
        {
            "date": datetime.date.today().isoformat(),
            "model": Path(model).name,
            "tokens": args.tokens,
            "decode_tok_s": {"in_process": inside, "engine_process": outside},
            "engine_over_in_process": outside / inside,
            "rounds": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
