#!/usr/bin/env python3
"""localchat on an NVIDIA GPU, in one run: speed against llama-bench (full and partial offload), the VRAM
estimate against what the engine really took, and `--gpu-layers auto` against the most layers that load; and
first, whether sampling in the graph picks the tokens that sampling on the CPU picks (same_text).

Run on the GPU machine after building (bench/cuda_device.sh does all of it, from a bare machine):
  bench/cuda_compare.py --llama-bench PATH --model 1b.gguf --model 7b.gguf --partial 7b.gguf:16 --out FILE
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import emit  # noqa: E402
from compare_native import native, ours  # noqa: E402

from localchat.chat.sampling import SamplingParams  # noqa: E402
from localchat.engine.client import EngineClient  # noqa: E402
from localchat.engine.protocol import Generate, LoadOptions  # noqa: E402
from localchat.hardware import gpus  # noqa: E402

N_CTX = 4096


def simple_decode(llama_simple: str, model: str, gpu_layers: str) -> float:
    """llama.cpp's own generation loop (examples/simple: greedy sampling on the CPU, one token per decode), as
    a second native reference: unlike llama-bench's tg it must read every token's logits before the next
    decode, as every chat program must."""
    command = [llama_simple, "-m", model, "-n", "128", "-ngl", gpu_layers, "Story 0:"]
    log = subprocess.run(command, capture_output=True, text=True, errors="replace", check=True).stderr
    match = re.search(r"decoded \d+ tokens in [\d.]+ s, speed: ([\d.]+) t/s", log)
    return float(match.group(1)) if match else float("nan")


def _runs(side: dict, key: str) -> str:
    """Each run's speed, as printed beside the median or mean of them."""
    return ", ".join(f"{r:.0f}" for r in side.get(f"{key}_runs_tok_s", []))


def speed(
    model: str,
    gpu_layers: str,
    threads: int,
    rounds: int,
    llama_bench: str,
    llama_simple: str | None,
    cpu_sampler: bool = True,
    mmap: bool = True,
) -> dict:
    """Interleaved rounds of llama-bench and `localchat bench` at the same -ngl; medians and ratios. Each round
    runs the two back to back, llama-bench first in odd rounds and last in even ones (a host's speed drifts by
    several percent within minutes: 2026-12-07, H100, both sides together), and its ratio is kept too. With
    `cpu_sampler`, localchat once more with the sampler chain on the CPU (`--no-backend-sampling`). Without
    `mmap`, both read the model into memory (llama-bench `-lm none`, localchat `--no-mmap`)."""
    per_round = []
    native_extra = ["-ngl", gpu_layers] + ([] if mmap else ["-lm", "none"])
    # said outright for localchat: its default reads a split model in, where llama-bench's maps it
    our_extra = ["--speed-only", "--gpu-layers", gpu_layers, "--mmap" if mmap else "--no-mmap"]
    for number in range(rounds):
        # --speed-only: the bench's other cases (lookup, reopen, counting) took most of a round, and a 10-minute
        # call got through 5 of the 9 rounds of three configurations (2026-12-04)
        if number % 2 == 0:
            n = native(llama_bench, model, threads, native_extra)
        o = ours(model, threads, our_extra)
        if number % 2 == 1:
            n = native(llama_bench, model, threads, native_extra)
        if cpu_sampler:
            o_cpu = ours(model, threads, [*our_extra, "--no-backend-sampling"])
            o["cpu_sampler_decode_tok_s"] = o_cpu["decode_tok_s"]
        if llama_simple:
            n["simple_decode_tok_s"] = simple_decode(llama_simple, model, gpu_layers)
        per_round.append({"native": n, "localchat": o})
        on_cpu = f"; cpu sampler {o['cpu_sampler_decode_tok_s']:.1f}" if cpu_sampler else ""
        print(
            f"{Path(model).name} ngl {gpu_layers} round {number + 1}: prompt {o['prompt_tok_s']:.0f} "
            f"({_runs(o, 'prompt')}) vs {n['prompt_tok_s']:.0f} ({_runs(n, 'prompt')}), "
            f"decode {o['decode_tok_s']:.1f} ({o.get('sampler')} sampler{on_cpu}; runs {_runs(o, 'decode')}) "
            f"vs {n['decode_tok_s']:.1f} ({_runs(n, 'decode')}) tok/s",
            file=sys.stderr,
        )

    def median(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in per_round)

    result = {
        "model": Path(model).name,
        "gpu_layers": gpu_layers,
        "native": {k: median("native", k) for k in ("prompt_tok_s", "decode_tok_s", "simple_decode_tok_s")}
        if llama_simple
        else {k: median("native", k) for k in ("prompt_tok_s", "decode_tok_s")},
        "localchat": {
            k: median("localchat", k)
            for k in ("prompt_tok_s", "decode_tok_s", "cpu_sampler_decode_tok_s", "ttft_s", "load_s")
            if k in per_round[0]["localchat"]
        },
        "sampler": per_round[-1]["localchat"].get("sampler"),
        "rounds": per_round,
    }
    result["ratio"] = {
        "prompt": result["localchat"]["prompt_tok_s"] / result["native"]["prompt_tok_s"],
        "decode": result["localchat"]["decode_tok_s"] / result["native"]["decode_tok_s"],
        # the median of each round's own ratio: the two sides of a round ran within seconds of each other
        "prompt_paired": statistics.median(
            r["localchat"]["prompt_tok_s"] / r["native"]["prompt_tok_s"] for r in per_round
        ),
        "decode_paired": statistics.median(
            r["localchat"]["decode_tok_s"] / r["native"]["decode_tok_s"] for r in per_round
        ),
    }
    for key in ("prompt", "decode"):
        # each side's mean of its runs: llama-bench's reported figure, against the same mix of runs of ours
        result["ratio"][f"{key}_means"] = statistics.median(
            statistics.mean(r["localchat"][f"{key}_runs_tok_s"]) / r["native"][f"{key}_mean_tok_s"] for r in per_round
        )
    if cpu_sampler:
        result["ratio"]["decode_cpu_sampler"] = (
            result["localchat"]["cpu_sampler_decode_tok_s"] / result["native"]["decode_tok_s"]
        )
    if llama_simple:
        result["ratio"]["decode_vs_simple"] = (
            result["localchat"]["decode_tok_s"] / result["native"]["simple_decode_tok_s"]
        )
    return result


def process_vram(pid: int) -> int:
    """GPU memory one process holds, from nvidia-smi (bytes)."""
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    for line in subprocess.run(query, capture_output=True, text=True, check=True).stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
            return int(parts[1]) << 20
    return 0


def vram(model: str, gpu_layers: int | str) -> dict:
    """The engine's estimate for this offload against the VRAM its process holds after a 512-token prompt."""
    with EngineClient(Path("/tmp/localchat-engine.log")) as engine:
        info = engine.load(model, LoadOptions(n_ctx=N_CTX, gpu_layers=gpu_layers))
        for _ in engine.generate(Generate(prompt="hello " * 500, sampling=SamplingParams(max_tokens=16))):
            pass
        measured = process_vram(engine.pid or 0)
    return {
        "model": Path(model).name,
        "setting": str(gpu_layers),
        "gpu_layers": info.gpu_layers,
        "n_ctx": info.n_ctx,
        "estimate_bytes": info.vram_estimate,
        "measured_bytes": measured,
        "estimate_over_measured": info.vram_estimate / measured if measured else None,
    }


def llama_buffers(model: str, gpu_layers: int) -> dict[str, float]:
    """The buffer sizes llama.cpp logs for a load (MiB), to see which part of an estimate is off."""
    command = [sys.executable, str(ROOT / "bench" / "try_load.py"), model, str(gpu_layers), str(N_CTX)]
    log = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False).stderr
    sizes: dict[str, float] = {}
    for match in re.finditer(r"(\S+) (model|KV|compute) buffer size =\s*([\d.]+) MiB", log):
        key = f"{match.group(1)} {match.group(2)}"
        sizes[key] = sizes.get(key, 0.0) + float(match.group(3))
    return sizes


def loads(model: str, gpu_layers: int) -> bool:
    command = [sys.executable, str(ROOT / "bench" / "try_load.py"), model, str(gpu_layers), str(N_CTX)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def localchat_json(*args: str) -> dict:
    command = [sys.executable, "-m", "localchat", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    return json.loads(result.stdout) if result.returncode == 0 else {"error": result.stderr.strip()}


def same_text(model: str) -> dict:
    """#19: the sampler chain run in llama.cpp's graph picks what the same chain on the CPU picks, on the GPU's
    own logits: a greedy reply and a seeded one (128 tokens, every layer on the GPU, prompt lookup off so that
    only where the tokens are picked differs), each generated both ways."""
    cases = {"greedy": ["--temperature", "0"], "seeded": ["--temperature", "0.8", "--seed", "7"]}
    result = {}
    for name, flags in cases.items():
        graph, cpu = (
            localchat_json(
                "run", model, "Once upon a time", "-n", "128", "--ctx", str(N_CTX), "--gpu-layers", "all",
                "--no-lookup", *flags, where, "--json",
            )
            for where in ("--backend-sampling", "--no-backend-sampling")
        )  # fmt: skip
        result[name] = {
            "same_text": "error" not in graph and "error" not in cpu and graph["text"] == cpu["text"],
            "tokens": [reply.get("usage", {}).get("completion_tokens") for reply in (graph, cpu)],
            "errors": [reply["error"] for reply in (graph, cpu) if "error" in reply],
        }
    return result


def auto_against_max(model: str, leave_free: int) -> dict:
    """Hold all but `leave_free` bytes of the GPU (a ballast process), then compare what `auto` picks with the
    largest layer count llama.cpp really loads (binary search, each try in its own process)."""
    free = gpus()[0].free_bytes
    ballast_bytes = free - leave_free
    ballast = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import signal, torch; x = torch.empty({ballast_bytes}, dtype=torch.uint8, device='cuda'); "
            "print('ok', flush=True); signal.pause()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert ballast.stdout is not None and ballast.stdout.readline().strip() == "ok"
        time.sleep(1)
        free_now = gpus()[0].free_bytes
        show = localchat_json("show", model, "--ctx", str(N_CTX), "--json")
        auto = localchat_json("run", model, "Hello", "-n", "8", "--ctx", str(N_CTX), "--json")
        forced = localchat_json("run", model, "Hello", "-n", "8", "--ctx", str(N_CTX), "--gpu-layers", "all", "--json")
        layers = show.get("layers", 0) + 1
        low, high = 0, layers  # low loads; find the largest that does
        if loads(model, layers):
            low = layers
        while low < high:
            middle = (low + high + 1) // 2
            if loads(model, middle):
                low = middle
            else:
                high = middle - 1
        auto_layers = auto.get("offload", {}).get("gpu_layers")
        # auto must also survive a full context, not just a load: a prompt that fills all but 128 of its tokens
        full = localchat_json("run", model, "hello " * (N_CTX - 128), "-n", "8", "--ctx", str(N_CTX), "--json")
        return {
            "model": Path(model).name,
            "free_vram_bytes": free_now,
            "show_plan": show.get("offload"),
            "auto": auto.get("offload", auto),
            "all_requested": forced.get("offload", forced),
            "auto_full_context": {k: full.get(k) for k in ("error", "usage", "stop_reason", "offload")},
            "largest_that_loads": low,
            "auto_over_largest": auto_layers / low if auto_layers is not None and low else None,
        }
    finally:
        ballast.send_signal(signal.SIGTERM)
        ballast.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-bench", required=True)
    parser.add_argument("--llama-simple", help="llama.cpp's examples/simple, for a native generation loop")
    parser.add_argument("--model", action="append", default=[], help="full offload; repeat for several")
    parser.add_argument("--partial", action="append", default=[], help="MODEL:LAYERS for a partial offload")
    parser.add_argument("--auto-model", help="model for the auto-vs-largest test (default: the last --model)")
    parser.add_argument("--leave-free-gib", type=float, default=4.0, help="free VRAM left by the ballast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out")
    parser.add_argument("--no-mmap", action="store_true", help="both sides read the model into memory")
    parser.add_argument("--speed-only", action="store_true", help="leave out VRAM and auto (a short lease)")
    parser.add_argument("--no-speed", action="store_true", help="only VRAM and auto (speed measured in another call)")
    parser.add_argument(
        "--no-cpu-sampler", action="store_true", help="leave out localchat with the sampler chain on the CPU"
    )
    args = parser.parse_args()
    if not args.model and not args.partial:
        parser.error("name a model: --model (full offload) or --partial MODEL:LAYERS")
    from localchat.hardware import physical_cores

    threads = args.threads or physical_cores()
    runs = [(m, "99") for m in args.model] + [tuple(p.rsplit(":", 1)) for p in args.partial]
    summary: dict = {
        "date": datetime.date.today().isoformat(),
        "gpu": [g.name for g in gpus()],
        "threads": threads,
        "command": " ".join(sys.argv),
        "speed": [],
    }
    if not args.no_speed:  # first: a few seconds a model, and a lease cut short still has it
        summary["same_text"] = {Path(model).name: same_text(model) for model in args.model}
        emit(summary, args.out)
    for model, layers in runs if not args.no_speed else []:  # written after each: a cut lease leaves figures
        summary["speed"].append(
            speed(
                model,
                layers,
                threads,
                args.rounds,
                args.llama_bench,
                args.llama_simple,
                not args.no_cpu_sampler,
                not args.no_mmap,
            )
        )
        emit(summary, args.out)
    if not args.speed_only:
        summary["vram"] = [vram(m, "all" if n == "99" else int(n)) for m, n in runs]
        summary["llama_cpp_buffers_mib"] = {f"{Path(m).name} ngl {n}": llama_buffers(m, int(n)) for m, n in runs}
        model = args.auto_model or (args.model or [m for m, _ in runs])[-1]
        summary["auto_vs_largest"] = auto_against_max(model, int(args.leave_free_gib * 2**30))
    emit(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
