"""The leaderboard (F9): ratings from the arena's votes, per model or per model with its settings (s)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from localchat.chat.arena import stored_battles
from localchat.chat.ratings import leaderboard, position_bias, table_lines
from localchat.store.db import Store
from localchat.text import inert

NO_VOTES = "No votes yet: open the arena (F10), send a message and vote."


class LeaderboardScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "Close", priority=True),
        Binding("s", "by_settings", "Per settings", id="leaderboard.settings"),
    ]

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.by_settings = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Label("", id="leaderboard-title", markup=False)
            yield Static("", id="leaderboard", markup=False)

    def on_mount(self) -> None:
        self.show()

    def action_by_settings(self) -> None:
        self.by_settings = not self.by_settings
        self.show()

    def show(self) -> None:
        battles = stored_battles(self.store, self.by_settings)
        table = leaderboard(battles)
        what, other = ("per model and settings", "model") if self.by_settings else ("per model", "settings")
        self.query_one("#leaderboard-title", Label).update(
            f"Your leaderboard, {what} (Bradley–Terry on the Elo scale). s: per {other}; Esc: close."
        )
        if not table:
            text = NO_VOTES if not battles else f"{len(battles)} votes, all between one model's settings: press s."
        else:
            text = "\n".join(table_lines(table, position_bias(battles)))
        self.query_one("#leaderboard", Static).update(inert(text))
