#!/usr/bin/env python3
"""Build and install llama-cpp-python with flags that work on this CPU (what `make` runs before localchat is
installed; installed, the same is `localchat doctor --fix`). See localchat/build.py for why and how.

Usage: python3 scripts/install_llama_cpp.py [PYTHON]   (PYTHON: the interpreter to install into)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from localchat.build import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
