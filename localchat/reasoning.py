"""Thinking models: their reasoning apart from their answer, and what their chat templates offer (pure).

A thinking model writes its reasoning first, between markers: `<think>…</think>` (Qwen3, SmolLM3, DeepSeek-R1
distills, MiniCPM, Phi-4 reasoning) or Gemma 4's `<|channel>thought…<channel|>`. Many templates open the block in
the prompt themselves (Qwen3.5 and the R1 distills end the generation prompt with `<think>\\n`): the reply then
starts inside the reasoning and only the closing marker arrives.

Used by the engine on each generated token (so the reasoning's token count is exact) and by anything else that
receives a model's raw text. Lives below both the engine and the chat layer: neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# (opening, closing) markers of a reasoning block.
MARKERS: tuple[tuple[str, str], ...] = (("<think>", "</think>"), ("<|channel>thought", "<channel|>"))

# none: no reasoning in this reply; open: reasoning that never closed (the reply ended mid-thought, kept as such);
# closed: reasoning, then the answer; stray: a closing marker with no opening one (kept in the answer as written).
ReasoningState = Literal["none", "open", "closed", "stray"]

# How a model's chat template lets a chat turn thinking on or off:
# switch: an `enable_thinking` variable (Qwen3, SmolLM3, Gemma 4, MiniCPM5); soft: a `/think` or `/no_think` flag
# in the system prompt (Nemotron Nano v2); always: no switch, and the prompt opens the reasoning block (DeepSeek-R1
# distills); none: none of these (a model may still open a block itself: it is split all the same).
ThinkingSupport = Literal["switch", "soft", "always", "none"]


def opened_by_prompt(prompt: str) -> str | None:
    """The opening marker a rendered prompt ends with (the reply starts inside the reasoning), else None."""
    tail = prompt.rstrip()
    return next((opening for opening, _ in MARKERS if tail.endswith(opening)), None)


@dataclass(frozen=True)
class Split:
    """What one piece of streamed text added to the reasoning and to the answer."""

    reasoning: str = ""
    answer: str = ""


class ReasoningSplitter:
    """Feed a reply's text as it streams; each piece comes back split into reasoning and answer.

    An opening marker counts only at the start of the reply (a model quoting `<think>` mid-answer is answer
    text). Text that may be the start of a marker is held back until the next piece tells; `finish` gives it out.
    The whitespace right inside the markers is dropped, as templates drop it when they render history."""

    def __init__(self, opened: str | None = None) -> None:
        """`opened`: the opening marker the prompt ended with (`opened_by_prompt`), so the reply starts inside."""
        self.state: ReasoningState = "none"
        self._closing = ""
        self._pending = ""  # held back: may be (the start of) a marker
        self._at_start = True  # no answer text yet: an opening marker may still come
        self._trim = False  # drop whitespace at the start of what comes next (just inside or after a marker)
        self._answer_tail = ""  # the end of the answer so far, to see a stray closing marker split across pieces
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        if opened is not None:
            self._open(opened)

    @property
    def thinking(self) -> bool:
        """Inside the reasoning now."""
        return self.state == "open"

    def _open(self, opening: str) -> None:
        self.state = "open"
        self._closing = dict(MARKERS)[opening]
        self._at_start = False
        self._trim = True

    def feed(self, text: str) -> Split:
        text = self._pending + text
        self._pending = ""
        reasoning, answer = [], []
        while text:
            if self._trim:
                text = text.lstrip()
                if not text:
                    break
                self._trim = False
            if self._at_start:
                head = text.lstrip()
                opening = next((o for o, _ in MARKERS if head.startswith(o)), None)
                if opening is not None:
                    self._open(opening)
                    text = head[len(opening) :]
                    continue
                if any(o.startswith(head) for o, _ in MARKERS):
                    self._pending = text  # "<thi": wait for the rest
                    break
                self._at_start = False
            if self.state == "open":
                cut = text.find(self._closing)
                if cut >= 0:
                    reasoning.append(text[:cut])
                    text = text[cut + len(self._closing) :]
                    self.state = "closed"
                    self._trim = True
                    continue
                keep = _partial_suffix(text, self._closing)
                reasoning.append(text[: len(text) - keep])
                self._pending = text[len(text) - keep :] if keep else ""
                break
            answer.append(text)
            self._see_answer(text)
            break
        split = Split("".join(reasoning), "".join(answer))
        self.reasoning.append(split.reasoning)
        self.answer.append(split.answer)
        return split

    def _see_answer(self, text: str) -> None:
        if self.state != "none":
            return
        seen = self._answer_tail + text
        if any(closing in seen for _, closing in MARKERS):
            self.state = "stray"
        longest = max(len(closing) for _, closing in MARKERS)
        self._answer_tail = seen[-longest:]

    def finish(self) -> Split:
        """The reply ended: what was held back goes where it was heading (an unfinished marker is text)."""
        text, self._pending = self._pending, ""
        if not text:
            return Split()
        if self.state == "open":
            split = Split(reasoning=text)
        else:
            split = Split(answer=text)
            self._see_answer(text)
        self.reasoning.append(split.reasoning)
        self.answer.append(split.answer)
        return split

    def result(self) -> tuple[str, str]:
        """(reasoning, answer) of everything fed, whitespace at the reasoning's end dropped."""
        return "".join(self.reasoning).rstrip(), "".join(self.answer)


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of `text` that is a start of `marker` (0 when none)."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


def soft_switch(messages: list[dict], thinking: bool) -> list[dict]:
    """The `/think` or `/no_think` flag at the end of the system prompt (one is added when there is none), for
    templates whose switch is that flag."""
    flag = "/think" if thinking else "/no_think"
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        return [{**first, "content": f"{first['content'].rstrip()} {flag}"}, *messages[1:]]
    return [{"role": "system", "content": flag}, *messages]
