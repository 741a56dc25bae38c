#!/usr/bin/env python3
"""The TUI's cost while a long reply streams, against the headless engine, in one run.

1. headless: the engine generates N tokens (greedy, past end-of-text) with nobody rendering.
2. tui: the same generation streams into the real app (run headless by Textual's pilot) through the same path a
   reply takes: worker thread → ReplyDelta messages → MessageView.append → MarkdownStream.
Reports decode tok/s of both (ratio goal ≥ 0.98: rendering must not slow generation down) and the UI thread's
CPU time while the last 10% of the reply streamed vs the first 10% (goal ≤ 1.5: O(n), not O(n²)). That CPU time
is everything the UI thread did (messages, Markdown, layout, compositing), read with time.thread_time() 20
times a second; until 2026-11-22 the bench timed only MessageView.append, which queues text for MarkdownStream
and does none of the rendering.
Usage: bench/tui_stream.py [--tokens 2000] [--rounds 3] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import default_model, emit  # noqa: E402

from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.config import Paths  # noqa: E402
from localchat.engine.protocol import Delta, Done, Generate, LoadOptions  # noqa: E402
from localchat.tui.app import LocalchatApp  # noqa: E402
from localchat.tui.messages import ReplyDelta, ReplyFinished, ReplyStarted  # noqa: E402

PROMPT = "Write a very long story about a river, a bridge and a town, with many chapters.\n\n"


def request(tokens: int) -> Generate:
    # A chat-style prompt, greedy, going past end-of-text so every run streams exactly `tokens` tokens.
    return Generate(prompt=PROMPT, sampling=SamplingParams(temperature=0.0, max_tokens=tokens), ignore_eos=True)


async def run(model: str, tokens: int, rounds: int, threads: int | None = None) -> dict:
    home = Path(tempfile.mkdtemp(prefix="localchat-bench-"))
    paths = Paths(home / "config", home / "data", home / "cache", home / "logs").ensure()
    app = LocalchatApp(paths, model, None, None, LoadOptions(threads=threads))
    ui_cpu: list[tuple[int, float]] = []  # (tokens so far, the UI thread's CPU seconds)
    state = {"tokens": 0, "sampling": False}

    def sample_ui_cpu() -> None:  # runs on the UI thread
        if state["sampling"]:
            ui_cpu.append((state["tokens"], time.thread_time()))

    results = {"headless_tok_s": [], "tui_tok_s": [], "render_last_over_first": []}
    async with app.run_test(size=(140, 45)) as pilot:
        app.set_interval(0.05, sample_ui_cpu)
        while app.session.engine.model is None:
            await pilot.pause(0.1)
        engine = app.session.engine
        for _ in range(rounds):
            # headless
            done = next(e for e in engine.generate(request(tokens)) if isinstance(e, Done))
            results["headless_tok_s"].append(done.timings.decode_tok_s)
            # through the app
            chat = app.store.create_conversation("bench")
            await app.open_conversation(chat.id)
            reply = app.store.add_message(chat.id, "assistant", "", None, status="streaming")
            ui_cpu.clear()
            state["tokens"], state["sampling"] = 0, True
            finished: dict = {}

            def stream(reply=reply, finished=finished) -> None:  # bound now, not at call time
                app.post_message(ReplyStarted(reply.id))
                for event in engine.generate(request(tokens)):
                    if isinstance(event, Delta):
                        state["tokens"] = event.tokens
                        app.post_message(ReplyDelta(event.text, event.tokens))
                    else:
                        finished["done"] = event
                app.store.update_message(reply.id, finished["done"].text, "complete")
                app.post_message(ReplyFinished(finished["done"]))

            worker = asyncio.get_running_loop().run_in_executor(None, stream)
            await worker
            while app.streaming is not None:
                await pilot.pause(0.05)
            await pilot.pause(0.3)  # the last frames
            state["sampling"] = False
            results["tui_tok_s"].append(finished["done"].timings.decode_tok_s)
            results["render_last_over_first"].append(last_over_first(ui_cpu, tokens))
    summary = {key: statistics.median(values) for key, values in results.items()}
    summary["ratio_tui_over_headless"] = summary["tui_tok_s"] / summary["headless_tok_s"]
    summary["rounds"] = results
    summary["tokens"] = tokens
    return summary


def last_over_first(samples: list[tuple[int, float]], tokens: int) -> float:
    """UI CPU spent while tokens 90-100% streamed (and the frames after) over tokens 0-10%."""

    def cpu_at(fraction: float) -> float:
        return next(cpu for n, cpu in samples if n >= tokens * fraction)

    first = cpu_at(0.1) - samples[0][1]
    last = samples[-1][1] - cpu_at(0.9)
    return last / first if first > 0 else float("nan")


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
