"""scripts/install_llama_cpp.py: the flags it builds llama.cpp with (every SIMD extension this CPU has, never
AMX), and the build it installed here is that build (its AMX matmul segfaulted on the first decode)."""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from localchat.hardware import GGML_X86_FEATURES, cpu_flags, has_amx

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_llama_cpp.py"
x86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 flags")


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_llama_cpp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@x86
def test_the_cpu_flags_are_this_cpus_extensions_without_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    args = script().cmake_args().split()
    flags = cpu_flags()
    assert args[0] == "-DGGML_NATIVE=OFF"  # native would compile AMX in on an AMX CPU
    assert set(args[1:]) == {f"-DGGML_{name}=ON" for flag, name in GGML_X86_FEATURES.items() if flag in flags}
    assert not [a for a in args if "AMX" in a]


@x86
def test_cmake_args_from_the_environment_come_last_and_naming_native_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    args = script().cmake_args().split()
    assert args[0] == "-DGGML_NATIVE=OFF" and args[-1] == "-DGGML_CUDA=on"
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=ON -DGGML_CUDA=on")
    assert script().cmake_args() == "-DGGML_NATIVE=ON -DGGML_CUDA=on"


def test_the_installed_build_is_the_scripts_and_has_no_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make install` put here: the script's marker matches the flags it would use now (so running it
    again builds nothing), and llama.cpp itself reports no AMX (read in a process of its own)."""
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    again = subprocess.run(
        [sys.executable, str(SCRIPT), sys.executable], capture_output=True, text=True, timeout=120, check=True
    )
    assert "already built" in again.stdout, again.stdout
    report = subprocess.run(
        [sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "AMX_INT8 = 1" not in report
    if has_amx():  # this CPU has AMX: the build must still use the extensions it compiled for
        assert "AVX512 = 1" in report
