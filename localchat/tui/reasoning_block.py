"""A thinking model's reasoning above its answer: streamed open and dimmed, folded when the answer starts, with
its time and token count in the title ("Thought for 12 s · 840 tokens"). Enter or a click on the title unfolds it."""

from __future__ import annotations

import time

from textual.widgets import Collapsible

from localchat.store.db import Message
from localchat.tui.markdown_body import MarkdownBody

TITLE_EVERY_S = 0.5  # while it streams, the title's seconds and tokens move twice a second


def reasoning_title(message: Message) -> str:
    """The title of a stored reply's reasoning, from its stats."""
    stats = message.stats or {}
    seconds, tokens = stats.get("thinking_s") or 0.0, stats.get("reasoning_tokens") or 0
    if stats.get("reasoning_state") == "open":
        ended = {"cancelled": "stopped", "error": "cut off by an error"}.get(message.status, "ended")
        return _titled(f"Reasoning only: the reply {ended} before its answer", seconds, tokens)
    return thought_title(seconds, tokens)


def thought_title(seconds: float, tokens: int) -> str:
    if seconds >= 0.5:
        return f"Thought for {seconds:.0f} s" + (f" · {tokens:,} tokens" if tokens else "")
    return _titled("Thought", 0.0, tokens)


def _titled(head: str, seconds: float, tokens: int) -> str:
    parts = ([f"{seconds:.0f} s"] if seconds >= 0.5 else []) + ([f"{tokens:,} tokens"] if tokens else [])
    return " · ".join([head, *parts])


class ReasoningBlock(Collapsible):
    DEFAULT_CSS = """
    ReasoningBlock { background: transparent; border-top: none; padding: 0; margin: 0 0 1 0; }
    ReasoningBlock > Contents { padding: 0 0 0 2; }
    ReasoningBlock MarkdownBody { color: $text-muted; text-style: italic; }
    """

    def __init__(self, text: str = "", *, title: str = "Thinking…", collapsed: bool = True) -> None:
        self.body = MarkdownBody(text)  # held here: it is streamed into before it is mounted
        super().__init__(self.body, title=title, collapsed=collapsed, classes="reasoning")
        self.started = time.monotonic()
        self.titled_at = 0.0
        self.answered = False

    @property
    def text(self) -> str:
        return self.body.text

    def start_stream(self, reserve: int) -> None:
        self.body.start_stream(reserve)

    def stream(self, text: str, tokens: int) -> None:
        """More reasoning: drawn as the answer is (only the changed lines), the title twice a second."""
        self.body.append(text)
        now = time.monotonic()
        if now - self.titled_at >= TITLE_EVERY_S:
            self.titled_at = now
            self.title = _titled("Thinking…", now - self.started, tokens)

    def answer_started(self, tokens: int) -> None:
        """The answer begins: the reasoning folds away, its title says what it took."""
        if not self.answered:
            self.answered = True
            self.collapsed = True
            self.title = thought_title(time.monotonic() - self.started, tokens)

    def show(self, message: Message) -> None:
        """The stored reply: its whole reasoning, rendered once; folded unless there is no answer to show."""
        self.body.update(message.reasoning or "")
        self.title = reasoning_title(message)
        if not message.content:
            self.collapsed = False
