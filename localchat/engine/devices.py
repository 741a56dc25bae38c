"""The compute devices this llama.cpp build sees (CPU, CUDA, Metal, Vulkan...), and their free memory.

llama-cpp-python does not bind ggml's device registry, so it is read through ctypes from the ggml library
that llama.cpp itself loaded. Asking the backend rather than nvidia-smi gives the free memory of the device
llama.cpp will allocate on, for every GPU backend. Runs only inside the engine process (or `doctor`'s probe).
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path

# enum ggml_backend_dev_type (ggml-backend.h)
DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}


@dataclass(frozen=True)
class Device:
    name: str  # e.g. CUDA0, Metal, CPU
    description: str  # e.g. NVIDIA H100 80GB HBM3
    kind: str  # cpu / gpu / igpu / accel
    free_bytes: int
    total_bytes: int


def _ggml_library() -> ctypes.CDLL:
    from llama_cpp import llama_cpp

    suffix = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
    names = ("libggml", "ggml") if sys.platform != "win32" else ("ggml",)
    for name in names:
        path = Path(llama_cpp._base_path) / f"{name}{suffix}"
        if path.exists():
            return ctypes.CDLL(str(path))
    return ctypes.CDLL(None)  # linked statically into libllama: its symbols are already loaded


def list_devices() -> list[Device]:
    """Every device registered in this build; [] when the registry cannot be read."""
    try:
        ggml = _ggml_library()
        ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
        ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
        ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        for function in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
            getattr(ggml, function).restype = ctypes.c_char_p
            getattr(ggml, function).argtypes = [ctypes.c_void_p]
        ggml.ggml_backend_dev_type.restype = ctypes.c_int
        ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        ggml.ggml_backend_dev_memory.restype = None
        ggml.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p] + [ctypes.POINTER(ctypes.c_size_t)] * 2
    except (OSError, AttributeError, ImportError):
        return []
    devices = []
    for index in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        ggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        devices.append(
            Device(
                name=(ggml.ggml_backend_dev_name(device) or b"").decode(errors="replace"),
                description=(ggml.ggml_backend_dev_description(device) or b"").decode(errors="replace"),
                kind=DEVICE_TYPES.get(ggml.ggml_backend_dev_type(device), "other"),
                free_bytes=free.value,
                total_bytes=total.value,
            )
        )
    return devices


def free_gpu_bytes(devices: list[Device]) -> int | None:
    """Free memory over the GPUs llama.cpp offloads to (it splits layers across them); None without a GPU."""
    gpus = [d for d in devices if d.kind in ("gpu", "igpu")]
    return sum(d.free_bytes for d in gpus) if gpus else None
