"""Context-window accounting: what fits in n_ctx, and which old turns must be left out.

Pure arithmetic on exact token counts (the engine measures each turn with the model's own tokenizer and chat
template). Old turns are dropped oldest first, a user message together with the replies that follow it, so
the kept history never starts with an orphaned reply. The system prompt and the newest user message are never
dropped; when even they do not fit, `ContextOverflow` says by how many tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from localchat.errors import ContextOverflow


@dataclass(frozen=True)
class Turn:
    role: str
    tokens: int


@dataclass(frozen=True)
class ContextFit:
    n_ctx: int
    prompt_tokens: int  # system + kept history + newest + template overhead
    reply_budget: int
    dropped: tuple[int, ...]  # indices into history, oldest first

    @property
    def used(self) -> int:
        return self.prompt_tokens + self.reply_budget

    @property
    def left(self) -> int:
        return self.n_ctx - self.used


def _group_starts(history: Sequence[Turn]) -> list[int]:
    """Indices where a droppable group begins: each user message, plus index 0."""
    return [i for i, turn in enumerate(history) if i == 0 or turn.role == "user"]


def fit_context(
    *,
    n_ctx: int,
    reply_budget: int,
    history: Sequence[Turn] = (),
    system: int = 0,
    newest: int = 0,
    overhead: int = 0,
) -> ContextFit:
    """Keep as much recent history as fits beside the system prompt, newest message and reply budget."""
    if min(n_ctx, reply_budget, system, newest, overhead) < 0 or any(t.tokens < 0 for t in history):
        raise ValueError("token counts must not be negative")
    fixed = system + newest + overhead
    if fixed + reply_budget > n_ctx:
        raise ContextOverflow(fixed + reply_budget, n_ctx)
    # Drop whole groups, oldest first, until the rest fits; `cut` is the first kept history index.
    before = list(accumulate((t.tokens for t in history), initial=0))  # before[i]: tokens of history[:i]
    cut = len(history)
    for start in _group_starts(history):
        if fixed + before[-1] - before[start] + reply_budget <= n_ctx:
            cut = start
            break
    kept = before[-1] - before[cut]
    return ContextFit(
        n_ctx=n_ctx,
        prompt_tokens=fixed + kept,
        reply_budget=reply_budget,
        dropped=tuple(range(cut)),
    )
