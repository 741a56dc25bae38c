"""A conversation as Markdown or as OpenAI-style JSON messages (pure).

A thinking model's reasoning is kept, marked as such: `reasoning_content` beside `content` in JSON (the field
llama-server, vLLM and DeepSeek's API use), a folded "Reasoning" block in Markdown."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from localchat.errors import LocalchatError
from localchat.store.db import Conversation, Message
from localchat.text import inert


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    model: str | None = None
    reasoning: str | None = None
    sampling: dict | None = None  # the settings that produced a reply


def turns_of(conversation: Conversation, branch: Sequence[Message]) -> list[Turn]:
    """The shown branch, system prompt first; a reply with nothing in it (stopped before its first token) is left
    out, one with reasoning alone is kept."""
    turns = [Turn("system", conversation.system_prompt)] if conversation.system_prompt else []
    turns += [
        Turn(m.role, m.content, m.model, m.reasoning, (m.stats or {}).get("sampling"))
        for m in branch
        if m.content or m.reasoning
    ]
    return turns


def to_openai_json(turns: Sequence[Turn]) -> str:
    messages = [
        {"role": t.role, "content": t.content}
        | ({"reasoning_content": t.reasoning} if t.reasoning else {})
        | ({"model": t.model, "sampling": t.sampling} if t.sampling else {})
        for t in turns
    ]
    return json.dumps({"messages": messages}, indent=2, ensure_ascii=False)


def to_markdown(title: str, turns: Sequence[Turn]) -> str:
    """Meant to be read, also with `cat` in a terminal: control characters a model wrote are made inert (the
    JSON export keeps the exact text, escaped)."""
    lines = [f"# {title}", ""]
    for turn in turns:
        heading = {"system": "System", "user": "You", "assistant": "Assistant"}[turn.role]
        lines += [f"## {heading}" + (f" ({turn.model})" if turn.model else ""), ""]
        if turn.reasoning:
            lines += ["<details><summary>Reasoning</summary>", "", turn.reasoning.rstrip(), "", "</details>", ""]
        lines += [turn.content.rstrip(), ""]
    return inert("\n".join(lines))


def export_chat(
    conversation: Conversation, branch: Sequence[Message], folder: Path, kind: Literal["md", "json"]
) -> Path:
    """The shown branch written to FOLDER/chat-ID.md (or .json), atomically: a crash or a full disk leaves the
    previous export or this one, never half of one."""
    turns = turns_of(conversation, branch)
    text = to_markdown(conversation.title, turns) if kind == "md" else to_openai_json(turns)
    path = folder / f"chat-{conversation.id}.{kind}"
    temporary = path.with_suffix(f".{kind}.tmp{os.getpid()}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder may not even exist
            temporary.unlink(missing_ok=True)
        raise LocalchatError(
            f"cannot write {path} ({exc.strerror or exc}): free some space or check the folder"
        ) from None
    return path
