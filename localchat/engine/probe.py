"""`python -m localchat.engine.probe`: what this llama.cpp build can do, as one JSON line on stdout.

Run in its own process by `localchat doctor`, so a build that cannot even be imported, or that crashes, is
reported instead of taking the command down with it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict


def probe() -> dict[str, object]:
    import localchat.engine.worker  # noqa: F401  (the engine process's own imports, up to llama.cpp)
    from localchat.engine.native import foreign_extensions_loaded

    before_llama = foreign_extensions_loaded()
    import llama_cpp as ll

    from localchat.engine.devices import list_devices

    ll.llama_backend_init()
    return {
        "llama_cpp_python": ll.__version__,
        "system_info": ll.llama_print_system_info().decode(errors="replace"),
        "gpu_offload": bool(ll.llama_supports_gpu_offload()),
        "mmap": bool(ll.llama_supports_mmap()),
        "devices": [asdict(d) for d in list_devices()],
        "native_before_llama": before_llama,
    }


if __name__ == "__main__":
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # backend init chatter (CUDA device lists) goes to stderr
    sys.stdout.write(json.dumps(probe()) + "\n")
