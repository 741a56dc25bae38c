#!/usr/bin/env python3
"""How fast localchat answers: `localchat --help`, `localchat list`, and the app's first frame (with a model that
loads behind it), each a fresh process, median of several runs, wall time from spawn to the answer.
Goals (issue "The chat at the keyboard"): --help ≤ 0.15 s, list ≤ 0.30 s, first frame ≤ 0.5 s.
Usage: bench/startup.py [--runs 7] [--model PATH] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import default_model, emit  # noqa: E402

# The app as `localchat --model M` builds it, headless; prints once its first frame is drawn, then quits.
FIRST_FRAME = """
import sys
from localchat.cli import build_app
app = build_app(sys.argv[1])
async def first_frame(pilot):
    print("first frame", app.chat.query_one("#model-name").render(), flush=True)
    app.exit()
app.run(headless=True, size=(120, 36), auto_pilot=first_frame)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    env = {**os.environ, "LOCALCHAT_HOME": tempfile.mkdtemp(prefix="localchat-startup-"), "HF_HUB_OFFLINE": "1"}
    localchat = [sys.executable, "-m", "localchat"]
    commands = {
        "help_s": [*localchat, "--help"],
        "list_s": [*localchat, "list"],
        "app_first_frame_s": [sys.executable, "-c", FIRST_FRAME, args.model or default_model()],
    }
    results: dict[str, list[float]] = {name: [] for name in commands}
    shown = ""
    for _ in range(args.runs):  # interleaved, so that a noisy moment hits every command alike
        for name, command in commands.items():
            seconds, out = timed(command, env)
            results[name].append(seconds)
            shown = out.strip() if name == "app_first_frame_s" else shown
    summary: dict = {name: statistics.median(values) for name, values in results.items()}
    summary["first_frame_status_line"] = shown  # the model is still loading when the first frame is drawn
    summary["runs"] = results
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
