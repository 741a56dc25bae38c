"""Loading with GPU offload: retry with fewer layers when the GPU runs out of memory (pure control flow), and the
threads a one-token decode gets once it is offloaded.

The estimate in models/memory.py picks the layer count, but a GPU's free memory can shrink between the
estimate and the allocation (another program, fragmentation). With --gpu-layers auto a failed allocation
then costs a retry with fewer layers, not a crash; with an explicit count the user asked for exactly that,
so the error says what to change instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from localchat.errors import EngineError
from localchat.models.memory import fewer_layers

T = TypeVar("T")

# Phrases llama.cpp and its backends log when an allocation fails (CUDA, Metal, Vulkan, CPU).
MEMORY_ERRORS = ("out of memory", "failed to allocate", "unable to allocate", "cudamalloc failed", "alloc failed")


class OutOfMemory(Exception):
    """A load or context creation failed because a buffer could not be allocated."""


def is_memory_failure(log_lines: Iterable[str]) -> bool:
    return any(phrase in line.lower() for line in log_lines for phrase in MEMORY_ERRORS)


def load_with_fallback(first_layers: int, auto: bool, load: Callable[[int], T]) -> tuple[T, int]:
    """`load(layers)` with `first_layers`, and while it raises OutOfMemory under auto, with fewer (down to 0).
    Returns what `load` returned and the layer count that worked."""
    layers = first_layers
    while True:
        try:
            return load(layers), layers
        except OutOfMemory:
            if not auto or layers == 0:
                raise EngineError(memory_advice(layers)) from None
            layers = fewer_layers(layers)


def memory_advice(layers: int) -> str:
    if layers > 0:
        return (
            f"out of GPU memory loading with {layers} GPU layers: use fewer (--gpu-layers {fewer_layers(layers)}) "
            "or a smaller context (--ctx), or close what else uses the GPU"
        )
    return "out of memory loading the model: use a smaller context (--ctx) or a smaller quant"


def maps_model_file(choice: bool | None, gpu_layers: int, layers: int) -> bool:
    """Whether llama.cpp maps the model file (`choice`, or None: decided here). Where a GPU evaluates prompts for
    a model split between it and the CPU, llama.cpp copies the CPU's weights to the GPU for every prompt batch,
    and keeps them in pinned host memory, which copies fast, only when the file is read in, not mapped: a
    512-token prompt ran 2.3x as fast so (H100, a 1B at 12 of 23 layers; llama-bench 2.4x with `-lm none`).
    Ollama reads in split models as well. Else mapping loads sooner and shares the page cache."""
    if choice is not None:
        return choice
    return not 0 < gpu_layers <= layers


def decode_threads(gpu_layers: int, layers: int, threads: int) -> int:
    """CPU threads for a one-token decode. With every layer and the output on a GPU the CPU's part of a token
    is its embedding row: one thread does that as fast (measured on an H200, README "Where a 1B token's time
    goes"), where `threads` would wake OpenMP threads that then spin through the GPU's whole step, a core
    each, taken from the UI and the rest of the machine. Prompts (several tokens) keep `threads`."""
    return 1 if gpu_layers > layers else threads
