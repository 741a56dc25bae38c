"""The arena screen driven as a person would: real engines, SmolLM2 and Gemma 3 270M, keys in bursts."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Label, Select, Static

from localchat.chat.arena import Contestant
from localchat.chat.sampling import SamplingParams
from localchat.tui.app import LocalchatApp
from localchat.tui.markdown_body import MarkdownBody
from localchat.tui.screens.arena import ArenaScreen, ArenaSetup
from localchat.tui.screens.leaderboard import LeaderboardScreen
from localchat.tui.widgets import Composer
from tests.tui.conftest import SIZE, burst, model_ready, wait_for

SHORT = SamplingParams(temperature=0, max_tokens=12)


def setup_for(app: LocalchatApp, models: tuple = ()) -> ArenaSetup:
    return ArenaSetup(app.store, app.library, app.load_options, app.paths.engine_log, SHORT, tuple(models))


def shown_text(screen: ArenaScreen) -> str:
    """Everything the arena shows in words: labels, status, history, both replies."""
    parts = [str(w.render()) for w in screen.query(Label)] + [str(w.render()) for w in screen.query(Static)]
    return "\n".join(parts + [body.text for body in screen.query(MarkdownBody)])


def voting(screen: ArenaScreen) -> bool:
    return screen.results is not None and not screen.query_one("#vote-a", Button).disabled


async def test_names_stay_hidden_until_the_vote(make_app, model_path: Path, gemma_path: Path) -> None:
    app = make_app()
    pair = (Contestant("smol-secret", model_path, SHORT), Contestant("gemma-secret", gemma_path, SHORT))
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        screen = ArenaScreen(setup_for(app), pair)
        await app.push_screen(screen)
        await pilot.pause(0.2)
        burst(app, "Name a colour.", "enter")
        await wait_for(pilot, lambda: voting(screen))
        before = shown_text(screen)
        assert "smol-secret" not in before and "gemma-secret" not in before
        replies = [body.text for body in screen.query(MarkdownBody)]
        assert all(replies) and replies[0] != replies[1]
        burst(app, "b", "enter")
        await wait_for(pilot, lambda: screen.round is None)
        row = app.store.battles()[0]
        assert row["prompt"] == "Name a colour." and row["vote"] == "b" and row["source"] == "app"
        seats = [str(label.render()) for label in screen.query(".seat")]
        assert seats == [f"A · {row['model_a']} (greedy)", f"B · {row['model_b']} (greedy)"]
        assert [row["reply_a"], row["reply_b"]] == replies
        assert screen.history[-1].content == row["reply_b"]  # the chat goes on with the winner's reply
        # Ctrl+O: the winner alone, in a chat of its own that holds the arena's history, its model loaded.
        winner = next(c for c in pair if c.model == row["model_b"])
        await pilot.press("ctrl+o")
        assert not isinstance(app.screen, ArenaScreen)
        await wait_for(pilot, lambda: app.conversation.title == "Arena: Name a colour.")
        branch = app.store.branch(app.conversation.id)
        assert [(m.role, m.content, m.model) for m in branch] == [
            ("user", "Name a colour.", None),
            ("assistant", row["reply_b"], winner.model),
        ]
        assert app.conversation.sampling == winner.sampling.to_dict()
        await wait_for(pilot, lambda: app.session.engine.model is not None and not app.chat.model_loading)
        assert Path(app.session.engine.model.path) == winner.path.resolve()


async def test_keys_in_a_burst_are_kept_while_both_answer_and_before_the_vote(make_app, model_path: Path) -> None:
    app = make_app()
    long = SamplingParams(temperature=0, max_tokens=200)
    pair = (Contestant("x", model_path, long), Contestant("y", model_path, SHORT.with_overrides(temperature=1)))
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        screen = ArenaScreen(setup_for(app), pair)
        await app.push_screen(screen)
        await pilot.pause(0.2)
        composer = screen.query_one("#arena-composer", Composer)
        burst(app, "Tell me a story.", "enter", *"Next one", "enter")  # the second Enter comes mid-reply
        await wait_for(pilot, lambda: voting(screen))
        assert composer.text == "Next one"  # given back, not sent, not lost
        assert [r["prompt"] for r in app.store.battles(voted=False)] == ["Tell me a story."]
        burst(app, "", "enter")  # "Next one" is not a vote: it stays, and the vote is still asked for
        await pilot.pause(0.3)
        assert composer.text == "Next one" and voting(screen)
        composer.text = ""
        burst(app, "n", "enter")
        await wait_for(pilot, lambda: screen.round is None)
        assert app.store.battles()[0]["vote"] == "bad" and screen.history == ()  # both bad: the round is left out


async def test_the_arena_opens_from_the_app_picks_its_pair_and_feeds_the_leaderboard(
    make_app, model_path: Path, gemma_path: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        app.library.import_file(gemma_path, "gemma3:270m")
        app.library.import_file(model_path, "smol")
        await pilot.press("f10")
        screen = app.screen
        assert isinstance(screen, ArenaScreen)
        assert app.focused is screen.query_one("#model-1", Select)
        await pilot.press("tab")  # Textual's own keys stay on in the arena (the chats' are off)
        assert app.focused is screen.query_one("#preset-1", Select)
        names = [m.alias or m.name for m in screen.setup.models]
        screen.query_one("#model-1", Select).value = names.index("gemma3:270m")
        screen.query_one("#model-2", Select).value = names.index("smol")
        screen.query_one("#preset-2", Select).value = "precise"
        screen.query_one("#start", Button).press()
        await pilot.pause(0.2)
        burst(app, "Hi!", "enter")
        await wait_for(pilot, lambda: voting(screen), timeout=120)
        assert app.check_action("new_chat", ()) is False  # the chats' keys are off while the arena is on top
        burst(app, "t", "enter")
        await wait_for(pilot, lambda: screen.round is None)
        row = app.store.battles()[0]
        assert {(row["model_a"], row["settings_a"]["top_k"]), (row["model_b"], row["settings_b"]["top_k"])} == {
            ("gemma3:270m", 40),
            ("smol", 20),
        }
        await pilot.press("f9")
        board = app.screen
        assert isinstance(board, LeaderboardScreen)
        table = str(board.query_one("#leaderboard", Static).render())
        assert "gemma3:270m" in table and "smol" in table and "1000" in table  # one tie: both at the anchor
        await pilot.press("escape")
        await pilot.press("f10")  # F10 opens the arena and closes it
        assert not isinstance(app.screen, ArenaScreen)
        assert all(not engine.alive for engine in screen.arena.engines.engines)  # its engines went with it
