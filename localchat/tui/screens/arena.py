"""The arena screen (F10): pick two models (or one model twice, with two presets); each message then goes to both,
the replies stream side by side as A and B with the models hidden; the vote (a, b, t or n, sent as a message, or
the buttons) names them, and the chat goes on with the winner's reply (chat/arena.py does the work).

Replies stream into `MarkdownBody` widgets (cheap to append to) from a buffer the worker fills; a timer draws
what came, a few times a second, so the UI costs the engines little (tui/markdown_body.py says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message as TextualMessage
from textual.screen import Screen
from textual.widgets import Button, Label, Select, Static

from localchat.chat.arena import (
    Arena,
    ArenaEngines,
    Contestant,
    Round,
    Side,
    dropped_note,
    parse_vote,
    winner_history,
)
from localchat.chat.ratings import Vote
from localchat.chat.sampling import PRESETS, SamplingParams
from localchat.engine.protocol import ChatMessage, Delta, Done, LoadOptions
from localchat.errors import LocalchatError
from localchat.models.library import Library, LocalModel
from localchat.models.manager import fits_beside_loaded
from localchat.store.db import Store
from localchat.text import inert
from localchat.tui.markdown_body import MarkdownBody
from localchat.tui.pacing import ReplyBuffer
from localchat.tui.widgets import Composer, KeyBar

FRAME_S = 0.12  # ~8 frames a second while replies stream
VOTE_HINT = "Vote: send a (A is better), b, t (tie) or n (both bad) — or click."
LABELS: dict[Vote, str] = {"a": "A is better", "b": "B is better", "tie": "a tie", "bad": "both bad"}


@dataclass(frozen=True)
class ArenaSetup:
    """What the arena needs from the app: where models and votes are, and how to load."""

    store: Store
    library: Library
    load_options: LoadOptions
    engine_log: Path | None
    sampling: SamplingParams  # the app's default: each side's preset is applied over it
    models: tuple[LocalModel, ...]  # the models to choose from (the library, and files opened by path)
    lookup: bool = True


ANSWERING = "Both answer, one after the other (Esc stops them)."


def loading_text(fraction: float) -> str:
    return ANSWERING if fraction >= 1 else f"Loading a model… {fraction:.0%}"


class RoundFinished(TextualMessage):
    def __init__(self, results: dict[Side, Done]) -> None:
        super().__init__()
        self.results = results


class ArenaScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="arena.stop"),
        Binding("f10", "close", "Back to chats", id="arena.close"),
        Binding("ctrl+o", "continue_with_winner", "Chat with the winner", id="arena.continue"),
    ]

    @dataclass
    class ContinueWithWinner(TextualMessage):
        """The arena's chat goes on as a normal chat with the model that won the last vote (the app opens it)."""

        winner: Contestant
        history: tuple[ChatMessage, ...]

    def __init__(self, setup: ArenaSetup, pair: tuple[Contestant, Contestant] | None = None) -> None:
        super().__init__(id="arena")
        self.setup = setup
        self.arena: Arena | None = None
        self.buffers: dict[Side, ReplyBuffer] = {"a": ReplyBuffer(), "b": ReplyBuffer()}  # not drawn yet
        self.round: Round | None = None
        self.results: dict[Side, Done] | None = None  # the round's replies, until its vote
        self.history: tuple[ChatMessage, ...] = ()  # what the next message is sent with
        self.swap_said = False
        self.start_pair = pair
        self.winner: Contestant | None = None  # the last vote's, while the history ends with its reply

    def compose(self) -> ComposeResult:
        with Vertical(id="arena-setup"):
            yield Label("Arena: two models answer each message blind; your votes rank them (F9).", classes="intro")
            options = [(m.alias or m.name, i) for i, m in enumerate(self.setup.models)]
            presets = [(name, name) for name in PRESETS]
            for n in (1, 2):
                with Horizontal(classes="field"):
                    yield Select(options, prompt=f"model {n}…", id=f"model-{n}")
                    yield Select(presets, value="balanced", allow_blank=False, id=f"preset-{n}")
            yield Button("Start", variant="primary", id="start")
        yield VerticalScroll(id="arena-history")
        with Horizontal(id="arena-sides"):
            for side in "ab":
                with Vertical(classes="arena-side", id=f"side-{side}"):
                    yield Label(side.upper(), classes="seat", markup=False)
                    with VerticalScroll(classes="arena-reply"):
                        yield MarkdownBody(classes="body")
                    yield Label("", classes="stats", markup=False)
        with Horizontal(id="arena-vote"):
            for vote in LABELS:
                yield Button(LABELS[vote], id=f"vote-{vote}", disabled=True)
        yield Label("", id="arena-status", markup=False)
        yield Composer(id="arena-composer", soft_wrap=True, show_line_numbers=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#arena-composer", Composer).disabled = True
        self.query_one("#arena-sides").display = False
        self.query_one("#arena-vote").display = False
        if self.start_pair is not None:
            self.begin(self.start_pair)
        else:
            self.query_one("#model-1", Select).focus()
        self.set_interval(FRAME_S, self.draw)

    # --- choosing the pair ------------------------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def start_pressed(self) -> None:
        chosen = []
        for n in (1, 2):
            index = self.query_one(f"#model-{n}", Select).value
            if not isinstance(index, int):
                self.status("Choose a model for both sides (the same one twice, with two presets, works too).")
                return
            preset = PRESETS[str(self.query_one(f"#preset-{n}", Select).value)]
            sampling = preset.with_overrides(max_tokens=self.setup.sampling.max_tokens)
            model = self.setup.models[index]
            chosen.append(Contestant(model.alias or model.name, model.path, sampling))
        self.begin((chosen[0], chosen[1]))

    def begin(self, pair: tuple[Contestant, Contestant]) -> None:
        setup = self.setup
        engines = ArenaEngines(
            setup.load_options,
            setup.engine_log,
            lambda path: fits_beside_loaded(setup.library, path, setup.load_options.n_ctx),
            lambda _model, fraction: self.app.call_from_thread(self.status, loading_text(fraction)),
        )
        self.arena = Arena(setup.store, engines, pair, "app", lookup=setup.lookup)
        self.query_one("#arena-setup").display = False
        self.query_one("#arena-sides").display = True
        self.query_one("#arena-vote").display = True
        composer = self.query_one("#arena-composer", Composer)
        composer.disabled = False
        composer.focus()
        self.status("Send a message: both models answer it, as A and B in an order drawn each time.")

    # --- a round ----------------------------------------------------------------------------------------------

    def on_composer_submitted(self, message: Composer.Submitted) -> None:
        message.stop()
        composer = self.query_one("#arena-composer", Composer)
        if self.round is not None and self.results is None:
            composer.give_back(message.text)
            self.status("Both are still answering: send it when they are done (Esc stops them).")
            return
        if self.round is not None:
            try:
                vote = parse_vote(message.text)
            except LocalchatError:
                composer.give_back(message.text)
                self.status(VOTE_HINT)
                return
            self.cast(vote)
            return
        self.play(message.text)

    def play(self, prompt: str) -> None:
        assert self.arena is not None
        self.round = self.arena.start(prompt, self.history)
        self.results = None
        for side in "ab":
            column = self.query_one(f"#side-{side}")
            column.query_one(".seat", Label).update(side.upper())
            column.query_one(".stats", Label).update("")
            body = column.query_one(MarkdownBody)
            body.update("")
            body.start_stream()
        self.status(ANSWERING)
        self._play(self.round)

    @work(thread=True, exclusive=True, group="arena", exit_on_error=False)
    def _play(self, round_: Round) -> None:
        def on_event(side: Side, event: Delta | Done) -> None:
            if isinstance(event, Delta) and event.text:
                self.buffers[side].put(event.text, event.tokens)  # drawn by the timer, not by a message

        assert self.arena is not None
        try:
            results = self.arena.play(round_, on_event)
        except LocalchatError as exc:  # the store, say: the replies' own failures come back as results
            results = {}
            self.app.call_from_thread(self.status, f"The round failed: {inert(exc.message)}")
        self.post_message(RoundFinished(results))

    def draw(self) -> None:
        for side, buffer in self.buffers.items():
            text = buffer.take().text
            if text:
                self.query_one(f"#side-{side}").query_one(MarkdownBody).append(text)

    def on_round_finished(self, message: RoundFinished) -> None:
        self.draw()
        self.results = message.results
        for side in "ab":
            done = message.results.get(side)
            body = self.query_one(f"#side-{side}").query_one(MarkdownBody)
            body.update(done.text if done else body.text)
        if self.arena is not None and self.arena.engines.swapping and not self.swap_said:
            self.swap_said = True
            self.notify("The two models do not fit in memory together: each reply loads its model in turn.")
        if len(message.results) < 2 or any(d.stop_reason == "cancelled" for d in message.results.values()):
            self.round, self.results = None, None  # stopped: no vote on half a battle (it stays unvoted)
            self.status("Stopped. The round is kept without a vote; send another message.")
            return
        for button in self.query("#arena-vote Button"):
            button.disabled = False
        note = dropped_note(self.arena.dropped) if self.arena is not None else None
        self.status(f"{VOTE_HINT} ({note})" if note else VOTE_HINT)

    @on(Button.Pressed, "#arena-vote Button")
    def vote_pressed(self, event: Button.Pressed) -> None:
        if self.round is not None and self.results is not None and event.button.id:
            self.cast(event.button.id.removeprefix("vote-"))  # type: ignore[arg-type]

    def cast(self, vote: Vote) -> None:
        assert self.arena is not None and self.round is not None and self.results is not None
        self.arena.vote(self.round, vote)
        for side, seat in self.round.seats.items():
            column = self.query_one(f"#side-{side}")
            column.query_one(".seat", Label).update(f"{side.upper()} · {inert(seat.model)} ({seat.settings})")
            done = self.results[side]
            stats = f"{done.usage.completion_tokens} tokens, {done.timings.decode_tok_s:.1f} tok/s"
            failure = f"failed: {inert(done.error or '')}"
            column.query_one(".stats", Label).update(stats if done.stop_reason != "error" else failure)
        for button in self.query("#arena-vote Button"):
            button.disabled = True
        names = " vs ".join(f"{s.upper()}: {seat.model} ({seat.settings})" for s, seat in self.round.seats.items())
        said = self.round.messages[-1].content
        self.query_one("#arena-history", VerticalScroll).mount(
            Static(inert(f"You: {said}\n→ {LABELS[vote]} ({names})"), markup=False)
        )
        self.history = winner_history(self.round, vote, self.results)
        self.winner = self.round.seats[vote] if vote in ("a", "b") else None
        self.round, self.results = None, None
        self.status(
            "Voted. The chat goes on with the winner's reply (both bad: without this round); "
            "Ctrl+O goes on with the winner alone, in a chat of its own."
        )

    def status(self, text: str) -> None:
        self.query_one("#arena-status", Label).update(text)

    # --- leaving ------------------------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self.arena is not None:
            self.arena.stop()

    def action_continue_with_winner(self) -> None:
        if self.winner is None or self.round is not None:
            self.status("Vote A or B better first: the chat then goes on with the winner.")
            return
        self.app.post_message(self.ContinueWithWinner(self.winner, self.history))
        self.app.pop_screen()

    def action_close(self) -> None:
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self.close_arena()

    def close_arena(self) -> None:
        """The engines go (a reply in flight ends: its worker sees them gone); the app calls it when it quits."""
        if self.arena is not None:
            self.arena.close()
