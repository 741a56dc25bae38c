"""The saved-states folder as files (engine/saved_states.py writes them): how much it holds, and clearing it.
No llama.cpp here: `localchat cache` and `doctor` read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".state"


@dataclass(frozen=True)
class Usage:
    files: int
    bytes: int


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def usage(root: Path) -> Usage:
    files = list(root.glob(f"*/*{SUFFIX}")) if root.is_dir() else []
    return Usage(len(files), sum(file_size(f) for f in files))


def clear(root: Path) -> Usage:
    """Delete every saved state (and any partial write); what was deleted."""
    gone = usage(root)
    for file in root.glob(f"*/*{SUFFIX}*") if root.is_dir() else []:
        file.unlink(missing_ok=True)
    return gone
