"""Fixed texts for `localchat bench`'s prompt-lookup cases (the edit case's file is a copy frozen on 2026-12-03,
so figures from different days measure the same work)."""

from __future__ import annotations

from pathlib import Path

EDIT_REQUEST = "Return this code with the function `fit_context` renamed to `fit_window`. Reply with the code only."
PROSE_REQUEST = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def edit_source() -> str:
    """A ~1,600-token Python file (localchat's own chat/budget.py and engine/sampler.py as they were), to be
    returned with one function renamed: a reply that is mostly a copy of the prompt."""
    return Path(__file__).with_name("bench_edit_case.txt").read_text(encoding="utf-8")
