"""How often a streaming reply is drawn, and how its text gets from the worker thread to the UI thread.

No Textual here: pure logic (unit-tested) plus one lock.

Why pace at all: llama.cpp runs a thread per physical core, and its threads wait for each other at every step in a
spin. On a machine where those threads fill every core, each millisecond the UI thread works is taken from one of
them while the others spin until it is back: measured on 2 cores, the UI's CPU costs generation about 1:1. So while
llama.cpp has every core the app draws 8 frames a second (smooth to the eye; each frame costs a few milliseconds,
see tui/markdown_body.py), and with a core to spare 20.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Each frame comes a little late (the timer waits for the UI's loop), so the intervals leave a margin: at 0.05 and
# 0.125 s the app measured 19.3 and 7.97 frames a second (bench/results/tui-stream-2026-12-02-settle.json).
FRAME_S = 0.045  # 20+ frames a second when the UI has a core of its own
CONTENDED_FRAME_S = 0.12  # 8+ frames a second while llama.cpp's threads fill every core


def contended(engine_threads: int, cores: int, all_on_gpu: bool) -> bool:
    """True when llama.cpp's threads leave no core free for the UI. With every layer on the GPU the CPU threads
    only wait for it, so drawing costs generation nothing there."""
    return not all_on_gpu and engine_threads >= cores


@dataclass
class FramePacer:
    """How often a streaming reply is drawn (one interval timer per reply, see ChatView), and how many frames."""

    wait_s: float = FRAME_S
    frames: int = 0  # in this reply, for the benchmark and tests

    def start_reply(self, contended: bool) -> None:
        self.wait_s = CONTENDED_FRAME_S if contended else FRAME_S
        self.frames = 0

    def frame(self) -> None:
        self.frames += 1


@dataclass
class Pending:
    """Reply text received since the last frame, and the reply's counts so far."""

    text: str = ""
    reasoning: str = ""  # a thinking model's
    tokens: int = 0
    reasoning_tokens: int = 0
    thinking: bool = False  # inside the reasoning now


class ReplyBuffer:
    """Reply text from the worker thread, waiting for the next frame. The worker wakes the UI only when the buffer
    goes from empty to not empty, so the UI handles one message per frame instead of one per delta."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._reasoning: list[str] = []
        self._counts = (0, 0, False)

    def put(
        self, text: str, tokens: int, reasoning: str = "", reasoning_tokens: int = 0, thinking: bool = False
    ) -> bool:
        """Add a delta; True when the UI must be told (nothing was waiting)."""
        with self._lock:
            was_empty = not self._parts and not self._reasoning
            if text:
                self._parts.append(text)
            if reasoning:
                self._reasoning.append(reasoning)
            self._counts = (tokens, reasoning_tokens, thinking)
            return was_empty

    def take(self) -> Pending:
        """All text waiting, and the reply's token counts so far."""
        with self._lock:
            pending = Pending("".join(self._parts), "".join(self._reasoning), *self._counts)
            self._parts.clear()
            self._reasoning.clear()
            return pending
