#!/usr/bin/env python3
"""The TUI's cost while a long reply streams, against the headless engine, in one run.

1. headless: the engine generates N tokens (greedy, past end-of-text) with nobody rendering.
2. tui: the same generation streams into the real app (run headless by Textual's pilot) through the same path a
   reply takes: worker thread → ReplyListener → ReplyBuffer → paced frames → MessageView.append → MarkdownStream.
Reports decode tok/s of both (ratio goal ≥ 0.98: rendering must not slow generation down) and the UI thread's
CPU time while the last 10% of the reply streamed vs the first 10% (goal ≤ 1.5: O(n), not O(n²)). That CPU time
is everything the UI thread did (messages, Markdown, layout, compositing), read with time.thread_time() 20
times a second; until 2026-11-22 the bench timed only MessageView.append, which queues text for MarkdownStream
and does none of the rendering. Also: frames drawn per second (tui/pacing.py decides), the UI thread's share of
a core while the reply streamed, and the CPU of the one full update after the last token.
Usage: bench/tui_stream.py [--tokens 2000] [--rounds 3] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import default_model, emit  # noqa: E402

from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.config import Paths  # noqa: E402
from localchat.engine.protocol import Delta, Done, Generate, LoadOptions  # noqa: E402
from localchat.tui import chat_view  # noqa: E402
from localchat.tui.app import LocalchatApp  # noqa: E402
from localchat.tui.chat_view import ReplyListener  # noqa: E402
from localchat.tui.messages import ReplyFinished  # noqa: E402

PROMPT = "Write a very long story about a river, a bridge and a town, with many chapters.\n\n"


def request(tokens: int) -> Generate:
    # A chat-style prompt, greedy, going past end-of-text so every run streams exactly `tokens` tokens.
    return Generate(prompt=PROMPT, sampling=SamplingParams(temperature=0.0, max_tokens=tokens), ignore_eos=True)


async def run(model: str, tokens: int, rounds: int, threads: int | None = None) -> dict:
    home = Path(tempfile.mkdtemp(prefix="localchat-bench-"))
    paths = Paths(home / "config", home / "data", home / "cache", home / "logs").ensure()
    app = LocalchatApp(paths, model, None, None, LoadOptions(threads=threads))
    # (tokens so far, the UI thread's CPU seconds, wall seconds, frames drawn)
    ui_cpu: list[tuple[int, float, float, int]] = []
    state = {"tokens": 0, "sampling": False}

    def sample_ui_cpu() -> None:  # runs on the UI thread
        if state["sampling"]:
            ui_cpu.append((state["tokens"], time.thread_time(), time.monotonic(), app.chat.pacer.frames))

    results: dict[str, list[float]] = {
        "headless_tok_s": [],
        "tui_tok_s": [],
        "render_last_over_first": [],
        "frames_per_s": [],
        "ui_share_while_streaming": [],
        "final_update_cpu_s": [],
        "full_rate_tok_s": [],
        "full_rate_last_over_first": [],
        "full_rate_frames_per_s": [],
        "window_s_first": [],
        "window_s_last": [],
        "frame_ms_first": [],
        "frame_ms_last": [],
    }
    async with app.run_test(size=(140, 45)) as pilot:
        app.set_interval(0.05, sample_ui_cpu)
        while app.session.engine.model is None:
            await pilot.pause(0.1)
        engine = app.session.engine
        for _ in range(rounds):
            # headless
            done = next(e for e in engine.generate(request(tokens)) if isinstance(e, Done))
            results["headless_tok_s"].append(done.timings.decode_tok_s)
            # through the app, paced as the app paces itself on this machine
            done, figures = await through_app(app, pilot, engine, tokens, state, ui_cpu)
            results["tui_tok_s"].append(done.timings.decode_tok_s)
            for key, value in figures.items():
                results[key].append(value)
            # again at the full frame rate (as with a core to spare), where the growth figure has ~28 frames a
            # window to measure instead of ~3
            with full_frame_rate():
                done, figures = await through_app(app, pilot, engine, tokens, state, ui_cpu)
            results["full_rate_tok_s"].append(done.timings.decode_tok_s)
            results["full_rate_last_over_first"].append(figures["render_last_over_first"])
            results["full_rate_frames_per_s"].append(figures["frames_per_s"])
    summary = {key: statistics.median(values) for key, values in results.items()}
    summary["ratio_tui_over_headless"] = summary["tui_tok_s"] / summary["headless_tok_s"]
    summary["rounds"] = results
    summary["tokens"] = tokens
    return summary


@contextlib.contextmanager
def full_frame_rate() -> Iterator[None]:
    """Make the app draw as if llama.cpp left it a core (tui/pacing.py: 10 frames a second)."""
    saved = chat_view.contended
    chat_view.contended = lambda *args: False
    try:
        yield
    finally:
        chat_view.contended = saved


async def through_app(app, pilot, engine, tokens: int, state: dict, ui_cpu: list) -> tuple[Done, dict[str, float]]:
    chat = app.store.create_conversation("bench")
    await app.open_conversation(chat.id)
    reply = app.store.add_message(chat.id, "assistant", "", None, status="streaming")
    ui_cpu.clear()
    state["tokens"], state["sampling"] = 0, True
    finished: dict = {}

    def stream() -> None:  # the worker thread's part, as in RepliesMixin.generate
        listener = ReplyListener(app.chat)
        listener.started(reply, 0)
        for event in engine.generate(request(tokens)):
            if isinstance(event, Delta):
                state["tokens"] = event.tokens
                listener.delta(event)
            else:
                finished["done"] = event
        app.store.update_message(reply.id, finished["done"].text, "complete")
        app.chat.post_message(ReplyFinished(finished["done"]))

    await asyncio.get_running_loop().run_in_executor(None, stream)
    while app.chat.streaming is not None:
        await pilot.pause(0.05)
    await pilot.pause(0.3)  # the last frames
    state["sampling"] = False
    figures = ui_figures(ui_cpu, tokens)
    figures["frames_per_s"] = app.chat.pacer.frames / (ui_cpu[-1][2] - ui_cpu[0][2])
    return finished["done"], figures


def ui_figures(samples: list[tuple[int, float, float, int]], tokens: int) -> dict[str, float]:
    """From (tokens, UI CPU, wall) samples: the UI thread's share of a core while the reply streamed; its CPU
    while tokens 90-100% streamed over tokens 0-10% (growth: O(n) rendering keeps it near 1); and the CPU of
    what came after the last token (the one full Markdown update of the finished reply). To tell a frame that
    costs more from a window that lasts longer (decode slows as the context fills): each window's wall time, and
    the UI CPU per frame drawn in it."""

    def at(fraction: float) -> tuple[int, float, float, int]:
        return next(sample for sample in samples if sample[0] >= tokens * fraction)

    start, end = samples[0], at(1.0)
    first = at(0.1)[1] - start[1]
    last = end[1] - at(0.9)[1]
    first_end, last_start = at(0.1), at(0.9)
    return {
        "window_s_first": first_end[2] - start[2],
        "window_s_last": end[2] - last_start[2],
        "frame_ms_first": 1000 * first / max(first_end[3] - start[3], 1),
        "frame_ms_last": 1000 * last / max(end[3] - last_start[3], 1),
        "ui_share_while_streaming": (end[1] - start[1]) / (end[2] - start[2]),
        "render_last_over_first": last / first if first > 0 else float("nan"),
        "final_update_cpu_s": samples[-1][1] - end[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="engine threads [physical cores]")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    summary = asyncio.run(run(args.model or default_model(), args.tokens, args.rounds, args.threads))
    summary["threads"] = args.threads or "physical cores"
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
