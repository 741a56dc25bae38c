"""The architecture's boundaries, machine-checked: each import runs in a clean interpreter."""

import subprocess
import sys

import pytest


def modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())


@pytest.mark.parametrize(
    "module",
    [
        "localchat.engine.client",
        "localchat.chat.session",
        "localchat.store.db",
        "localchat.models.manager",
        "localchat.cli",
    ],
)
def test_caller_side_never_loads_llama_cpp_or_textual(module: str) -> None:
    loaded = modules_after_import(module)
    assert "llama_cpp" not in loaded  # llama.cpp lives in the engine process only
    assert "textual" not in loaded


def test_engine_never_imports_textual() -> None:
    loaded = modules_after_import("localchat.engine.runner")
    assert "llama_cpp" in loaded and "textual" not in loaded


def test_the_ui_never_loads_llama_cpp() -> None:
    loaded = modules_after_import("localchat.tui.app")
    assert "textual" in loaded and "llama_cpp" not in loaded


# What a command's start may not pay for: each of these takes tens of milliseconds to import (measured with
# `python -X importtime`), and `localchat --help` must answer in ~0.1 s. A command imports them when it runs.
HEAVY_AT_START = ("huggingface_hub", "httpx", "httpx2", "numpy", "gguf", "llama_cpp", "textual")


def test_the_cli_starts_without_heavy_packages() -> None:
    loaded = modules_after_import("localchat.cli")
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY_AT_START)
    assert heavy == []
    assert "localchat.engine.client" not in loaded and "localchat.bench" not in loaded
