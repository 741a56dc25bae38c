"""Drive the real app (real engine, real SmolLM2 model) with Textual's pilot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual import events

from localchat.config import paths
from localchat.tui.app import LocalchatApp
from localchat.tui.widgets import Composer, MessageView

SIZE = (140, 40)


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)
        await asyncio.sleep(0.05)


async def model_ready(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.session is not None and app.session.engine.model is not None)
    await wait_for(pilot, lambda: app.chat.budget.n_ctx > 0)


async def send(pilot, text: str) -> None:
    app = pilot.app
    before = len(app.store.rows("SELECT id FROM messages WHERE role = 'assistant'"))
    composer = app.query_one(Composer)
    composer.text = text
    composer.focus()
    await pilot.press("enter")
    await wait_until_replied(pilot, before + 1)


async def wait_until_replied(pilot, replies: int) -> None:
    app = pilot.app

    def done() -> bool:
        rows = app.store.rows("SELECT status FROM messages WHERE role = 'assistant'")
        return len(rows) >= replies and all(r[0] != "streaming" for r in rows) and app.chat.streaming is None

    await wait_for(pilot, done)
    await pilot.pause(0.2)


def views(app) -> list[MessageView]:
    return list(app.query(MessageView))


@pytest.fixture(autouse=True)
def no_bundled_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app as a plain `pip install` leaves it: no bundled model (the test venv has its package, for the
    engine tests); a test that wants it puts it back (bundled.BUNDLED = (bundled.STARTER,))."""
    from localchat.models import bundled

    monkeypatch.setattr(bundled, "BUNDLED", ())


@pytest.fixture
def make_app(model_path: Path):
    def make(model: str | None = str(model_path), keymap: dict[str, str] | None = None) -> LocalchatApp:
        return LocalchatApp(paths().ensure(), model, keymap)

    return make


def burst(app, text: str, *then: str) -> None:
    """Deliver `text` and then keys such as "enter" to the app at once, with no pause between them: the way a
    terminal hands over a burst of input. (Pilot.press waits for the app to be idle after every key.)"""
    for char in text:
        key = {" ": "space", "?": "question_mark", "+": "plus", ".": "full_stop"}.get(char, char)
        app.post_message(events.Key(key, char))
    for key in then:
        app.post_message(events.Key(key, None))
