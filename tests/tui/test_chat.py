"""The app driven as a person would, with the real engine and model."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import OptionList

from localchat.chat.sampling import SamplingParams
from localchat.config import paths
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.tui.app import LocalchatApp
from localchat.tui.screens.dialogs import AskText
from localchat.tui.screens.settings import SettingsScreen
from localchat.tui.widgets import Composer, ContextCounter
from tests.tui.conftest import SIZE, model_ready, send, views, wait_for, wait_until_replied


async def test_send_streams_a_reply_with_stats_and_keeps_it(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await send(pilot, "Name a colour.")
        user, reply = views(app)
        assert user.message.role == "user" and reply.message.role == "assistant"
        stored = app.store.message(reply.message.id)
        assert stored.status == "complete" and stored.content.strip()
        assert reply.text == stored.content
        stats = str(reply.query_one(".stats").render())
        assert "tokens" in stats and "tok/s" in stats and "TTFT" in stats
        # The settings that produced it are kept with it and shown under it.
        settings = app.session.sampling_for(app.conversation)
        assert stored.stats["sampling"] == settings.to_dict() and settings.summary() in stats
        assert stored.model == app.session.model_name
        assert app.chat.pacer.frames >= 1  # drawn through the paced frames (tui/pacing.py)
        assert app.query_one(Composer).cursor_blink  # steady only while a reply streams on busy cores
        conversation_id = app.conversation.id
    # Everything is there after a restart.
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)  # the last used model opens again
        assert app.conversation.id == conversation_id
        assert views(app)[0].message.content == "Name a colour."
        assert app.conversation.title == "Name a colour."


async def test_a_stats_line_wider_than_the_window_wraps_inside_it(make_app) -> None:
    # In a narrow window the stats (model, tokens, speed, drafts, settings, an error) must stay readable:
    # wrapped within the message, not cut at the edge.
    app = make_app()
    async with app.run_test(size=(70, 30)) as pilot:
        await model_ready(pilot)
        await send(pilot, "Name a colour.")
        reply = views(app)[-1]
        label = reply.query_one(".stats")
        text = str(label.render())
        assert len(text) > reply.content_region.width  # the case: longer than a line
        assert label.region.right <= reply.content_region.right
        assert label.size.height >= -(-len(text) // reply.content_region.width)  # as many lines as it needs


async def test_empty_message_is_not_sent(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        app.query_one(Composer).text = "   \n  "
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert views(app) == [] and app.store.rows("SELECT count(*) FROM messages")[0][0] == 0


async def test_counter_equals_the_models_tokenizer(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        draft = "How many tokens is this exactly, with the template?"
        app.query_one(Composer).text = draft
        await wait_for(pilot, lambda: "/ 4,096" in str(app.query_one(ContextCounter).render()))
        await pilot.pause(0.6)
        expected = app.session.engine.count_chat_tokens([ChatMessage("user", draft)]) + SamplingParams().max_tokens
        assert app.chat.budget.used == expected
        assert str(app.query_one(ContextCounter).render()).startswith(f"{expected:,} / 4,096")


async def test_stop_during_a_long_prompt(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        app.query_one(Composer).text = "The river runs past old stone bridges. " * 320  # ~3k tokens: seconds to read
        await pilot.pause(0.1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.streaming is not None)
        await pilot.pause(0.5)
        await pilot.press("escape")
        await wait_until_replied(pilot, 1)
        reply = app.store.branch(app.conversation.id)[-1]
        assert reply.status == "cancelled" and reply.stats["stop_reason"] == "cancelled"
        assert "stopped" in str(views(app)[-1].query_one(".stats").render())


async def test_regenerate_and_edit_keep_the_old_branches(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await send(pilot, "Say one word.")
        first_reply = views(app)[-1].message
        await pilot.press("ctrl+r")
        await wait_until_replied(pilot, 2)
        assert len(app.store.siblings(first_reply.id)) == 2  # the old reply is kept beside the new one
        assert views(app)[-1].message.id != first_reply.id
        original_question = views(app)[0].message
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, AskText))
        app.screen.query_one("#answer").value = "Say two words."
        await pilot.press("enter")
        await wait_until_replied(pilot, 3)
        assert views(app)[0].message.content == "Say two words."
        assert len(app.store.siblings(original_question.id)) == 2  # the edited question's branch is kept


async def test_settings_are_validated_saved_and_applied(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#temperature").value = "9"
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert "temperature must be between 0 and 5" in str(app.screen.query_one("#settings-error").render())
        app.screen.query_one("#temperature").value = "0"
        app.screen.query_one("#max_tokens").value = "3"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert app.store.conversation(app.conversation.id).sampling["max_tokens"] == 3
        await send(pilot, "Tell me a long story about a dragon.")
        assert app.store.branch(app.conversation.id)[-1].stats["completion_tokens"] <= 3


async def test_switching_models_keeps_the_conversation(make_app, model_path, tmp_path) -> None:
    import shutil

    from localchat.models.library import Library
    from localchat.tui.screens.models import ModelPicker

    other = tmp_path / "smol-b.gguf"  # another file: the library's smol-b is not the model opened by path
    shutil.copy(model_path, other)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        Library(app.paths).import_file(other, "smol-b")
        await model_ready(pilot)
        await send(pilot, "Hi")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        # The model opened by path is listed first and marked loaded, so one can switch back to it.
        lines = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert lines[0].startswith("● ") and lines[0].endswith("(loaded)") and "smol-b" in lines[1]
        await pilot.press("down", "enter")  # smol-b
        await wait_for(pilot, lambda: app.session.model_name == "smol-b")
        await send(pilot, "Hi again")
        replies = [v.message for v in views(app) if v.message.role == "assistant"]
        assert len(views(app)) == 4
        assert replies[0].model != "smol-b" and app.store.message(replies[1].id).model == "smol-b"


async def test_an_overflowing_paste_is_counted_and_shown_but_not_sent(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        app.query_one(Composer).text = "lorem ipsum dolor sit amet " * 40_000  # ~1 MB
        await wait_for(pilot, lambda: app.chat.budget.overflow_by > 0, timeout=120)
        assert "over by" in str(app.query_one(ContextCounter).render())
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.store.rows("SELECT count(*) FROM messages")[0][0] == 0


async def test_escape_sequences_in_output_are_inert(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.store.create_conversation()
        hostile = "copy \x1b]52;c;aGVsbG8=\x07 and \x1b[31mred\x1b[0m and \x1b]8;;http://x\x07link"
        app.store.add_message(chat.id, "assistant", hostile, None)
        await app.open_conversation(chat.id)
        await pilot.pause(0.3)
        drawn = "\n".join(views(app)[-1].body.rendered_lines())  # what reaches the screen
        assert "\x1b" not in drawn and "\x07" not in drawn and "␛]52" in drawn


async def test_engine_crash_keeps_the_partial_reply_and_recovers(make_app) -> None:
    import os
    import signal

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        app.query_one(Composer).text = "The river runs past old stone bridges. " * 200
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.streaming is not None)
        os.kill(app.session.engine.pid, signal.SIGKILL)
        await wait_until_replied(pilot, 1)
        assert app.store.branch(app.conversation.id)[-1].status == "error"
        await send(pilot, "Hello?")  # a new engine starts and answers
        assert app.store.branch(app.conversation.id)[-1].status == "complete"
        # Killed mid-reply: the text so far is kept and its stats give its real token count, not 0.
        app.query_one(Composer).text = "Write a long story about a bridge."
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.streaming is not None and len(app.chat.streaming.text) > 40)
        os.kill(app.session.engine.pid, signal.SIGKILL)
        await wait_until_replied(pilot, 3)
        reply = app.store.branch(app.conversation.id)[-1]
        assert reply.status == "error" and len(reply.content) > 40
        tokens = reply.stats["completion_tokens"]
        assert tokens > 0  # the engine's own count of what streamed (it was 0 after a crash)
        assert f"{tokens} tokens" in str(views(app)[-1].query_one(".stats").render())


async def test_export_and_command_palette(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await send(pilot, "Hi \x1b]52;c;aGVsbG8=\x07")  # pasted escapes: a Markdown export may be `cat` to a terminal
        app.export("md")
        app.export("json")
        exported = json.loads((app.paths.data_dir / "exports" / f"chat-{app.conversation.id}.json").read_text())
        assert [m["role"] for m in exported["messages"]] == ["user", "assistant"]
        reply = app.store.branch(app.conversation.id)[-1]
        assert exported["messages"][1]["sampling"] == reply.stats["sampling"]
        assert exported["messages"][0]["content"] == "Hi \x1b]52;c;aGVsbG8=\x07"  # JSON: exact, escaped
        markdown = (app.paths.data_dir / "exports" / f"chat-{app.conversation.id}.md").read_text()
        assert "## You" in markdown and "## Assistant" in markdown
        assert "Hi ␛]52;c;aGVsbG8=\\x07" in markdown and "\x1b" not in markdown
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Regenerate", "Model", "Settings", "Prompts", "Export as Markdown", "Export as JSON"} <= titles


async def test_old_turns_that_will_not_fit_are_marked(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        chat = app.conversation
        parent = None
        for i in range(6):  # ~6 × 300 tokens of history
            role = "user" if i % 2 == 0 else "assistant"
            parent = app.store.add_message(chat.id, role, f"turn {i}: " + "stone bridge " * 150, parent).id
        app.store.update_conversation(chat.id, sampling={"max_tokens": 3000})
        await app.open_conversation(chat.id)
        app.query_one(Composer).text = "And now?"
        await wait_for(pilot, lambda: len(app.chat.budget.dropped_ids) > 0)
        await pilot.pause(0.3)
        marked = [v.message.content[:6] for v in views(app) if v.has_class("left-out")]
        assert marked and marked[0] == "turn 0"  # oldest first
        left_out = len(app.chat.budget.dropped_ids)
        assert f"{left_out} oldest messages will be left out" in str(app.query_one(ContextCounter).render()), left_out
        assert app.chat.budget.used <= app.chat.budget.n_ctx
        # What the counter says is what will be sent: the kept turns and the draft, counted again as a whole (the
        # first kept turn now carries the template's opening, counted with turn 0 in the whole chat's shares).
        kept = [ChatMessage(v.message.role, v.message.content) for v in views(app) if not v.has_class("left-out")]
        sent = app.session.engine.count_chat_tokens([*kept, ChatMessage("user", "And now?")])
        assert app.chat.budget.used == sent + 3000


async def test_copy_a_message_and_its_code_block(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")  # the first-run catalog
        chat = app.store.create_conversation()
        app.store.add_message(chat.id, "assistant", "Here:\n\n```python\nprint('hi')\n```\n", None)
        await app.open_conversation(chat.id)
        await pilot.pause(0.2)
        views(app)[-1].focus()
        await pilot.press("c")
        assert app.clipboard.startswith("Here:")
        await pilot.press("b")
        assert app.clipboard == "print('hi')\n"


async def test_settings_can_become_the_default_for_new_chats(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")  # the first-run catalog
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#temperature").value = "0.3"
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        first = app.conversation.id
        app.store.add_message(first, "user", "hello", None)  # a chat in use: ctrl+n makes another
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.conversation.id != first)
        assert app.session.sampling_for(app.conversation).temperature == 0.3
        assert app.store.setting("default_sampling")["temperature"] == 0.3


async def test_a_count_that_lands_while_a_dialog_is_open_updates_the_counter(make_app) -> None:
    """The counter is counted off the UI thread; its result may land while a dialog covers the chat."""
    from localchat.tui.widgets import Composer, ContextCounter

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        before = app.chat.budget.used
        app.query_one(Composer).text = "hello " * 50
        app.action_settings()  # opens before the debounced count has even started
        await wait_for(pilot, lambda: app.chat.budget.used > before)
        assert len(app.screen_stack) == 2  # the dialog is still open, and the app did not fail
        assert f"{app.chat.budget.used:,}" in str(app.screen_stack[0].query_one(ContextCounter).render())


async def test_a_model_switch_mid_chat_recounts_with_the_new_tokenizer_and_template(make_app, gemma_path) -> None:
    """SmolLM2 (ChatML, 49k vocabulary) to Gemma 3 (its own format, 262k vocabulary) and back, in one chat."""
    from localchat.models.library import Library
    from localchat.tui.screens.models import ModelPicker

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        Library(app.paths).import_file(gemma_path, "gemma3-270m")
        await model_ready(pilot)
        app.store.update_conversation(app.conversation.id, sampling={"max_tokens": 8, "temperature": 0.0})
        await send(pilot, "Hi, who are you?")
        draft = "And what can you do?"

        async def counted_as(model_name: str) -> int:
            app.query_one(Composer).text = draft
            await wait_for(pilot, lambda: app.session.model_name == model_name and app.chat.budget.n_ctx > 0)
            history = app.session.engine_messages(app.conversation, app.store.branch(app.conversation.id))
            expected = app.session.engine.count_chat_tokens([*history, ChatMessage("user", draft)]) + 8
            await wait_for(pilot, lambda: app.chat.budget.used == expected)
            return expected

        smol = await counted_as(app.session.model_name)
        for name in ("gemma3-270m", None):
            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
            options = app.screen.query_one(OptionList).options
            target = next(i for i, o in enumerate(options) if (name or "SmolLM2") in str(o.prompt))
            app.screen.query_one(OptionList).highlighted = target
            await pilot.press("enter")
            if name:
                gemma = await counted_as(name)
                assert gemma != smol  # another tokenizer and template: the count moved, exactly
                await send(pilot, draft)
                assert app.store.branch(app.conversation.id)[-1].model == name
        await wait_for(pilot, lambda: app.session.model_name not in ("gemma3-270m", None))
        history = app.session.engine_messages(app.conversation, app.store.branch(app.conversation.id))
        assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
        expected = app.session.engine.count_chat_tokens([*history, ChatMessage("user", "")]) + 8
        await wait_for(pilot, lambda: app.chat.budget.used == expected)  # back on SmolLM2, with Gemma's reply in it


async def test_the_tokens_view_shows_the_drafts_and_a_messages_tokens(make_app) -> None:
    from textual.widgets import Label, Static

    from localchat.tui.screens.tokens import TokensScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        draft = "Hello wörld 🙂 <|im_start|>"
        app.query_one(Composer).text = draft
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TokensScreen) and app.screen.tokens)
        screen = app.screen
        expected = app.session.engine.tokenize(draft)
        assert screen.tokens == expected and "".join(t.piece for t in expected) == draft
        shown = str(screen.query_one("#tokens", Static).render())
        assert shown.replace("·", "") == draft  # every piece on screen, in order
        info = str(screen.query_one("#token-info", Label).render())
        assert info.startswith(f"{len(expected):,} tokens") and f"id {expected[0].id}" in info
        await pilot.press("right", "right")
        assert f"token 3: id {expected[2].id}" in str(screen.query_one("#token-info", Label).render())
        await pilot.press("end")
        assert f"id {expected[-1].id} (special)" in str(screen.query_one("#token-info", Label).render())
        await pilot.press("escape")
        assert not isinstance(app.screen, TokensScreen) and app.query_one(Composer).text == draft
        await send(pilot, "Hi")
        reply = views(app)[-1]
        reply.focus()
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TokensScreen) and app.screen.tokens)
        assert "".join(t.piece for t in app.screen.tokens) == reply.message.content


async def test_a_reply_that_copies_the_chat_shows_its_prompt_lookup_drafts(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        app.session.default_sampling = SamplingParams(temperature=0, max_tokens=60)
        await send(pilot, "Repeat this list three times, one line each: red, green, blue, cyan, magenta, yellow.")
        reply = views(app)[-1]
        drafts = app.store.message(reply.message.id).stats["speculative"]
        assert drafts["drafted"] >= drafts["accepted"] > 0
        stats = str(reply.query_one(".stats").render())
        assert f"{drafts['source']} {drafts['accepted']}/{drafts['drafted']} drafted tokens taken" in stats


async def test_a_draft_model_from_the_settings_is_named_in_the_status_line_and_drafts(model_path: Path) -> None:
    app = LocalchatApp(paths().ensure(), str(model_path), None, None, LoadOptions(draft=str(model_path)))
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        assert f"draft {model_path.name}" in str(app.query_one("#model-name").render())
        app.session.default_sampling = SamplingParams(temperature=0, max_tokens=30)
        await send(pilot, "Say hello.")
        drafts = app.store.message(views(app)[-1].message.id).stats["speculative"]
        assert drafts["source"] == "lookup + draft model"


async def test_a_draft_model_of_another_family_is_left_out_with_a_note(model_path: Path, gemma_path: Path) -> None:
    options = LoadOptions(draft=str(gemma_path), draft_required=False)
    app = LocalchatApp(paths().ensure(), str(model_path), None, None, options)
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await wait_for(pilot, lambda: any("drafting is off" in str(n.message) for n in app._notifications))
        assert "draft" not in str(app.query_one("#model-name").render())
