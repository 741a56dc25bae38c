"""Real thinking replies from the tests' small model, with no canned text.

SmolLM2-135M never thinks on its own, but it copies a format it has just seen: after three earlier turns that
reason in `<think>…</think>` before answering, its own greedy reply does the same (and when they open with "Thinking: "
instead of the marker, it writes a stray closing one). With Qwen3.5's chat template, which opens `<think>` in the
prompt when thinking is on, it replies inside its reasoning and never closes it.
"""

from __future__ import annotations

from pathlib import Path

from localchat.engine.protocol import ChatMessage

QWEN35_TEMPLATE = Path(__file__).parent / "data" / "templates" / "Qwen3.5-4B.jinja"

EXAMPLES = [
    ("Hi", "A greeting.", "Hello!"),
    ("What is 1+1?", "Simple sum.", "2"),
    ("Capital of Italy?", "Geography.", "Rome"),
]
QUESTION = "Capital of France?"


def few_shot(opening: str = "<think>\n") -> list[tuple[str, str]]:
    """(user, assistant) turns that think before they answer, opening with `opening`."""
    return [(user, f"{opening}{thought}\n</think>\n\n{answer}") for user, thought, answer in EXAMPLES]


def few_shot_messages(opening: str = "<think>\n", question: str = QUESTION) -> tuple[ChatMessage, ...]:
    messages = []
    for user, assistant in few_shot(opening):
        messages += [ChatMessage("user", user), ChatMessage("assistant", assistant)]
    return (*messages, ChatMessage("user", question))
