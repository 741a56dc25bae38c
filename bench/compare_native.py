#!/usr/bin/env python3
"""localchat's engine against llama.cpp's own llama-bench: same model file, same threads, one run, alternating.

The machine is shared and noisy, so the two are interleaved round by round and compared by medians.
Usage: bench/compare_native.py [--model GGUF] [--llama-bench PATH] [--rounds N] [--threads T] [--out FILE]
                               [--also PYTHON]
Without --llama-bench it builds one with bench/build_llama_bench.sh (a few minutes, cached). --also measures a
second localchat install (another venv's python, e.g. a plain `pip install .`) in the same rounds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import default_model, emit  # noqa: E402


def native(llama_bench: str, model: str, threads: int, extra: list[str]) -> dict[str, float | list[float]]:
    """llama-bench's pp512 and tg128: the median of its 3 runs, as `localchat bench` reports its own (llama-bench
    prints the mean, kept as *_mean_tok_s: on a GPU its first run captures a CUDA graph and is its slowest by far,
    so its mean met localchat's median in a ratio that was not like for like), and each run's speed: beside
    `localchat bench`'s runs they show whether a slow run is either side's own."""
    command = [llama_bench, "-m", model, "-t", str(threads), "-p", "512", "-n", "128", "-r", "3", "-o", "json"]
    rows = json.loads(subprocess.run(command + extra, capture_output=True, text=True, check=True).stdout)
    speeds: dict[str, float | list[float]] = {}
    for row in rows:
        key = "prompt" if row["n_prompt"] else "decode"
        runs = row.get("samples_ts") or [row["avg_ts"]]
        speeds[f"{key}_tok_s"] = statistics.median(runs)
        speeds[f"{key}_mean_tok_s"] = row["avg_ts"]
        speeds[f"{key}_runs_tok_s"] = runs
    return speeds


def ours(model: str, threads: int, extra: list[str], python: str = sys.executable) -> dict:
    command = [python, "-m", "localchat", "bench", model, "--json", "-r", "3", "-t", str(threads)]
    return json.loads(subprocess.run(command + extra, capture_output=True, text=True, check=True).stdout)


def high_level(model: str, threads: int) -> dict[str, float]:
    command = [sys.executable, str(ROOT / "bench" / "highlevel.py"), model, str(threads)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--llama-bench", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--gpu-layers", default=None, help="passed to both (-ngl / --gpu-layers)")
    parser.add_argument("--out", default=None, help="write the JSON result here")
    parser.add_argument("--also", default=None, help="a second localchat install's python, measured alongside")
    args = parser.parse_args()
    model = args.model or default_model()
    sys.path.insert(0, str(ROOT))
    from localchat.hardware import physical_cores

    threads = args.threads or physical_cores()
    llama_bench = (
        args.llama_bench
        or subprocess.run(
            [str(ROOT / "bench" / "build_llama_bench.sh")], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.strip()
    )
    native_extra = ["-ngl", args.gpu_layers] if args.gpu_layers else []
    # mapped, as llama-bench's default: localchat's own reads a model split between GPU and CPU in
    our_extra = ["--gpu-layers", args.gpu_layers, "--mmap"] if args.gpu_layers else []
    rounds = []
    for number in range(args.rounds):
        n = native(llama_bench, model, threads, native_extra)
        o = ours(model, threads, our_extra)
        h = {} if args.gpu_layers else high_level(model, threads)
        rounds.append({"native": n, "localchat": o, "llama_cpp_python_high_level": h})
        if args.also:
            rounds[-1]["also"] = ours(model, threads, our_extra, args.also)
            print(f"round {number + 1}: --also decode {rounds[-1]['also']['decode_tok_s']:.1f} tok/s", file=sys.stderr)
        print(
            f"round {number + 1}: prompt {o['prompt_tok_s']:.1f} vs {n['prompt_tok_s']:.1f} tok/s, "
            f"decode {o['decode_tok_s']:.1f} vs {n['decode_tok_s']:.1f} tok/s (localchat vs native); "
            f"high-level llama-cpp-python {h.get('prompt_tok_s', 0):.1f} / {h.get('decode_tok_s', 0):.1f}",
            file=sys.stderr,
        )

    def median(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    last_turns = [r["localchat"]["turns"][-1] for r in rounds]
    summary = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "model": Path(model).name,
        "threads": threads,
        "gpu_layers": args.gpu_layers or "default",
        "command": " ".join(sys.argv),
        "native": {"prompt_tok_s": median("native", "prompt_tok_s"), "decode_tok_s": median("native", "decode_tok_s")},
        "localchat": {
            "prompt_tok_s": median("localchat", "prompt_tok_s"),
            "decode_tok_s": median("localchat", "decode_tok_s"),
            "ttft_s": median("localchat", "ttft_s"),
            "load_s": median("localchat", "load_s"),
            "cancel_ms": statistics.median(r["localchat"]["cancel_ms"] for r in rounds),
        },
        "turn10_evaluated_over_new": statistics.median(t["evaluated_tokens"] / t["new_tokens"] for t in last_turns),
        "rounds": rounds,
    }
    summary["ratio"] = {
        "prompt": summary["localchat"]["prompt_tok_s"] / summary["native"]["prompt_tok_s"],
        "decode": summary["localchat"]["decode_tok_s"] / summary["native"]["decode_tok_s"],
    }
    if not args.gpu_layers:
        summary["llama_cpp_python_high_level"] = {
            key: median("llama_cpp_python_high_level", key) for key in ("prompt_tok_s", "decode_tok_s")
        }
        summary["ratio"]["high_level_prompt"] = (
            summary["llama_cpp_python_high_level"]["prompt_tok_s"] / summary["native"]["prompt_tok_s"]
        )
        summary["ratio"]["high_level_decode"] = (
            summary["llama_cpp_python_high_level"]["decode_tok_s"] / summary["native"]["decode_tok_s"]
        )
    if args.also:
        summary["also"] = {"python": args.also, "decode_tok_s": median("also", "decode_tok_s")}
        summary["ratio"]["also_decode"] = summary["also"]["decode_tok_s"] / summary["native"]["decode_tok_s"]
        summary["ratio"]["also_decode_rounds"] = [
            r["also"]["decode_tok_s"] / r["native"]["decode_tok_s"] for r in rounds
        ]
    summary["ratio"]["decode_rounds"] = [r["localchat"]["decode_tok_s"] / r["native"]["decode_tok_s"] for r in rounds]
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
