"""Snapshots of the main screens (pytest-textual-snapshot). Seeded store, no model loaded, cursor blink off,
so that nothing depends on the machine or the moment. Update with: pytest tests/tui --snapshot-update"""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.config import paths
from localchat.models.library import Library
from localchat.store.db import open_database
from localchat.tui.app import LocalchatApp
from localchat.tui.widgets import Composer

SIZE = (120, 36)


@pytest.fixture
def seeded(model_path: Path) -> LocalchatApp:
    state = paths().ensure()
    Library(state).import_file(model_path, "smol")  # a model exists, so the app opens on the chat
    store = open_database(state.database)
    chat = store.create_conversation("Rivers", system_prompt="Be brief.")
    question = store.add_message(chat.id, "user", "Write a haiku about rivers.", None)
    reply = store.add_message(
        chat.id,
        "assistant",
        "Water finds its way,\nstones remember every turn,\nsea waits patiently.",
        question.id,
        model="smol",
    )
    store.update_message(
        reply.id,
        reply.content,
        "complete",
        {"model": "smol", "completion_tokens": 19, "ttft_s": 0.12, "decode_tok_s": 110.5},
    )
    store.add_message(chat.id, "user", "Now in **Markdown** with code:\n\n```python\nprint('flow')\n```", reply.id)
    store.close()
    return LocalchatApp(state, None, None)


async def steady(pilot) -> None:
    pilot.app.screen_stack[0].query_one(Composer).cursor_blink = False
    await pilot.pause(0.3)


def test_chat_screen(seeded, snap_compare) -> None:
    assert snap_compare(seeded, terminal_size=SIZE, run_before=steady)


def test_settings_screen(seeded, snap_compare) -> None:
    async def open_settings(pilot) -> None:
        await steady(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)

    assert snap_compare(seeded, terminal_size=SIZE, run_before=open_settings)


def test_first_run_screen(snap_compare) -> None:
    app = LocalchatApp(paths().ensure(), None, None)

    async def welcome(pilot) -> None:
        from localchat.tui.screens.models import CatalogScreen
        from tests.tui.conftest import wait_for

        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CatalogScreen))
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=welcome)
