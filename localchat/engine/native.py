"""Which native libraries a process loaded before llama.cpp.

A CUDA build's `libggml-cuda.so` exports thousands of C++ standard-library symbols of its own. On an H200 host
(driver 580, CUDA 13) every model load segfaulted in the tokenizer's regex setup when numpy, sentencepiece or
gguf had been imported before `llama_cpp` (their C++ runtime's symbols won), and loaded fine the other way round.
So the engine process imports llama.cpp before any extension module outside the standard library, and records
what was there before it: `doctor` and the tests read that record.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")


def _standard_library_dirs() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    return tuple(Path(paths[key]).resolve() for key in ("stdlib", "platstdlib") if key in paths)


def foreign_extensions_loaded() -> list[str]:
    """Extension modules (compiled code) outside the standard library already imported in this process, by
    name: each may bring a C++ runtime of its own."""
    stdlib = _standard_library_dirs()
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if not file.endswith(EXTENSION_SUFFIXES):
            continue
        path = Path(file).resolve()
        if not any(path.is_relative_to(directory) and "site-packages" not in path.parts for directory in stdlib):
            found.append(name)
    return sorted(found)


def load_order_note(before_llama: list[str]) -> str | None:
    """One line for doctor when something native came before llama.cpp in the engine process, else None."""
    if not before_llama:
        return None
    packages = sorted({name.split(".")[0] for name in before_llama})
    return (
        f"{', '.join(packages)} was loaded before llama.cpp in the engine process (by a sitecustomize, a .pth file "
        "or PYTHONSTARTUP): CUDA builds of llama.cpp can crash at model load in that order; remove that import "
        "from Python's startup for localchat's environment"
    )
