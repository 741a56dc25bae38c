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
