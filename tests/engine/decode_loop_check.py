"""Run as a process: one reply generated with the next decode launched before the token's text is sent (what a
GPU does) and with the text sent first (the CPU's order), greedy, then each cancelled after a few tokens.
Prints one JSON line per order. (A process of its own: the test process never imports llama_cpp.)"""

from __future__ import annotations

import ctypes
import json
import sys

from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
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
    runner.close()


if __name__ == "__main__":
    main(sys.argv[1])
