"""A conversation as Markdown or as OpenAI-style JSON messages (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from localchat.engine.protocol import ChatMessage
from localchat.text import inert


def to_openai_json(messages: Sequence[ChatMessage]) -> str:
    return json.dumps({"messages": [m.as_dict() for m in messages]}, indent=2, ensure_ascii=False)


def to_markdown(title: str, messages: Sequence[ChatMessage], models: Sequence[str | None] = ()) -> str:
    """Meant to be read, also with `cat` in a terminal: control characters a model wrote are made inert (the
    JSON export keeps the exact text, escaped)."""
    lines = [f"# {title}", ""]
    for index, message in enumerate(messages):
        model = models[index] if index < len(models) else None
        heading = {"system": "System", "user": "You", "assistant": "Assistant"}[message.role]
        lines += [f"## {heading}" + (f" ({model})" if model else ""), "", message.content.rstrip(), ""]
    return inert("\n".join(lines))
