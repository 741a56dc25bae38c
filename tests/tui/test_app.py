"""The rest of the app: conversations, prompts, themes, key remapping, first run, long chats."""

from __future__ import annotations

from textual.widgets import ListView

from localchat.tui.screens.dialogs import AskText, Confirm
from localchat.tui.screens.models import CatalogScreen
from localchat.tui.screens.settings import PromptsScreen
from localchat.tui.widgets import Composer, MessageView
from tests.tui.conftest import SIZE, burst, model_ready, send, wait_for, wait_until_replied


async def past_welcome(pilot) -> None:
    """Without any model the app opens on the catalog (first run); close it."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CatalogScreen))
    await pilot.press("escape")
    await pilot.pause(0.1)


def titles(app) -> list[str]:
    return [str(item.query_one("Label").render()) for item in app.query_one("#conversations", ListView).children]


async def a_chat_then_a_new_one(pilot) -> int:
    """Past the first-run catalog, a message in the first chat, then ctrl+n: the first chat's id."""
    app = pilot.app
    await past_welcome(pilot)
    await pilot.pause(0.3)
    first = app.conversation.id
    app.store.add_message(first, "user", "tomatoes need sun", None)
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: app.conversation.id != first)
    return first


async def test_conversations_new_rename_search_delete(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        first = await a_chat_then_a_new_one(pilot)
        await pilot.pause(0.2)
        assert app.conversation.id != first and len(titles(app)) == 2
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AskText))
        app.screen.query_one("#answer").value = "Renamed"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert titles(app)[0] == "Renamed"
        app.query_one("#search").value = "TOMATO"
        await pilot.pause(0.3)
        assert len(titles(app)) == 1 and titles(app)[0] != "Renamed"  # found by message text
        app.query_one("#search").value = ""
        await pilot.pause(0.3)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.click("#no")
        await pilot.pause(0.2)
        assert len(titles(app)) == 2  # nothing deleted without a yes
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.click("#yes")
        await pilot.pause(0.3)
        assert "Renamed" not in titles(app) and len(app.store.conversations()) == 1


async def test_the_list_opens_the_chat_picked_and_keeps_its_search(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        await pilot.pause(0.3)
        first = app.conversation.id
        app.store.add_message(first, "user", "tomatoes need sun", None)
        app.store.update_conversation(first, title="Garden")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.conversation.id != first)
        app.query_one("#search").value = "TOMATO"
        await wait_for(pilot, lambda: titles(app) == ["Garden"])
        await pilot.press("f2")  # renaming the open chat (not found by the search) leaves the search as it was
        await wait_for(pilot, lambda: isinstance(app.screen, AskText))
        app.screen.query_one("#answer").value = "Renamed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.store.conversation(app.conversation.id).title == "Renamed")
        await pilot.pause(0.2)
        assert titles(app) == ["Garden"]
        await pilot.click("#conversations ListItem")
        await wait_for(pilot, lambda: app.conversation.id == first)
        assert app.chat.views()[0].message.content == "tomatoes need sun"


async def test_the_keys_typed_behind_ctrl_n_go_to_the_new_chat(make_app) -> None:
    """Found in tmux: ctrl+n from the search box opened a chat and left the focus in the box, so the message typed
    next went into the search."""
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        await pilot.pause(0.3)
        first = app.conversation.id
        app.store.add_message(first, "user", "the river", None)  # a chat with a message: ctrl+n makes another
        await pilot.press("ctrl+f")
        burst(app, "riv", "ctrl+n")  # one burst, as a terminal hands it over: nothing waits for ctrl+n to act
        burst(app, "hey")
        await wait_for(pilot, lambda: app.conversation.id != first)
        await wait_for(pilot, lambda: app.chat.composer.text == "hey")
        assert app.query_one("#search").value == "riv" and app.focused is app.chat.composer


async def test_a_new_chat_left_as_it_came_is_not_kept(make_app) -> None:
    """Found in tmux: every ctrl+n left a "New chat" row behind, used or not. As in ChatGPT, ctrl+n on a new chat
    stays on it, and a new chat left without a message, a draft or a setting of its own is not kept."""
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        first = await a_chat_then_a_new_one(pilot)
        fresh = app.conversation.id
        await pilot.press("ctrl+n", "ctrl+n")
        await pilot.pause(0.3)
        assert app.conversation.id == fresh and len(app.store.conversations()) == 2
        assert app.focused is app.chat.composer
        await pilot.click(app.query("#conversations ListItem")[1])  # the first chat, below the new one
        await wait_for(pilot, lambda: app.conversation.id == first)
        await wait_for(pilot, lambda: len(titles(app)) == 1)
        assert [c.id for c in app.store.conversations()] == [first]
        await pilot.press("ctrl+n")  # a new chat with unsent text is kept, and so is its text
        await wait_for(pilot, lambda: app.conversation.id != first)
        drafted = app.conversation.id
        burst(app, "half a thought")
        await wait_for(pilot, lambda: app.chat.composer.text == "half a thought")
        await pilot.press("ctrl+n")  # not a new chat any more: another one opens
        await wait_for(pilot, lambda: app.conversation.id not in (first, drafted))
        renamed = app.conversation.id
        app.store.update_conversation(renamed, title="Plans")  # named: kept too
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.conversation.id not in (first, drafted, renamed))
        assert {first, drafted, renamed} < {c.id for c in app.store.conversations()}
        assert app.store.setting(f"draft:{drafted}") == "half a thought"


async def test_enter_in_the_search_opens_the_first_chat_found(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        first = await a_chat_then_a_new_one(pilot)
        await pilot.press("ctrl+f", *"tomato", "enter")  # the open chat is not found: the first one found opens
        await wait_for(pilot, lambda: app.conversation.id == first)
        assert app.focused is app.chat.composer and app.chat.views()[0].message.content == "tomatoes need sun"
        await pilot.press("ctrl+f", "tab", "enter")  # the list's highlight is the open chat: it stays open
        await pilot.pause(0.3)
        assert app.conversation.id == first and app.focused is app.chat.composer


async def test_a_narrow_window_hides_the_chat_list_until_ctrl_f(make_app) -> None:
    """At 80 columns the list took 30 of them: below 90 it hides and the chat has the width. Ctrl+F brings it
    back as a drawer; picking a chat, Escape or Tab away closes it; a wider window shows it again."""
    app = make_app(None)
    async with app.run_test(size=(80, 30)) as pilot:
        first = await a_chat_then_a_new_one(pilot)
        chats = app.query_one("#sidebar")
        assert not chats.display and app.chat.region.x == 0 and app.chat.region.width == 80
        await pilot.press("ctrl+f")
        await pilot.pause(0.1)
        assert chats.display and chats.region.width == 30 and app.focused is app.query_one("#search")
        await pilot.press(*"tomato", "enter")
        await wait_for(pilot, lambda: app.conversation.id == first)
        await pilot.pause(0.1)
        assert not chats.display and app.focused is app.chat.composer
        await pilot.press("ctrl+f", "escape")  # closes the drawer, nothing else
        await pilot.pause(0.1)
        assert not chats.display and app.focused is app.chat.composer and app.conversation.id == first
        await pilot.press("ctrl+f", "tab")  # into the list: still open
        await pilot.pause(0.1)
        assert chats.display and app.focused is app.query_one("#conversations")
        await pilot.press("tab")  # on to the chat: closed
        await pilot.pause(0.1)
        assert not chats.display
        await pilot.resize_terminal(120, 30)
        await pilot.pause(0.1)
        assert chats.display and chats.region.width == 30 and app.chat.region.x == 30
        await pilot.press("ctrl+f", "escape")  # wide: the list stays where it is
        await pilot.pause(0.1)
        assert chats.display


async def test_switching_chats_mid_reply_says_why_it_waits(make_app) -> None:
    """Chats are switched between replies: ctrl+n, a pick in the list or a confirmed delete while a reply is on its
    way say so (found in tmux: ctrl+n did nothing, silently, and a confirmed delete was dropped)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        first = app.conversation.id
        app.store.create_conversation()
        app.query_one(Composer).text = "The river runs past old stone bridges. " * 320  # ~3k tokens: seconds to read
        await pilot.pause(0.1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.busy)
        await pilot.press("ctrl+n")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.click("#yes")
        await pilot.press("ctrl+r", "ctrl+g")  # these wait for the reply too, and say so (they were silent)
        said = [str(n.message) for n in app._notifications]
        assert said.count("A reply is on its way: Esc stops it, then switch chats.") == 2
        assert "A reply is on its way: Esc stops it, then regenerate." in said
        assert "A reply is on its way: Esc stops it, then edit." in said
        assert not isinstance(app.screen, AskText)
        assert app.conversation.id == first and app.store.conversation(first) is not None
        await pilot.press("escape")
        await wait_until_replied(pilot, 1)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.conversation.id != first)


async def test_system_prompt_library(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        await pilot.pause(0.3)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptsScreen))
        app.screen.query_one("#prompt-name").value = "Pirate"
        app.screen.query_one("#prompt-text").text = "Talk like a pirate."
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+t")  # default for new chats
        await pilot.pause(0.2)
        assert app.store.prompts() == [("Pirate", "Talk like a pirate.")]
        assert app.store.setting("default_prompt") == "Pirate"
        option_list = app.screen.query_one("#prompt-list")
        option_list.highlighted = 1
        await pilot.pause(0.1)
        option_list.action_select()
        await pilot.pause(0.3)
        assert app.store.conversation(app.conversation.id).system_prompt == "Talk like a pirate."
        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        assert app.conversation.system_prompt == "Talk like a pirate."  # the default applies to new chats


async def test_themes_are_registered_and_the_choice_is_saved(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        await pilot.pause(0.2)
        ours = {"localchat-dusk", "localchat-paper", "localchat-forest"}
        assert ours <= set(app.available_themes)
        app.theme = "localchat-paper"
        await pilot.pause(0.1)
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        assert app.theme == "localchat-paper"


async def test_bindings_can_be_remapped(make_app) -> None:
    app = make_app(None, keymap={"chat.new": "f5"})
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        await pilot.pause(0.2)
        before = app.conversation.id
        app.store.add_message(before, "user", "hello", None)  # a chat in use: the new-chat key makes another
        await pilot.press("f5")
        await pilot.pause(0.2)
        assert app.conversation.id != before


async def test_a_fresh_machine_chats_at_once_with_the_bundled_model(make_app, monkeypatch) -> None:
    """`make run` installs a small chat model with localchat: no dialog to get past, nothing to download."""
    from localchat.models import bundled

    monkeypatch.setattr(bundled, "BUNDLED", (bundled.STARTER,))
    app = make_app(None)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await model_ready(pilot)
        assert app.screen is app.screen_stack[0]  # straight into the chat
        assert app.session.model_name == "smollm2:135m"
        assert any("a tiny model that came with localchat" in str(n.message) for n in app._notifications)
        # The notice stays a while: it must not hide what the person types (toasts sit at the top, app.tcss).
        await wait_for(pilot, lambda: len(app.screen.query("Toast")) > 0)
        composer = app.chat.composer.region
        assert all(not toast.region.overlaps(composer) for toast in app.screen.query("Toast"))
        await send(pilot, "Hi!")
        reply = app.store.branch(app.conversation.id)[-1]
        assert reply.role == "assistant" and reply.status == "complete" and reply.content
    assert app.library.find("smollm2:135m").source == "bundled"


async def test_first_run_without_models_offers_the_catalog(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, CatalogScreen))
        intro = str(app.screen.query_one(".intro").render())
        assert "no models yet" in intro and "runs entirely on this machine" in intro


async def test_long_conversations_mount_only_recent_messages(make_app) -> None:
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        chat = app.store.create_conversation()
        parent = None
        for i in range(600):
            parent = app.store.add_message(chat.id, "user" if i % 2 == 0 else "assistant", f"message {i}", parent).id
        await app.open_conversation(chat.id)
        await pilot.pause(0.5)
        mounted = list(app.query(MessageView))
        assert len(mounted) == 200 and mounted[-1].message.content == "message 599"
        container = app.query_one("#messages")
        container.scroll_home(animate=False)  # the reader goes back in time
        await wait_for(pilot, lambda: len(list(app.query(MessageView))) == 300)
        mounted = list(app.query(MessageView))
        assert mounted[0].message.content == "message 300" and mounted[-1].message.content == "message 599"
        await wait_for(pilot, lambda: container.scroll_y > 0)  # back at message 400, not thrown to the new top
        await pilot.pause(0.3)
        assert len(list(app.query(MessageView))) == 300  # and no further loading without scrolling up again


async def test_catalog_pulls_with_progress_and_loads_the_model(make_app, model_path, monkeypatch) -> None:
    import huggingface_hub.constants

    from tests.fakehub import FakeFile, FakeHub, FakeHubServer, FakeRepo

    hub = FakeHub({"unsloth/SmolLM2-135M-Instruct-GGUF": FakeRepo({"smol-q4_k_m.gguf": FakeFile(model_path)})})
    hub.throttle_s = 0.02  # slow enough to see the bar move
    with FakeHubServer(hub) as server:
        # The CLI tests set HF_ENDPOINT before huggingface_hub is imported; in this process it already was.
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
        template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        # huggingface_hub reads HF_HUB_OFFLINE once, when it is imported (here: by this test, while the autouse
        # fixture's HF_HUB_OFFLINE=1 is set).
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        app = make_app(None)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CatalogScreen))
            screen = app.screen
            await pilot.press("enter")  # the first entry: smollm2:135m
            bar = screen.query_one("#pull-progress")
            await wait_for(pilot, lambda: bar.display and (bar.progress or 0) > 0)
            assert "pulling unsloth/SmolLM2-135M-Instruct-GGUF:Q4_K_M" in str(screen.query_one("#pull-status").render())
            await wait_for(pilot, lambda: app.session.engine.model is not None, timeout=120)
            assert app.session.model_name == "smollm2:135m"
            assert app.library.find("smollm2:135m").source == "pulled"


async def test_a_model_that_is_not_downloaded_says_how_to_get_it(make_app) -> None:
    app = make_app("qwen3.5:0.8b")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("is not downloaded" in str(n.message) for n in app._notifications))
        assert app.session.engine.model is None


async def test_the_settings_file_sets_the_apps_default_sampling(make_app, home) -> None:
    from localchat.chat.sampling import from_settings

    app = make_app(None)
    app.default_sampling = from_settings({"preset": "precise", "max_tokens": 77})
    async with app.run_test(size=SIZE) as pilot:
        await past_welcome(pilot)
        assert app.session.sampling_for(app.conversation).max_tokens == 77


async def test_the_settings_file_sets_the_engine_options(model_path, home) -> None:
    """[engine] in config.toml (GPU layers, threads) reaches the app's engine, as it does `localchat run`: the
    app is built the way `localchat` builds it, from a real settings file."""
    from localchat import cli, config

    config.paths().ensure()
    (config.paths().config_dir / "config.toml").write_text("[engine]\nthreads = 1\ngpu_layers = 0\n")
    app = cli.build_app(str(model_path))
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        info = app.session.engine.model
        assert info.threads == 1 and info.gpu_layers_setting == "0"


def test_every_binding_id_is_one_the_settings_file_accepts() -> None:
    """[keys] refuses ids it does not know; the list it knows is exactly the app's bindings."""
    import importlib
    import inspect
    import pkgutil

    import localchat.tui
    from localchat.config import BINDING_IDS

    modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(localchat.tui.__path__, "localchat.tui.")]
    defined = {
        binding.id
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        for binding in getattr(cls, "BINDINGS", [])
        if getattr(binding, "id", None)
    }
    assert defined == BINDING_IDS


async def test_esc_while_the_model_loads_stops_the_load(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert "loading" in str(app.query_one("#model-name").render())
        await pilot.press("escape")  # the engine is still starting: the stop waits for the load and stops it
        await wait_for(pilot, lambda: any("Stopped loading" in str(n.message) for n in app._notifications))
        assert app.session.engine.model is None and not app.chat.model_loading
        assert str(app.query_one("#model-name").render()) == "no model"
