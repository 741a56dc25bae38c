"""`localchat doctor`: which backends this build has, the GPUs, and the known pitfalls (pure diagnosis).

The facts come from `localchat.engine.probe` (run in its own process), /proc/cpuinfo and nvidia-smi; this
module only reads them and says what is wrong and how to fix it, so it is unit-tested on canned readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from localchat.engine.native import load_order_note
from localchat.hardware import GGML_X86_FEATURES, Gpu, has_amx

Level = Literal["ok", "warn", "error"]
REINSTALL = "localchat doctor --fix"
GPU_BACKENDS = ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "MUSA", "CANN")


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """`CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX = 1 | ...` → {backend: {feature: value}}."""
    backends: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if part.count(":") == 1 and "=" in part.split(":", 1)[1]:  # "CPU : SSE3 = 1" opens a backend
            name, part = (s.strip() for s in part.split(":", 1))
            current = backends.setdefault(name, {})
        elif ":" in part and "=" not in part:
            current = backends.setdefault(part.rstrip(":").strip(), {})
            continue
        if current is not None and "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            current[key] = value
    return backends


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    text: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, topic: str, text: str) -> None:
        self.findings.append(Finding(level, topic, text))

    @property
    def worst(self) -> Level:
        levels = {f.level for f in self.findings}
        return "error" if "error" in levels else "warn" if "warn" in levels else "ok"


def diagnose(
    probe: dict[str, Any] | None,
    probe_error: str | None,
    cpu_flags: set[str],
    machine: str,
    system: str,
    nvidia_gpus: list[Gpu],
) -> Report:
    report = Report()
    if probe is None:
        report.add("error", "build", f"llama-cpp-python does not work here: {probe_error}. Reinstall: {REINSTALL}")
        return report
    backends = parse_system_info(str(probe.get("system_info", "")))
    cpu = backends.get("CPU", {})
    gpu_backends = [name for name in backends if name in GPU_BACKENDS]
    report.add("ok", "build", f"llama-cpp-python {probe.get('llama_cpp_python')}, backends: {', '.join(backends)}")
    compiled = [k for k, v in cpu.items() if v == "1"]
    report.add("ok", "cpu", f"{machine}, compiled for: {' '.join(compiled) or 'baseline only'}")
    missing = unused_extensions({k for k, v in cpu.items() if v == "1"}, cpu_flags)
    if missing and cpu:
        report.add(
            "warn", "cpu", f"this CPU has {' '.join(missing)} but the build does not use it (slower): {REINSTALL}"
        )
    if {"amx_int8", "amx_tile"} & cpu_flags:
        if cpu.get("AMX_INT8") == "1":
            report.add(
                "warn",
                "cpu",
                "this CPU has AMX and the build compiled in llama.cpp's AMX matmul, which segfaults on the first "
                f"decode; localchat turns weight repacking off to avoid it (slower). Rebuild without AMX: {REINSTALL}",
            )
        else:
            report.add("ok", "cpu", "AMX CPU, build without llama.cpp's AMX matmul (which crashes here): good")
    for device in probe.get("devices", []):
        if device.get("kind") in ("gpu", "igpu"):
            report.add(
                "ok",
                "gpu",
                f"{device['name']}: {device['description']}, {device['free_bytes'] / 2**30:.1f} of "
                f"{device['total_bytes'] / 2**30:.1f} GiB free",
            )
    if gpu_backends and probe.get("gpu_offload"):
        details = ", ".join(f"{k}={v}" for k, v in backends[gpu_backends[0]].items())
        report.add("ok", "gpu", f"GPU offload: yes ({gpu_backends[0]}{': ' + details if details else ''})")
        if not any(d.get("kind") in ("gpu", "igpu") for d in probe.get("devices", [])):
            report.add("warn", "gpu", f"the build has {gpu_backends[0]} but sees no GPU: check the driver")
    elif nvidia_gpus:
        names = ", ".join(f"{g.name} ({g.free_bytes / 2**30:.1f} GiB free)" for g in nvidia_gpus)
        report.add(
            "warn",
            "gpu",
            f"{names} found, but this build is CPU-only: "
            f'CMAKE_ARGS="-DGGML_CUDA=on" {REINSTALL} (README, "GPU builds")',
        )
    elif system == "Darwin" and machine == "arm64":
        report.add(
            "warn", "gpu", f'Apple silicon without Metal in this build: CMAKE_ARGS="-DGGML_METAL=on" {REINSTALL}'
        )
    else:
        report.add("ok", "gpu", "no GPU: models run on the CPU")
    load_order = load_order_note(list(probe.get("native_before_llama", [])))
    report.add(
        "warn" if load_order else "ok",
        "engine",
        load_order or "the engine process loads llama.cpp before any other native library (as CUDA builds need)",
    )
    return report


def unused_extensions(compiled: set[str], cpu_flags: set[str]) -> list[str]:
    """SIMD extensions this CPU has that the build does not use (llama.cpp does not report SSE 4.2: left out)."""
    return [name for flag, name in GGML_X86_FEATURES.items() if flag in cpu_flags and name not in compiled | {"SSE42"}]


def slow_build_note(system_info: str, cpu_flags: set[str]) -> str | None:
    """Why this llama.cpp build is slower on this CPU than it could be, with the one command that fixes it."""
    fix = f"`{REINSTALL}` rebuilds it for this CPU"
    if has_amx(cpu_flags) and "AMX_INT8 = 1" in system_info:
        return (
            f"this llama.cpp build has AMX compiled in, which crashes here: it runs without repacking (slower); {fix}"
        )
    cpu = parse_system_info(system_info).get("CPU", {})
    missing = unused_extensions({k for k, v in cpu.items() if v == "1"}, cpu_flags)
    if missing and cpu:
        return f"this llama.cpp build does not use {', '.join(missing)}, which this CPU has (slower); {fix}"
    return None
