"""Facts about this machine: CPU features, physical cores, free memory. Standard library only, so the install
script can use it before localchat's dependencies are installed."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


# /proc/cpuinfo flag -> ggml's name for that extension: its CMake switch is GGML_<name>, and
# llama_print_system_info reports "<name> = 1" when a build uses it. Every x86 switch of the vendored ggml
# (scripts/install_llama_cpp.py reads them from its CMakeLists.txt; tests/test_install.py checks this covers
# them) except AMX, left out on purpose (README, "CPU builds").
GGML_X86_FEATURES = {
    "sse4_2": "SSE42",
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "bmi2": "BMI2",
    "avx512f": "AVX512",
    "avx512vbmi": "AVX512_VBMI",
    "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16",
    "avx_vnni": "AVX_VNNI",
}
GGML_X86_LEFT_OUT = ("AMX_TILE", "AMX_INT8", "AMX_BF16")


def has_amx(flags: set[str] | None = None) -> bool:
    """AMX CPUs crash llama.cpp builds that compiled in its AMX matmul (see README, "CPU builds")."""
    flags = cpu_flags() if flags is None else flags
    return bool({"amx_int8", "amx_tile"} & flags)


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def physical_cores() -> int:
    """Physical cores: llama.cpp decodes slower on hyper-threads than on one thread per core."""
    logical = os.cpu_count() or 1
    if platform.system() != "Linux":
        return logical
    siblings = set()
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings_list"):
        try:
            siblings.add(path.read_text().strip())
        except OSError:
            continue
    return max(1, min(len(siblings) or logical, usable_cores()))


def available_memory_bytes() -> int | None:
    """Memory the OS can give us now (MemAvailable), or None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def process_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (this one by default), from /proc; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass(frozen=True)
class Gpu:
    name: str
    total_bytes: int
    free_bytes: int


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Rows of `nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits` (MiB)."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append(Gpu(parts[0], int(parts[1]) << 20, int(parts[2]) << 20))
    return gpus


def gpus() -> list[Gpu]:
    """NVIDIA GPUs and their free memory (empty when there is no nvidia-smi or no GPU)."""
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else []
