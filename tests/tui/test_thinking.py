"""A thinking model's reply in the app: reasoning streamed dimmed above the answer and folded when it starts,
stored apart, never sent back; the per-chat switch; exports keep both. Real engine, real model (tests/thinking.py
says how the small model is made to think)."""

from __future__ import annotations

import json
from pathlib import Path

from localchat.chat.sampling import SamplingParams
from localchat.config import paths
from localchat.engine.protocol import ChatMessage
from localchat.tui.app import LocalchatApp
from localchat.tui.messages import BudgetCounted
from localchat.tui.reasoning_block import ReasoningBlock
from localchat.tui.widgets import ContextCounter
from tests.thinking import QUESTION, few_shot
from tests.tui.conftest import SIZE, model_ready, send, views, wait_for

GREEDY = {"temperature": 0.0, "max_tokens": 40}


def store_examples(app: LocalchatApp, opening: str = "<think>\n") -> None:
    """Earlier turns that reason before they answer (as text: a model that wrote its tags into the answer)."""
    chat = app.conversation
    parent = None
    for user, assistant in few_shot(opening):
        parent = app.store.add_message(chat.id, "user", user, parent).id
        parent = app.store.add_message(chat.id, "assistant", assistant, parent).id
    app.store.update_conversation(chat.id, sampling=GREEDY)


async def test_reasoning_streams_above_the_answer_folds_and_is_stored_apart(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        store_examples(app)
        await app.chat.open(app.conversation.id)
        seen_open: list[bool] = []

        def watch() -> bool:  # while it streams: the block is open; once the answer starts it folds
            block = views(app)[-1].reasoning if views(app) else None
            if block is not None and app.chat.streaming is not None:
                seen_open.append(not block.collapsed)
            return False

        app.set_interval(0.01, watch)
        await send(pilot, QUESTION)
        reply = app.store.branch(app.conversation.id)[-1]
        assert reply.reasoning and reply.content and "think>" not in reply.content + reply.reasoning
        assert reply.stats["reasoning_state"] == "closed" and reply.stats["reasoning_tokens"] > 0
        view = views(app)[-1]
        block = view.reasoning
        assert block is not None and block.collapsed and block.text == reply.reasoning
        assert block.title.startswith("Thought") and f"{reply.stats['reasoning_tokens']:,} tokens" in block.title
        assert view.text == reply.content
        assert True in seen_open  # it was shown open while the reasoning streamed
        # The next prompt carries the answer alone: reasoning is never sent back.
        await send(pilot, "And of Spain?")
        sent = app.store.branch(app.conversation.id)[-1].stats["prompt_tokens"]
        history = [ChatMessage(m.role, m.content) for m in app.store.branch(app.conversation.id)[:-1]]
        assert sent == app.session.engine.count_chat_tokens(history)
        assert reply.reasoning not in "".join(m.content for m in history)
        # Exports keep both, marked.
        app.export("json")
        app.export("md")
        exported = json.loads((app.paths.data_dir / "exports" / f"chat-{app.conversation.id}.json").read_text())
        kept = [m for m in exported["messages"] if m.get("reasoning_content")]
        assert kept and kept[0]["reasoning_content"] == reply.reasoning and kept[0]["content"] == reply.content
        markdown = (app.paths.data_dir / "exports" / f"chat-{app.conversation.id}.md").read_text()
        assert f"<details><summary>Reasoning</summary>\n\n{reply.reasoning}\n\n</details>" in markdown
    # Reopened: the reasoning is there, folded.
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        blocks = list(app.query(ReasoningBlock))
        assert [b.text for b in blocks] == [reply.reasoning] and blocks[0].collapsed


async def test_the_thinking_switch_is_per_chat_visible_and_counted(thinking_model_path: Path) -> None:
    app = LocalchatApp(paths().ensure(), str(thinking_model_path))
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        status = app.chat.query_one("#model-name")
        assert str(status.render()).endswith("· thinking on")  # Qwen3.5's default
        app.store.update_conversation(app.conversation.id, sampling=GREEDY)
        await send(pilot, QUESTION)
        reply = app.store.branch(app.conversation.id)[-1]
        # The prompt opened <think> and the small model never closed it: kept, and shown as such.
        assert reply.stats["reasoning_state"] == "open" and reply.reasoning and reply.content == ""
        block = views(app)[-1].reasoning
        assert not block.collapsed and block.title.startswith("Reasoning only: the reply ended before its answer")
        history = [ChatMessage("user", QUESTION), ChatMessage("user", "")]  # the reasoning-only reply is not sent
        reply_budget = SamplingParams(**GREEDY).max_tokens
        expected = app.session.engine.count_chat_tokens(history, False) + reply_budget  # the empty think block
        thinking_on = app.chat.budget
        assert expected != thinking_on.used
        await pilot.press("f4")
        await wait_for(pilot, lambda: str(status.render()).endswith("· thinking off"))
        assert app.store.conversation(app.conversation.id).thinking is False
        # A count begun before the switch may finish after the recount: it must not be the one left showing.
        await wait_for(pilot, lambda: app.chat.budget.used == expected)
        # A count with thinking on that lands late (as a counting thread can) is dropped, not shown.
        app.chat.post_message(BudgetCounted(thinking_on, app.chat.composer.text, app.chat.count_serial - 1))
        await pilot.pause(0.5)
        assert app.chat.budget.used == expected
        await send(pilot, "Capital of Spain?")
        last = app.store.branch(app.conversation.id)[-1]
        assert last.content and not last.reasoning and "reasoning_state" not in last.stats
        assert "reasoning" not in str(app.query_one(ContextCounter).render())


async def test_a_stray_closing_marker_is_kept_in_the_answer_and_said(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        chat = app.conversation
        store_examples(app, opening="Thinking: ")  # no opening marker: the reply closes one anyway
        await app.chat.open(chat.id)
        await send(pilot, QUESTION)
        reply = app.store.branch(chat.id)[-1]
        assert reply.stats["reasoning_state"] == "stray" and "</think>" in reply.content and not reply.reasoning
        view = views(app)[-1]
        assert view.reasoning is None and "</think>" in view.text
        assert "a closing reasoning marker with no opening one, kept as written" in str(
            view.query_one(".stats").render()
        )
