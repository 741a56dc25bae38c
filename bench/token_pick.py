#!/usr/bin/env python3
"""What picking a token on the CPU costs the decode loop: the engine's loop (engine/generation.py, in this
process, nothing emitted) with llama.cpp's whole chain (`llama_sampler_sample`, its repeat penalty included) and
with the engine's own pick (engine/sampler.py: numpy's argmax over the logits row for a greedy reply, numpy's
repeat penalty over the row), interleaved round by round on one loaded model. Per token it reports the
microseconds spent outside `llama_decode` (picking, detokenizing, the loop itself), and the decode rate; the two
must give the same text.

  bench/token_pick.py [--model M.gguf] [--rounds 6] [--replies 2] [--tokens 256] [--temperature 0]
                      [--repeat-penalty 1.0] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import default_model, emit, load_runner  # noqa: E402
from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.protocol import LoadOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--replies", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=0.0, help="above 0: sampled, seed 1")
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    parser.add_argument("--out")
    args = parser.parse_args()
    model = args.model or default_model()
    runner = load_runner(model, LoadOptions(n_ctx=4096, threads=args.threads))
    import llama_cpp as ll

    import localchat.engine.generation as generation
    from localchat.engine.sampler import sampler_chain

    inside = [0.0]  # seconds in llama_decode during the current reply

    class TimedDecode:
        """llama_cpp as the loop sees it, its llama_decode timed."""

        def __getattr__(self, name: str) -> object:
            return self.decode if name == "llama_decode" else getattr(ll, name)

        @staticmethod
        def decode(ctx: object, batch: object) -> int:
            started = time.perf_counter()
            status = ll.llama_decode(ctx, batch)
            inside[0] += time.perf_counter() - started
            return status

    engine_pick = generation.token_picker
    whole_chains = []  # llama.cpp's chain with its penalty (the engine's own comes without it), freed per reply

    def whole_chain(chain: object, ctx: object, n_vocab: int, sampling: SamplingParams, *_: object) -> object:
        whole_chains.append(sampler_chain(sampling, prompt, n_vocab))
        return partial(ll.llama_sampler_sample, whole_chains[-1], ctx)

    ways = {"chain": whole_chain, "engine": engine_pick}
    generation.ll = TimedDecode()
    seed = 1 if args.temperature > 0 else None
    sampling = SamplingParams(args.temperature, max_tokens=args.tokens, repeat_penalty=args.repeat_penalty, seed=seed)
    outside: dict[str, list[float]] = {name: [] for name in ways}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    texts: dict[str, set[str]] = {}
    for number in range(args.rounds + 1):  # the first round warms up, and is left out
        for name in list(ways) if number % 2 else list(ways)[::-1]:
            generation.token_picker = ways[name]
            for reply in range(args.replies):
                runner._forget_from(0)
                inside[0] = 0.0
                prompt = runner.prompt_tokens(f"Story {number}.{reply}:")
                done = runner.generate(prompt, sampling, lambda piece, n: None, True, lookup=False, draft=False)
                while whole_chains:
                    ll.llama_sampler_free(whole_chains.pop())
                texts.setdefault(f"{number}.{reply}", set()).add(done.text)
                if number:
                    steps = done.usage.completion_tokens - 1  # decodes after the first token
                    outside[name].append((done.timings.decode_s - inside[0]) / steps * 1e6)
                    rates[name].append(done.timings.decode_tok_s)
        if number:
            print(f"round {number}: " + ", ".join(f"{n} {outside[n][-1]:.0f} µs" for n in ways), file=sys.stderr)
    generation.ll, generation.token_picker = ll, engine_pick
    runner.close()
    emit(
        {
            "date": datetime.date.today().isoformat(),
            "model": Path(model).name,
            "tokens": args.tokens,
            "sampling": sampling.summary(),
            "outside_decode_us": {name: statistics.median(values) for name, values in outside.items()},
            "decode_tok_s": {name: statistics.median(values) for name, values in rates.items()},
            "same_text": all(len(variants) == 1 for variants in texts.values()),
            "replies": {"outside_decode_us": outside, "decode_tok_s": rates},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
