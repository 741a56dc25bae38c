"""Exact token counts of a conversation, at a cost in proportion to what changed since the last count.

A message's share of the prompt is the difference between the token counts of two renders: the conversation up
to it, and up to the one before. Rendering is cheap (300 messages: 1 ms); tokenizing is not (50 ms for those
300), so tokenizing every prefix on every keystroke grows with the square of the chat's length.

Two facts keep the counts exact without that:
- The render of messages[:i] depends on messages[:i] only (and on the day: templates may print the date), so
  the counts of a prefix counted before are kept, and only the messages after it are counted.
- llama.cpp splits a text at special tokens before it tokenizes the pieces between them. When the render up to
  message i is a prefix of the render up to i+1, and the added text starts with a special token (ChatML's
  `<|im_start|>`, Gemma's `<start_of_turn>`...), the tokens of the whole are the tokens of the prefix followed
  by those of the added text: only the added text is tokenized. Otherwise the whole render is (still exact).

Some templates refuse a prefix (Qwen3.5's raises "No user query found" for a system prompt alone): such a
message shares its count with the next one, split by the tokens of its own text. The total stays exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from localchat.engine.protocol import ChatMessage, ConversationTokens
from localchat.errors import TemplateRefused

KEPT_CONVERSATIONS = 8  # the last few chats counted (switching between chats keeps theirs)


@dataclass
class _Counted:
    messages: tuple[ChatMessage, ...]
    totals: list[int | None]  # totals[i]: tokens of the render of messages[: i + 1]; None: the template refused it
    day: str


class ConversationCounter:
    def __init__(
        self,
        render: Callable[[Sequence[ChatMessage], bool], str],
        count_prompt: Callable[[str], int],
        count_continuation: Callable[[str], int | None],
    ) -> None:
        """`render(messages, add_generation_prompt)`; `count_prompt(text)`: tokens of a whole prompt (BOS
        included); `count_continuation(text)`: tokens of text that follows a prompt, or None when that text
        does not start with a special token (so that counting it alone might not be exact)."""
        self._render = render
        self._count_prompt = count_prompt
        self._count_continuation = count_continuation
        self._kept: list[_Counted] = []

    def measure(self, messages: Sequence[ChatMessage]) -> ConversationTokens:
        messages = tuple(messages)
        day = time.strftime("%Y-%m-%d")
        used, known, totals = self._best_known(messages, day)
        previous_text = self._render_or_none(messages[:known]) or "" if known else ""
        previous_total = totals[-1] if totals and totals[-1] is not None else 0
        for end in range(known + 1, len(messages) + 1):
            text = self._render_or_none(messages[:end]) if end < len(messages) else self._render(messages, False)
            if text is None:
                totals.append(None)
                previous_text = ""  # the next prefix is counted whole
                continue
            previous_total = self._extend(previous_text, previous_total, text)
            totals.append(previous_total)
            previous_text = text
        total = self._extend(previous_text, previous_total, self._render(messages, True))
        # This count replaces the one it started from (the same chat, typed on or edited); others are kept.
        kept = [c for i, c in enumerate(self._kept) if i != used]
        self._kept = [_Counted(messages, totals, day), *kept][:KEPT_CONVERSATIONS]
        return ConversationTokens(self._shares(messages, totals), total - previous_total)

    def _render_or_none(self, messages: Sequence[ChatMessage]) -> str | None:
        try:
            return self._render(messages, False)
        except TemplateRefused:
            return None

    def _shares(self, messages: tuple[ChatMessage, ...], totals: list[int | None]) -> tuple[int, ...]:
        """Each message's tokens; a refused prefix's message takes the tokens of its own text from the next."""
        shares, before, waiting = [], 0, []
        for message, total in zip(messages, totals, strict=True):
            if total is None:
                waiting.append(len(shares))
                shares.append(self._count_prompt(message.content))
                continue
            together = total - before
            for index in waiting:
                shares[index] = min(shares[index], together)
                together -= shares[index]
            waiting = []
            shares.append(together)
            before = total
        return tuple(shares)

    def _extend(self, previous_text: str, previous_total: int, text: str) -> int:
        if previous_text and text.startswith(previous_text):
            added = self._count_continuation(text[len(previous_text) :])
            if added is not None:
                return previous_total + added
        return self._count_prompt(text)

    def _best_known(self, messages: tuple[ChatMessage, ...], day: str) -> tuple[int | None, int, list[int]]:
        """Which kept count shares the longest prefix with `messages` (today), that length, and its totals."""
        used, best, totals = None, 0, []
        for index, counted in enumerate(self._kept):
            if counted.day != day:
                continue
            same = 0
            limit = min(len(counted.messages), len(messages))
            while same < limit and counted.messages[same] == messages[same]:
                same += 1
            if same > best:
                used, best, totals = index, same, counted.totals[:same]
        return used, best, list(totals)
