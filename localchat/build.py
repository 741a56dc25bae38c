"""Build and install llama-cpp-python with flags that work on this CPU, caching the wheel.

Why: llama-cpp-python is source-only on PyPI and its default build compiles llama.cpp for the build machine's
CPU (GGML_NATIVE). On CPUs with AMX, that build's AMX matmul segfaults on the first decode (seen with 0.3.36).
On x86-64 we therefore build with GGML_NATIVE=OFF and set each of ggml's x86 switches (read from the vendored
ggml/CMakeLists.txt, so a new switch is not missed) to what this CPU reports, AMX always off: the same speed on
everything we measured (weight repacking stays on), no crash. CMAKE_ARGS in the environment is added after them
(CUDA: -DGGML_CUDA=on; Metal is on by default on Apple silicon).

pip caches wheels built from an sdist by name and version only, whatever CMAKE_ARGS was, so a crashing build
could be reused silently; this script builds with --no-cache-dir into its own cache keyed by the flags.

Usage: `localchat doctor --fix` (this environment), or, before localchat is installed (what `make` runs),
python3 scripts/install_llama_cpp.py [PYTHON]   (PYTHON: the interpreter to install into)
Offline (no PyPI, e.g. a GPU box behind a firewall): LOCALCHAT_LLAMA_SOURCE=path/to/the/sdist(.tar.gz or folder)
builds from it without build isolation, so scikit-build-core must already be installed there.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from localchat.hardware import GGML_X86_FEATURES, GGML_X86_LEFT_OUT, cpu_flags

VERSION = "0.3.36"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "localchat-build"
GGML_CMAKE = "vendor/llama.cpp/ggml/CMakeLists.txt"
X86_OPTION = re.compile(r"^\s*option\(GGML_((?:SSE|AVX|AMX|BMI)\w*|FMA|F16C)\s", re.MULTILINE)


def cmake_args(options: list[str] | None = None) -> str:
    """This CPU's setting of each of ggml's x86 `options` (AMX off), then CMAKE_ARGS from the environment (CUDA,
    Metal...), which wins on any option both set. A GPU build still runs some layers and ops on the CPU: the
    flags matter there too (seen on an H100 host with AMX: CMAKE_ARGS="-DGGML_CUDA=on" alone compiled AMX in).
    Naming GGML_NATIVE yourself turns the CPU flags off."""
    user = os.environ.get("CMAKE_ARGS", "").strip()
    if "GGML_NATIVE" in user:
        return user
    if options is None:  # the switches read at the last install, else from the sdist
        options = known_options() or source_and_options()[1]
    return " ".join(part for part in (cpu_cmake_args(options, cpu_flags()), user) if part)


def cpu_cmake_args(options: list[str], flags: set[str]) -> str:
    """Every switch set explicitly, ON or OFF: with GGML_NATIVE off, ggml turns some on by default (AVX2, FMA...)
    whatever the CPU has."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not flags:
        return ""
    flag_of = {name: flag for flag, name in GGML_X86_FEATURES.items()}
    parts = ["-DGGML_NATIVE=OFF"]
    for option in options:
        if option not in flag_of and option not in GGML_X86_LEFT_OUT:
            print(f"note: ggml has a switch GGML_{option} localchat does not know; it stays off", flush=True)
        parts.append(f"-DGGML_{option}={'ON' if flag_of.get(option) in flags else 'OFF'}")
    return " ".join(parts)


def x86_options(cmake_text: str) -> list[str]:
    """ggml's x86 instruction-set switches, as its CMakeLists.txt declares them (GGML_AVX2 -> "AVX2")."""
    return list(dict.fromkeys(X86_OPTION.findall(cmake_text)))


def options_file() -> Path:
    return CACHE / f"ggml-x86-options-{VERSION}.txt"


def source_and_options() -> tuple[str, list[str]]:
    """What pip builds (the sdist, or LOCALCHAT_LLAMA_SOURCE) and the ggml switches read from it."""
    source = os.environ.get("LOCALCHAT_LLAMA_SOURCE")
    if not source:
        folder = CACHE / "sdist"
        found = sorted(folder.glob(f"llama_cpp_python-{VERSION}.tar.gz"))
        if not found:
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q"]
            run([*pip, "-d", str(folder), f"llama-cpp-python=={VERSION}"])
            found = sorted(folder.glob(f"llama_cpp_python-{VERSION}.tar.gz"))
        source = str(found[-1])
    path = Path(source)
    if path.is_dir():
        text = (path / GGML_CMAKE).read_text(encoding="utf-8")
    else:
        with tarfile.open(path) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith(GGML_CMAKE))
            text = archive.extractfile(member).read().decode("utf-8")
    options = x86_options(text)
    options_file().parent.mkdir(parents=True, exist_ok=True)
    options_file().write_text("\n".join(options) + "\n")
    return source, options


def known_options() -> list[str] | None:
    """The switches read at the last install (so that an installed build can be checked without the sdist)."""
    path = options_file()
    return path.read_text().split() if path.exists() else None


def run(command: list[str], **kwargs: object) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__)
        return 2
    python = argv[0] if argv else sys.executable
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True)
    marker = Path(prefix.stdout.strip()) / "localchat-llama-build.txt"
    options = known_options()
    if options is not None and not os.environ.get("LOCALCHAT_LLAMA_SOURCE"):
        args = cmake_args(options)
        if marker.exists() and marker.read_text() == f"{VERSION} {args}\n":
            print(f"llama-cpp-python {VERSION} already built with CMAKE_ARGS={args!r}")
            return 0
    source, options = source_and_options()
    args = cmake_args(options)
    key = hashlib.sha256(f"{VERSION} {args} {platform.machine()} {sys.version_info[:2]}".encode()).hexdigest()[:12]
    cache = CACHE / key
    wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
    if not wheels:
        print(f"Building llama-cpp-python {VERSION} with CMAKE_ARGS={args!r} (a few minutes)...", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CMAKE_ARGS": args}
        offline = ["--no-build-isolation"] if os.environ.get("LOCALCHAT_LLAMA_SOURCE") else []
        run([python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(cache), *offline, source], env=env)
        wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
    run([python, "-m", "pip", "install", "--force-reinstall", "--no-deps", str(wheels[-1])])
    run([python, "-m", "pip", "install", "numpy>=1.20", "jinja2>=2.11.3", "diskcache>=5.6.1", "typing-extensions>=4.5"])
    marker.write_text(f"{VERSION} {args}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
