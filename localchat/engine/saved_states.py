"""Saved KV states of recent chats: reopening a long chat restores what llama.cpp computed for it instead of
evaluating its whole history again (minutes for a long chat on a laptop CPU).

After a reply, the engine writes its sequence's state (`llama_state_seq_save_file`: the tokens, then the KV
cells) to a file named by those tokens, under a folder per model file, context size and llama.cpp build; a later
prompt that starts with a saved state's tokens restores it and evaluates only the rest. The folder is bounded
by a byte budget, least recently used first out. A file llama.cpp refuses (truncated, another build) is
deleted and the prompt is evaluated as if nothing was saved.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import llama_cpp as ll

from localchat.engine.state_files import SUFFIX, file_size

MIN_TOKENS = 256  # shorter chats evaluate in well under a second: not worth a file
MIN_GAIN = 64  # a saved state is restored only when it covers this many tokens more than the cache does
LOOKED_AT = 64  # the most recently used files compared with a prompt
_HEADER = struct.Struct("<III")  # magic, version, token count (llama.cpp's sequence state file)


def namespace(model: Path, n_ctx: int) -> str:
    """The folder for one model file (by its path, size and time), context size and llama.cpp build."""
    stat = model.stat()
    identity = f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{n_ctx}|{ll.__version__}"
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def saved_tokens(path: Path) -> list[int] | None:
    """The tokens a state file holds, read from its header (None: not a state file of this build)."""
    try:
        with path.open("rb") as file:
            magic, version, count = _HEADER.unpack(file.read(_HEADER.size))
            if magic != ll.LLAMA_STATE_SEQ_MAGIC or version != ll.LLAMA_STATE_SEQ_VERSION:
                return None
            data = file.read(4 * count)
    except (OSError, struct.error):
        return None
    if len(data) != 4 * count:
        return None
    return list(struct.unpack(f"<{count}i", data))


def _digest(path: Path) -> str:
    """The file's SHA-256, hex, 32 digits (~0.3 s a GB here: far less than evaluating the chat again)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()[:32]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` share from the start (the runner's cache reuse asks it too)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class SavedStates:
    """The saved states for one loaded model and context."""

    def __init__(self, root: Path, model: Path, n_ctx: int, budget_bytes: int) -> None:
        self.root = root
        self.folder = root / namespace(model, n_ctx)
        self.budget = budget_bytes
        self.n_ctx = n_ctx

    def _files(self) -> list[Path]:
        """Newest use first."""
        if not self.folder.is_dir():
            return []
        files = [f for f in self.folder.iterdir() if f.suffix == SUFFIX]
        return sorted(files, key=lambda f: -f.stat().st_mtime_ns if f.exists() else 0)

    def best(self, prompt: Sequence[int], cached: int) -> tuple[Path, int] | None:
        """The saved state sharing the longest start with `prompt`, if it beats the `cached` tokens by enough."""
        best: tuple[Path, int] | None = None
        for path in self._files()[:LOOKED_AT]:
            tokens = saved_tokens(path)
            if tokens is None:
                path.unlink(missing_ok=True)
                continue
            shared = common_prefix(tokens, prompt)
            if shared >= cached + MIN_GAIN and (best is None or shared > best[1]):
                best = (path, shared)
        return best

    def restore(self, ctx: ll.llama_context_p, path: Path) -> list[int] | None:
        """Load a state into sequence 0 (empty before); its tokens, or None when the file is damaged (its
        contents no longer hash to its name: llama.cpp asserts, not errs, on some damage) or llama.cpp refused it."""
        if _digest(path) != path.stem:
            path.unlink(missing_ok=True)
            return None
        tokens = (ll.llama_token * self.n_ctx)()
        count = ctypes.c_size_t(0)
        read = ll.llama_state_seq_load_file(ctx, str(path).encode(), 0, tokens, self.n_ctx, ctypes.byref(count))
        if not read:
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # used: last out
        return list(tokens[: count.value])

    def save(self, ctx: ll.llama_context_p, cached: Sequence[int]) -> Path | None:
        """Write sequence 0's state for `cached`; states it extends are deleted (the chat's earlier turns)."""
        if len(cached) < MIN_TOKENS:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f"{os.getpid()}{SUFFIX}.partial"
        array = (ll.llama_token * len(cached))(*cached)
        written = ll.llama_state_seq_save_file(ctx, str(partial).encode(), 0, array, len(cached))
        if not written:
            partial.unlink(missing_ok=True)
            return None
        path = self.folder / f"{_digest(partial)}{SUFFIX}"  # named by its contents: damage shows
        os.replace(partial, path)  # whole or not at all
        for other in self._files():
            tokens = saved_tokens(other) if other != path else None
            if tokens is not None and len(tokens) <= len(cached) and common_prefix(tokens, cached) == len(tokens):
                other.unlink(missing_ok=True)
        self._evict()
        return path

    def _evict(self) -> None:
        """Least recently used out until all folders fit the budget (other models' states count too)."""
        files = [f for f in self.root.glob(f"*/*{SUFFIX}")]
        files.sort(key=lambda f: f.stat().st_mtime_ns if f.exists() else 0)
        total = sum(file_size(f) for f in files)
        for file in files:
            if total <= self.budget:
                break
            total -= file_size(file)
            file.unlink(missing_ok=True)
