"""What the speculation check scripts (lookup_check.py, draft_check.py) read of a reply, run inside their own
engine-like process: a reply from a cold cache, and one cancelled after 30 tokens; and the policy's costs
as on a GPU."""

from __future__ import annotations

import ctypes
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localchat.chat.sampling import SamplingParams
    from localchat.engine.runner import LlamaRunner


def priced_as_on_a_gpu(runner: LlamaRunner) -> None:
    """Every width of batch, at every context length, timed once as quick as one row (as on a GPU, where a wider
    batch costs what one row does): the policy then drafts at every match, so the checking of drafts (what must
    keep the reply exact) runs often, taken and turned down alike. Unbounded, so the real times never push it out."""
    runner.batch_seconds.update({(span, rows): deque([1e-9]) for span in range(16) for rows in range(1, 64)})


def reply(runner: LlamaRunner, prompt: list[int], sampling: SamplingParams, **switches: Any) -> dict[str, object]:
    """A reply generated from an empty cache: its text, what was emitted, and the cache's tokens after it."""
    runner._forget_from(0)
    emitted: list[str] = []
    result = runner.generate(prompt, sampling, lambda t, n: emitted.append(t), ignore_eos=True, **switches)
    return {
        "text": result.text,
        "emitted": "".join(emitted),
        "completion": result.usage.completion_tokens,
        "cached": list(runner.cached),
        "speculative": None if result.speculative is None else vars(result.speculative),
    }


def cancelled_reply(
    runner: LlamaRunner, prompt: list[int], sampling: SamplingParams, abort_flag: ctypes.Array, **switches: Any
) -> dict[str, object]:
    """The same, cancelled (the abort flag set) once the 30th token's text was emitted."""
    emitted: list[str] = []

    def cancel_after(text: str, count: int) -> None:
        emitted.append(text)
        if count == 30:
            abort_flag[0] = b"\1"

    runner._forget_from(0)
    stopped = runner.generate(prompt, sampling, cancel_after, ignore_eos=True, **switches)
    abort_flag[0] = b"\0"
    return {
        "case": "cancelled",
        "text": stopped.text,
        "emitted": "".join(emitted),
        "completion": stopped.usage.completion_tokens,
        "reason": stopped.stop_reason,
        "cached": list(runner.cached),
        "prompt": len(prompt),
    }
