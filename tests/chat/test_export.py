"""Exports are written whole or not at all, and a folder that cannot be written is one line, not a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localchat.chat.export import export_chat
from localchat.errors import LocalchatError
from localchat.store.db import open_database


def test_an_export_replaces_the_last_one_whole_and_a_bad_folder_is_one_line(tmp_path: Path) -> None:
    store = open_database(tmp_path / "chat.db")
    chat = store.create_conversation("Rivers")
    question = store.add_message(chat.id, "user", "Name a river.", None)
    store.add_message(chat.id, "assistant", "The Rhine.", question.id)
    folder = tmp_path / "exports"
    path = export_chat(store.conversation(chat.id), store.branch(chat.id), folder, "json")
    assert [m["content"] for m in json.loads(path.read_text())["messages"]] == ["Name a river.", "The Rhine."]
    assert export_chat(store.conversation(chat.id), store.branch(chat.id), folder, "md").name == f"chat-{chat.id}.md"
    assert sorted(p.name for p in folder.iterdir()) == [f"chat-{chat.id}.json", f"chat-{chat.id}.md"]  # no leftovers
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(LocalchatError, match=r"cannot write .*chat-1\.json"):
        export_chat(store.conversation(chat.id), store.branch(chat.id), blocked / "exports", "json")
