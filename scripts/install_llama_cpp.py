#!/usr/bin/env python3
"""Build and install llama-cpp-python with flags that work on this CPU, caching the wheel.

Why: llama-cpp-python is source-only on PyPI and its default build compiles llama.cpp for the build machine's
CPU (GGML_NATIVE). On CPUs with AMX, that build's AMX matmul segfaults on the first decode (seen with 0.3.36).
On x86-64 we therefore build with GGML_NATIVE=OFF and turn on each SIMD extension this CPU reports, except AMX:
the same speed on everything we measured (weight repacking stays on), no crash. CMAKE_ARGS in the environment
is added after them (CUDA: -DGGML_CUDA=on; Metal is on by default on Apple silicon).

pip caches wheels built from an sdist by name and version only, whatever CMAKE_ARGS was, so a crashing build
could be reused silently; this script builds with --no-cache-dir into its own cache keyed by the flags.

Usage: python3 scripts/install_llama_cpp.py [PYTHON]   (PYTHON: the interpreter to install into)
Offline (no PyPI, e.g. a GPU box behind a firewall): LOCALCHAT_LLAMA_SOURCE=path/to/the/sdist(.tar.gz or folder)
builds from it without build isolation, so scikit-build-core must already be installed there.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from localchat.hardware import GGML_X86_FEATURES, cpu_flags

VERSION = "0.3.36"
# /proc/cpuinfo flag -> ggml CMake option, for the extensions ggml has switches for (AMX left out on purpose).
X86_FEATURES = {flag: f"GGML_{name}" for flag, name in GGML_X86_FEATURES.items()}


def cmake_args() -> str:
    """This CPU's SIMD flags (no AMX), then CMAKE_ARGS from the environment (CUDA, Metal...), which wins on any
    option both set. A GPU build still runs some layers and ops on the CPU: the flags matter there too (seen on
    an H100 host with AMX: CMAKE_ARGS="-DGGML_CUDA=on" alone compiled AMX in). Naming GGML_NATIVE yourself
    turns the CPU flags off."""
    user = os.environ.get("CMAKE_ARGS", "").strip()
    if "GGML_NATIVE" in user:
        return user
    return " ".join(part for part in (cpu_cmake_args(), user) if part)


def cpu_cmake_args() -> str:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ""
    flags = cpu_flags()
    if not flags:
        return ""
    options = ["-DGGML_NATIVE=OFF"] + [f"-D{option}=ON" for flag, option in X86_FEATURES.items() if flag in flags]
    return " ".join(options)


def run(command: list[str], **kwargs: object) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def main() -> int:
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        print(__doc__)
        return 2
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    args = cmake_args()
    key = hashlib.sha256(f"{VERSION} {args} {platform.machine()} {sys.version_info[:2]}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "localchat-build" / key
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True)
    marker = Path(prefix.stdout.strip()) / "localchat-llama-build.txt"
    if marker.exists() and marker.read_text() == f"{VERSION} {args}\n":
        print(f"llama-cpp-python {VERSION} already built with CMAKE_ARGS={args!r}")
        return 0
    wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
    if not wheels:
        print(f"Building llama-cpp-python {VERSION} with CMAKE_ARGS={args!r} (a few minutes)...", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CMAKE_ARGS": args}
        source = os.environ.get("LOCALCHAT_LLAMA_SOURCE")
        offline = ["--no-build-isolation"] if source else []
        run(
            [
                python,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-cache-dir",
                "-w",
                str(cache),
                *offline,
                source or f"llama-cpp-python=={VERSION}",
            ],
            env=env,
        )
        wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
    run([python, "-m", "pip", "install", "--force-reinstall", "--no-deps", str(wheels[-1])])
    run([python, "-m", "pip", "install", "numpy>=1.20", "jinja2>=2.11.3", "diskcache>=5.6.1", "typing-extensions>=4.5"])
    marker.write_text(f"{VERSION} {args}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
