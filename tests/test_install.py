"""localchat/build.py (what scripts/install_llama_cpp.py and `localchat doctor --fix` run): the flags it builds
llama.cpp with (every SIMD extension this CPU has, never AMX), and the build it installed here is that build (its
AMX matmul segfaulted on the first decode)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from localchat.hardware import GGML_X86_FEATURES, GGML_X86_LEFT_OUT, cpu_flags

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_llama_cpp.py"  # what make runs
x86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 flags")


def script() -> ModuleType:
    import localchat.build

    return localchat.build


def test_the_switches_are_read_from_ggmls_cmake_file() -> None:
    text = """
    option(GGML_SSE42            "ggml: enable SSE 4.2"          ${INS_ENB})
    option(GGML_AVX512_BF16      "ggml: enable AVX512-BF16"      OFF)
    if (NOT MSVC)
        option(GGML_FMA          "ggml: enable FMA"              ${INS_ENB})
    option(GGML_AMX_INT8     "ggml: enable AMX-INT8"         OFF)
    option(GGML_CUDA "ggml: use CUDA" OFF)
    """
    assert script().x86_options(text) == ["SSE42", "AVX512_BF16", "FMA", "AMX_INT8"]


@x86
def test_every_switch_is_set_to_what_the_cpu_has_and_amx_is_off() -> None:
    """An AVX2-only CPU (the AMD EPYC machines) and an AMX one; every switch explicit, since ggml turns some on
    by default without GGML_NATIVE whatever the CPU has."""
    options = ["SSE42", "AVX", "AVX2", "AVX512", "AVX512_VBMI", "AVX512_BF16", "FMA", "AMX_TILE", "AMX_INT8"]
    amd = set(["sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"])
    args = script().cpu_cmake_args(options, amd).split()
    assert args == [
        "-DGGML_NATIVE=OFF",
        "-DGGML_SSE42=ON",
        "-DGGML_AVX=ON",
        "-DGGML_AVX2=ON",
        "-DGGML_AVX512=OFF",
        "-DGGML_AVX512_VBMI=OFF",
        "-DGGML_AVX512_BF16=OFF",
        "-DGGML_FMA=ON",
        "-DGGML_AMX_TILE=OFF",
        "-DGGML_AMX_INT8=OFF",
    ]
    sapphire = amd | set(["avx512f", "avx512vbmi", "avx512_bf16", "amx_tile", "amx_int8"])
    args = script().cpu_cmake_args(options, sapphire).split()
    assert "-DGGML_AVX512_VBMI=ON" in args and "-DGGML_AVX512_BF16=ON" in args and "-DGGML_AMX_INT8=OFF" in args


def test_localchat_knows_every_x86_switch_of_the_vendored_ggml() -> None:
    """Read at install from the sdist's ggml/CMakeLists.txt: a switch we had no CPU flag for would stay off."""
    options = script().known_options()
    assert options, "no switches recorded: make install reads them from the llama-cpp-python sdist"
    assert set(options) - set(GGML_X86_LEFT_OUT) == set(GGML_X86_FEATURES.values())


@x86
def test_cmake_args_from_the_environment_come_last_and_naming_native_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    args = script().cmake_args(["AVX2"]).split()
    assert args[0] == "-DGGML_NATIVE=OFF" and args[-1] == "-DGGML_CUDA=on"
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=ON -DGGML_CUDA=on")
    assert script().cmake_args(["AVX2"]) == "-DGGML_NATIVE=ON -DGGML_CUDA=on"


def test_the_installed_build_is_the_scripts_and_has_no_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make install` put here: the script's marker matches the flags it would use now (so running it
    again builds nothing), and llama.cpp itself reports every extension this CPU has, and no AMX (read in a
    process of its own)."""
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
    reported = {name for flag, name in GGML_X86_FEATURES.items() if f"{name} = 1" in report}
    expected = {name for flag, name in GGML_X86_FEATURES.items() if flag in cpu_flags()}
    assert reported >= expected - {"SSE42"}, report  # llama.cpp reports SSE3/SSSE3, not SSE 4.2


def test_doctor_fix_rebuilds_only_when_the_build_is_not_right() -> None:
    """`localchat doctor --fix` is the one command doctor names: here the build is right, so it builds nothing
    and reports the build (a wrong one would be rebuilt: the same code path as make's, tested above)."""
    result = subprocess.run(
        [sys.executable, "-m", "localchat", "doctor", "--fix"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "already built" in result.stdout and "localchat.build: 0.3.36 -DGGML_NATIVE=OFF" in result.stdout
