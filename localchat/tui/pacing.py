"""How often a streaming reply is drawn, and how its text gets from the worker thread to the UI thread.

No Textual here: pure logic (unit-tested) plus one lock.

Why pace at all: llama.cpp runs a thread per physical core, and its threads wait for each other at every step in a
spin. On a machine where those threads fill every core, each millisecond the UI thread draws is taken from one of
them and the others spin until it is back: measured on 2 cores, drawing 5 frames a second (≈13% of a core)
cost generation 17% of its speed. So while llama.cpp has every core, the app draws only as often as a small share
of one core allows (the UI thread's CPU time is measured between frames, so a bigger window or a busier screen
draws less often);
with a core to spare it draws at full rate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

FASTEST_S = 0.1  # 10 frames a second when the UI has a core of its own
SLOWEST_S = 1.0  # never fewer than one frame a second, whatever a frame costs
CONTENDED_SHARE = 0.015  # of one core, for all the UI thread does, while llama.cpp's threads fill every core


def contended(engine_threads: int, cores: int, all_on_gpu: bool) -> bool:
    """True when llama.cpp's threads leave no core free for the UI. With every layer on the GPU the CPU threads
    only wait for it, so drawing costs generation nothing there."""
    return not all_on_gpu and engine_threads >= cores


@dataclass
class FramePacer:
    """The wait between frames of a streaming reply. While llama.cpp fills every core it is steered so that
    everything the UI thread does (messages, Markdown, layout, drawing, the cursor) stays near `share` of one core:
    measured, not assumed, since a frame's cost depends on the window's size and what is on screen."""

    contended: bool = False
    share: float = CONTENDED_SHARE
    fastest_s: float = FASTEST_S
    slowest_s: float = SLOWEST_S
    wait_s: float = FASTEST_S  # kept from one reply to the next: the screen costs about the same
    last_frame_at: float = 0.0  # 0: no frame yet in this reply, so its first text is drawn at once
    last_cpu_s: float = 0.0
    frames: int = 0  # in this reply, for the benchmark

    def start_reply(self, contended: bool) -> None:
        self.contended = contended
        self.last_frame_at = 0.0
        self.frames = 0
        if not contended:
            self.wait_s = self.fastest_s

    def delay(self, now: float) -> float:
        """How long to wait before drawing text that has just arrived."""
        return max(0.0, self.last_frame_at + self.wait_s - now) if self.last_frame_at else 0.0

    def frame(self, now: float, cpu_s: float) -> None:
        """A frame starts at `now` (time.monotonic()); `cpu_s` is the UI thread's CPU time (time.thread_time())."""
        if self.contended and self.last_frame_at and now > self.last_frame_at:
            used = (cpu_s - self.last_cpu_s) / (now - self.last_frame_at)  # of one core, since the last frame
            # The square root damps the step: the wait converges on `share` without swinging around it.
            wait = self.wait_s * (max(used, 1e-6) / self.share) ** 0.5
            self.wait_s = min(self.slowest_s, max(self.fastest_s, wait))
        self.last_frame_at, self.last_cpu_s = now, cpu_s
        self.frames += 1


class ReplyBuffer:
    """Reply text from the worker thread, waiting for the next frame. The worker wakes the UI only when the buffer
    goes from empty to not empty, so the UI handles one message per frame instead of one per delta."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._tokens = 0

    def put(self, text: str, tokens: int) -> bool:
        """Add a delta; True when the UI must be told (nothing was waiting)."""
        with self._lock:
            was_empty = not self._parts
            self._parts.append(text)
            self._tokens = tokens
            return was_empty

    def take(self) -> tuple[str, int]:
        """All text waiting, and the reply's token count so far."""
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            return text, self._tokens
