"""A chat that moves between a local model and a server's (named in config.toml) mid-way, in the app: the
picker lists the server's models, replies stream from there into the same chat, the counter says "≈" where the
server only estimates, and a server that is down is said in the picker without holding it up."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import OptionList

from localchat.tui.screens.models import ModelPicker
from localchat.tui.widgets import ContextCounter
from tests.backends.conftest import API_KEY, Server, free_port, server  # noqa: F401 (the server fixture)
from tests.backends.faulty_server import BEFORE_FAILING, faulty_server
from tests.tui.conftest import SIZE, burst, model_ready, send, views, wait_for


@pytest.fixture
def configured(home: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:  # noqa: F811
    """Three servers: one that answers slowly (it takes a connection and never replies: the listing waits its
    3 s timeout), the test server ("box"), and one that is down."""
    down = f"http://127.0.0.1:{free_port()}/v1"
    with socket.socket() as slow:
        slow.bind(("127.0.0.1", 0))
        slow.listen()
        slow_url = f"http://127.0.0.1:{slow.getsockname()[1]}/v1"
        box = f'[endpoints.box]\nurl = "{server.url}"\napi_key_env = "BOX_KEY"\nctx = 2048\n'
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "config.toml").write_text(
            f'[endpoints.slow]\nurl = "{slow_url}"\n\n{box}\n[endpoints.off]\nurl = "{down}"\n'
        )
        monkeypatch.setenv("BOX_KEY", API_KEY)
        yield server


async def pick(pilot, wanted: str) -> None:
    app = pilot.app
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
    options = app.screen.query_one(OptionList)
    await wait_for(pilot, lambda: any(wanted in str(o.prompt) for o in options.options))
    index = next(i for i, o in enumerate(options.options) if wanted in str(o.prompt))
    options.highlighted = index
    await pilot.press("enter")


async def test_a_chat_moves_to_a_servers_model_and_back(make_app, configured: Server) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        local_name = app.session.model_name
        await send(pilot, "Hi")
        counter = app.query_one(ContextCounter)
        assert not str(counter.render()).startswith("≈")
        await pick(pilot, "server box")
        await wait_for(pilot, lambda: app.session.model_name == "smollm2 @ box")
        # llama_cpp.server tokenizes text, not chats: an estimate, and the counter says so
        await wait_for(
            pilot, lambda: str(counter.render()).startswith("≈") and "/ 2,048 tokens" in str(counter.render())
        )
        await send(pilot, "Name a river.")
        await pick(pilot, local_name)
        await wait_for(pilot, lambda: app.session.model_name == local_name and app.session.local)
        await send(pilot, "And a mountain?")
        replies = [app.store.message(v.message.id) for v in views(app) if v.message.role == "assistant"]
        assert [r.model for r in replies] == [local_name, "smollm2 @ box", local_name]
        assert all(r.status == "complete" and r.content for r in replies)
        await wait_for(pilot, lambda: "/ 4,096 tokens" in str(counter.render()))  # the local model's count
        assert not str(counter.render()).startswith("≈")
        # Both chats' turns are one conversation: the server's reply is history for the local model's.
        assert len(app.store.branch(app.conversation.id)) == 6


async def test_the_picker_lists_a_server_that_is_down_without_waiting_for_it(make_app, configured: Server) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        options = app.screen.query_one(OptionList)
        await wait_for(pilot, lambda: any("off: cannot reach" in str(o.prompt) for o in options.options))
        down = next(o for o in options.options if "off:" in str(o.prompt))
        assert down.disabled and any("smollm2  ·  server box" in str(o.prompt) for o in options.options)


async def test_keys_typed_at_once_reach_the_servers_models(make_app, configured: Server) -> None:
    """The servers are asked in the background from the start: the picker lists their models as it opens, so
    ctrl+l, down, enter typed in one go choose the server's model (not the local one, then listed alone)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await wait_for(pilot, lambda: {"slow", "box", "off"} <= set(app.models.served))
        await pilot.press("ctrl+l", "down", "enter")
        await wait_for(pilot, lambda: app.session.model_name == "smollm2 @ box")
        await send(pilot, "Hi")
        assert app.store.branch(app.conversation.id)[-1].model == "smollm2 @ box"


async def test_a_servers_reply_cut_mid_way_is_kept_marked_and_said(make_app, home: Path) -> None:
    """A stream that ends with no finish reason: the words that came are kept (status error), the chat says why
    in one line (not that "the engine stopped"), and the server's other settings are said once when chosen."""
    with faulty_server() as url:
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "config.toml").write_text(f'[endpoints.flaky]\nurl = "{url}"\nmodels = ["cut"]\n')
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await model_ready(pilot)
            await pick(pilot, "cut  ·  server flaky")
            await wait_for(pilot, lambda: app.session.model_name == "cut @ flaky")
            said = [str(n.message) for n in app._notifications]
            assert sum("top_k, min_p, repeat_penalty are not sent" in m for m in said) == 1
            await send(pilot, "Hi")
            reply = app.store.branch(app.conversation.id)[-1]
            assert reply.status == "error" and reply.content == "".join(BEFORE_FAILING)
            said = [str(n.message) for n in app._notifications]
            assert any("The reply was cut off" in m and "no finish reason" in m for m in said)
            assert not any("engine stopped" in m for m in said)


async def test_a_model_chosen_and_a_message_sent_in_one_burst(make_app, configured: Server) -> None:
    """ctrl+l Down Enter and a message, typed in one go: the keys behind ctrl+l wait for the picker (they went to
    the composer before it existed), the Down moves before the Enter chooses, and the message behind the Enter
    goes to the chat, to the model just chosen."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await wait_for(pilot, lambda: {"slow", "box", "off"} <= set(app.models.served))
        burst(app, "", "ctrl+l", "down", "enter")
        burst(app, "Hi", "enter")
        await wait_for(pilot, lambda: len(app.store.branch(app.conversation.id)) == 2, timeout=60)
        await wait_for(pilot, lambda: app.store.branch(app.conversation.id)[-1].status == "complete", timeout=60)
        asked, reply = app.store.branch(app.conversation.id)
        assert asked.content == "Hi" and reply.model == "smollm2 @ box"
        assert app.session.model_name == "smollm2 @ box"
