#!/usr/bin/env python3
"""Does llama.cpp give a position the same logits in a one-row decode as in a batch? (What prompt lookup's
"same text" rests on: a drafted token is checked from a batch row, a plain reply decodes it alone.)

After a prompt of N tokens, the same token is decoded alone, then (the cache cut back) as row 0 of batches of
2, 3, 4, 8 and 16 rows; reported is the largest difference of any logit between the one-row decode and a batch
row, per context length, with flash attention on (llama.cpp's default), on with one thread for one-row decodes,
and off. Then what one thread costs a one-row decode (the best of 5 runs of 64 decodes).

  bench/batch_identity.py [--model M.gguf] [--contexts 200,250,256,300,500,700,2000] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import llama_cpp as ll  # noqa: E402

from bench.common import default_model, emit  # noqa: E402

WIDTHS = (2, 3, 4, 8, 16)
THREADS = 2  # this project's machines: 2 cores


class Context:
    def __init__(self, model: ll.llama_model_p, flash_attention: bool, one_row_threads: int) -> None:
        params = ll.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = 4096, 512, 512
        params.n_threads, params.n_threads_batch = one_row_threads, THREADS
        params.flash_attn_type = (
            ll.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self.ctx = ll.llama_init_from_model(model, params)
        self.memory = ll.llama_get_memory(self.ctx)
        self.batch = ll.llama_batch_init(512, 0, 1)
        self.n_vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(model))

    def decode(self, tokens: list[int], start: int, all_logits: bool = True) -> None:
        batch = self.batch
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.seq_id[i][0] = token, start + i, 1, 0
            batch.logits[i] = all_logits or i == len(tokens) - 1
        if ll.llama_decode(self.ctx, batch) != 0:
            raise SystemExit("llama_decode failed")

    def row(self, i: int) -> list[float]:
        logits = ll.llama_get_logits_ith(self.ctx, i)
        return [logits[j] for j in range(self.n_vocab)]

    def forget_from(self, position: int) -> None:
        ll.llama_memory_seq_rm(self.memory, 0, position, -1)

    def close(self) -> None:
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)


def prompt_of(length: int) -> list[int]:
    return [(i * 7919) % 40000 + 100 for i in range(length)]


def difference(context: Context, length: int) -> float:
    """The largest |logit| difference between a one-row decode and row 0 of each batch width, after `length`."""
    context.forget_from(0)
    prompt = prompt_of(length)
    for offset in range(0, length, 512):
        context.decode(prompt[offset : offset + 512], offset, all_logits=False)
    draft = [101, 202, 303, 404, 505, 606, 707, 808, 909, 111, 222, 333, 444, 555, 666, 777]
    context.decode(draft[:1], length)
    alone = context.row(0)
    largest = 0.0
    for width in WIDTHS:
        context.forget_from(length)
        context.decode(draft[:width], length)
        largest = max(largest, max(abs(a - b) for a, b in zip(alone, context.row(0), strict=True)))
    return largest


def one_row_speed(context: Context, length: int) -> float:
    context.forget_from(0)
    prompt = prompt_of(length)
    for offset in range(0, length, 512):
        context.decode(prompt[offset : offset + 512], offset, all_logits=False)
    best = float("inf")
    for _ in range(5):
        context.forget_from(length)
        began = time.perf_counter()
        for i in range(64):
            context.decode([100 + i], length + i)
        best = min(best, time.perf_counter() - began)
    return 64 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--contexts", default="200,250,256,300,500,700,2000")
    parser.add_argument("--out")
    args = parser.parse_args()
    model_path = args.model or default_model()
    quiet = ll.llama_log_callback(lambda level, text, data: None)  # kept alive: llama.cpp calls it to the end
    ll.llama_log_set(quiet, None)
    ll.llama_backend_init()
    model = ll.llama_model_load_from_file(str(model_path).encode(), ll.llama_model_default_params())
    lengths = [int(n) for n in args.contexts.split(",")]
    settings = {
        "flash_attention": (True, THREADS),
        "flash_attention_one_row_on_1_thread": (True, 1),
        "no_flash_attention": (False, THREADS),
    }
    largest: dict[str, dict[str, float]] = {}
    speed: dict[str, dict[str, float]] = {}
    for name, (flash_attention, one_row_threads) in settings.items():
        context = Context(model, flash_attention, one_row_threads)
        largest[name] = {str(n): round(difference(context, n), 4) for n in lengths}
        if flash_attention:
            speed[name] = {str(n): round(one_row_speed(context, n), 1) for n in (200, 2000)}
        context.close()
    emit(
        {
            "date": datetime.date.today().isoformat(),
            "model": Path(model_path).name,
            "threads": THREADS,
            "widths": list(WIDTHS),
            "largest_logit_difference": largest,
            "one_row_decode_tok_s": speed,
        },
        args.out,
    )
    ll.llama_model_free(model)


if __name__ == "__main__":
    main()
