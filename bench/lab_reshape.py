#!/usr/bin/env python3
"""What the sampling lab costs per key press: reshaping the stored candidates at one token by the chain
(chat/distribution.py) and building the chart (tui/sampling_panel.py), for every token of a real reply and
several settings. Goal (issue "See and shape the next token"): ≤ 16 ms, no model call.
Usage: bench/lab_reshape.py [--model PATH] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import default_model, emit  # noqa: E402

from localchat.chat.sampling import PRESETS, SamplingParams  # noqa: E402
from localchat.engine.client import EngineClient  # noqa: E402
from localchat.engine.protocol import ChatMessage, Generate  # noqa: E402
from localchat.tui.sampling_panel import TOP_N, chart, shaped_at  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out")
    args = parser.parse_args()
    model = args.model or default_model()
    messages = (ChatMessage("user", "Write a short story about a lighthouse keeper."),)
    with EngineClient() as engine:
        engine.load(model)
        text = ""
        for event in engine.generate(Generate(messages, sampling=SamplingParams(temperature=0, max_tokens=200))):
            text += getattr(event, "text", "") if not hasattr(event, "stop_reason") else ""
        started = time.perf_counter()
        scores = engine.score_reply(messages, text, TOP_N)
        score_s = time.perf_counter() - started
    settings = [*PRESETS.values(), SamplingParams(temperature=0), SamplingParams(temperature=1.5, top_k=0, top_p=1)]
    times = []
    for sampling in settings:
        for position, entry in enumerate(scores.tokens):
            began = time.perf_counter()
            chart(entry, shaped_at(scores, position, sampling), 48)
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    emit(
        {
            "date": datetime.date.today().isoformat(),
            "model": Path(model).name,
            "reply_tokens": len(scores.tokens),
            "candidates": TOP_N,
            "score_reply_s": score_s,
            "reshape_and_chart_ms": {
                "median": statistics.median(times),
                "p99": times[int(len(times) * 0.99)],
                "max": times[-1],
            },
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
