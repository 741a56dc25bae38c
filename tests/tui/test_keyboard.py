"""Every keystroke kept: keys that arrive in one burst (a fast typist, a text expander, tmux send-keys), keys typed
while a reply streams, a stop pressed before the reply starts, and quitting mid-reply."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.tui.sampling_panel import SamplingPanel
from localchat.tui.screens.dialogs import AskText
from localchat.tui.widgets import Composer
from tests.tui.conftest import SIZE, burst, model_ready, wait_for, wait_until_replied


def user_messages(app) -> list[str]:
    return [r[0] for r in app.store.rows("SELECT content FROM messages WHERE role = 'user' ORDER BY id")]


async def test_a_message_and_enter_in_one_burst_is_sent_whole_five_times(make_app) -> None:
    app = make_app()
    texts = [f"What is {n}+{n}? Answer briefly." for n in range(2, 7)]
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        for count, text in enumerate(texts, 1):
            burst(app, text, "enter")
            await wait_until_replied(pilot, count)
        assert user_messages(app) == texts
        assert app.query_one(Composer).text == ""


async def test_the_counter_counts_a_message_sent_in_a_burst_while_its_reply_streams(make_app) -> None:
    """Enter arrives before the draft's count lands: the counter's base while the reply streams is the prompt as
    the session sent it, not the last count of a shorter draft (it showed 30 of a 516-token prompt)."""
    app = make_app()
    text = "the river runs past old stone bridges and quiet towns " * 12 + "Write a long story about this river."
    shown: list[int] = []
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        # 200 tokens, none copied by prompt lookup, stream for a second or more: the counter ("replying", twice a
        # second) shows them on any machine (an 11-token reply was over before a frame showed it on a fast one)
        app.session.default_sampling = SamplingParams(temperature=0, max_tokens=200)
        app.session.lookup = False
        burst(app, text)
        await wait_for(pilot, lambda: app.chat.budget.used > 100)
        # as the app stood when Enter came before the count of the whole draft (tmux: 30 of a 516-token prompt)
        app.chat.budget = replace(app.chat.budget, used=90)
        burst(app, "", "enter")

        def streaming_counted() -> bool:
            if app.chat.streaming is not None and "replying" in app.chat.status.counter.shown:
                shown.append(int(app.chat.status.counter.shown.split(" / ")[0].replace(",", "")))
            return bool(shown)

        await wait_for(pilot, streaming_counted)
        await wait_until_replied(pilot, 1)
        await wait_for(pilot, lambda: "replying" not in app.chat.status.counter.shown)
        finished = app.chat.status.counter.shown
        app.chat.show_reply_count(7, 0)  # as a count deferred to a refresh that came after the reply finished
        assert app.chat.status.counter.shown == finished
        reply = app.store.rows("SELECT stats FROM messages WHERE role = 'assistant'")[0][0]
    prompt_tokens = json.loads(reply)["prompt_tokens"]
    assert prompt_tokens > 100 and shown[0] > prompt_tokens


async def test_five_messages_in_one_burst_are_queued_and_all_sent_in_order(make_app) -> None:
    app = make_app()
    texts = [f"Say the number {n}." for n in range(1, 6)]
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        for text in texts:
            burst(app, text, "enter")
        burst(app, "still typing")  # keys after the last Enter stay in the composer
        await wait_for(pilot, lambda: len(user_messages(app)) == 5, timeout=120)
        await wait_until_replied(pilot, 5)
        assert user_messages(app) == texts
        branch = app.store.branch(app.conversation.id)
        assert [m.role for m in branch] == ["user", "assistant"] * 5  # each reply answers its own message
        assert app.query_one(Composer).text == "still typing"


async def test_keys_typed_while_a_reply_streams_are_kept(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        burst(app, "Tell me a long story about a river.", "enter")
        await wait_for(pilot, lambda: app.chat.streaming is not None)
        burst(app, "and a draft that is not sent")
        await wait_until_replied(pilot, 1)
        assert app.query_one(Composer).text == "and a draft that is not sent"
        assert user_messages(app) == ["Tell me a long story about a river."]


async def test_a_newline_key_in_a_burst_lands_where_it_was_typed(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        burst(app, "first line", "ctrl+j")
        burst(app, "second line")
        await wait_for(pilot, lambda: app.query_one(Composer).text.endswith("second line"))
        assert app.query_one(Composer).text == "first line\nsecond line"


async def test_a_stop_pressed_before_the_reply_starts_stops_it(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        # Esc right behind Enter: the reply is still being planned when the stop arrives.
        burst(app, "Write a very long story about a town.", "enter", "escape")
        await wait_until_replied(pilot, 1)
        reply = app.store.branch(app.conversation.id)[-1]
        assert reply.role == "assistant" and reply.status == "cancelled"


@pytest.mark.parametrize("dialog", [None, "ctrl+s", "ctrl+t", "ctrl+l", "f2", "f8"])
async def test_quit_mid_reply_stores_the_partial_reply_and_ends_the_engine(make_app, dialog: str | None) -> None:
    """Ctrl+Q quits from a dialog too (a modal screen cuts the app's non-priority keys: it did nothing there)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        burst(app, "Write a very long story about a town with many chapters.", "enter")
        await wait_for(pilot, lambda: app.chat.streaming is not None and len(app.chat.streaming.text) > 20)
        pid, chat = app.session.engine.pid, app.conversation.id
        burst(app, "unsent draft")
        await pilot.pause(0.1)
        if dialog:
            await pilot.press(dialog)
            await wait_for(pilot, lambda: app.screen is not app.screen_stack[0])
        await pilot.press("ctrl+q")
        assert app.return_code == 0  # it quit, before the test's end would close it
    reply = app.store.branch(chat)[-1]
    assert reply.role == "assistant" and reply.status == "cancelled" and reply.content
    assert not _alive(pid)
    assert app.store.setting(f"draft:{chat}") == "unsent draft"


async def test_a_draft_comes_back_with_its_chat(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        first = app.conversation.id
        burst(app, "half a thought")
        await wait_for(pilot, lambda: app.query_one(Composer).text == "half a thought")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.conversation.id != first)
        assert app.query_one(Composer).text == ""
        await app.open_conversation(first)
        assert app.query_one(Composer).text == "half a thought"


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that nobody reaped still answers kill(0): count it as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


async def test_keys_typed_as_a_dialog_closes_go_to_the_composer(make_app) -> None:
    from localchat.tui.screens.models import ModelPicker

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        burst(app, "", "escape")
        burst(app, "hi")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelPicker))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        burst(app, "", "enter")  # choose the highlighted model (the loaded one) and keep typing
        burst(app, " there")
        await wait_for(pilot, lambda: app.query_one(Composer).text == "hi there")
        await model_ready(pilot)


async def test_keys_right_behind_a_key_that_opens_a_dialog_or_moves_the_focus_go_there(make_app) -> None:
    """F2, ctrl+f and F5 take effect after the App has read the keys behind them (a screen mounts, the focus
    moves on a callback): in one burst those keys still land in the dialog, the search and the lab, in order."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        burst(app, "", "f2", "ctrl+u")  # the dialog opens with the title in it: clear it, then a new one
        burst(app, "Rivers", "enter")
        burst(app, "hi")  # after the dialog has closed: the composer's
        await wait_for(pilot, lambda: not isinstance(app.screen, AskText) and app.query_one(Composer).text == "hi")
        assert app.store.conversation(app.conversation.id).title == "Rivers"
        assert user_messages(app) == []

        burst(app, "", "ctrl+f")
        burst(app, "riv")
        await wait_for(pilot, lambda: app.query_one("#search").value == "riv")
        assert app.query_one(Composer).text == "hi"

        lab = app.query_one(SamplingPanel)
        burst(app, "", "f5")
        burst(app, "T")  # the lab's key: temperature up
        await wait_for(pilot, lambda: (app.store.conversation(app.conversation.id).sampling or {}).get("temperature"))
        assert app.focused is lab and app.query_one(Composer).text == "hi"


async def test_editing_keys_in_a_burst_act_where_they_were_typed(make_app) -> None:
    """Backspace and the arrows act through bindings, once the key has come back up to the App: the letters typed
    behind them must not overtake them."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        composer = app.query_one(Composer)
        burst(app, "abc", "backspace")
        burst(app, "d", "left", "left")
        burst(app, "X", "end")
        burst(app, "e", "ctrl+w")  # the word left of the cursor: all of it
        burst(app, "new words", "home")
        burst(app, ">")
        await wait_for(pilot, lambda: composer.text.endswith("words"))
        await pilot.pause(0.3)
        assert composer.text == ">new words"
