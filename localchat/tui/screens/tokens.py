"""The tokens view: a message (or the draft) as the loaded model's tokens, exactly what the counter counts.
Alternating backgrounds show where each token starts; special tokens stand out; ←/→ walk through them and the
one under the cursor shows its id."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from localchat.engine.client import EngineClient
from localchat.engine.protocol import Token
from localchat.errors import LocalchatError
from localchat.text import inert

STYLES = ("on #1f3b57", "on #4a3b12")  # alternating token backgrounds
SPECIAL_STYLE = "bold white on #7a1f2b"
CURSOR_STYLE = "reverse"


def token_text(tokens: tuple[Token, ...], cursor: int) -> Text:
    """The tokens as one Text: each piece on its background (inert: a model's text never drives the terminal);
    a newline piece shows as ↵ before the line break."""
    text = Text(no_wrap=False)
    for index, token in enumerate(tokens):
        style = SPECIAL_STYLE if token.special else STYLES[index % 2]
        if index == cursor:
            style = f"{style} {CURSOR_STYLE}"
        piece = inert(token.piece).replace("\n", "↵\n") or "·"  # a token that only starts a character: ·
        text.append(piece, style=style)
    return text


class TokensScreen(ModalScreen[None]):
    DEFAULT_CSS = "TokensScreen #token-scroll { height: auto; max-height: 24; margin: 1 0; }"
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", priority=True),
        Binding("right", "move(1)", "Next token", show=False),
        Binding("left", "move(-1)", "Previous token", show=False),
        Binding("home", "move(-1000000)", show=False),
        Binding("end", "move(1000000)", show=False),
    ]

    def __init__(self, engine: EngineClient, text: str, what: str) -> None:
        super().__init__()
        self.engine = engine
        self.text = text
        self.what = what
        self.tokens: tuple[Token, ...] = ()
        self.cursor = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Tokens of {self.what}  ·  ←/→ move  ·  Esc closes", markup=False)
            with VerticalScroll(id="token-scroll"):
                yield Static("tokenizing…", id="tokens", markup=False)
            yield Label("", id="token-info", markup=False)

    def on_mount(self) -> None:
        self.tokenize()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def tokenize(self) -> None:
        try:
            tokens = self.engine.tokenize(self.text)
        except LocalchatError as exc:
            self.app.call_from_thread(self.query_one("#tokens", Static).update, f"error: {inert(exc.message)}")
            return
        self.app.call_from_thread(self.show, tokens)

    def show(self, tokens: tuple[Token, ...]) -> None:
        self.tokens = tokens
        self.cursor = 0
        self.redraw()

    def action_move(self, step: int) -> None:
        if self.tokens:
            self.cursor = max(0, min(len(self.tokens) - 1, self.cursor + step))
            self.redraw()

    def redraw(self) -> None:
        self.query_one("#tokens", Static).update(token_text(self.tokens, self.cursor))
        info = f"{len(self.tokens):,} tokens"
        if self.tokens:
            token = self.tokens[self.cursor]
            kind = " (special)" if token.special else ""
            piece = inert(repr(token.raw.decode("utf-8", "replace")))
            info += f"  ·  token {self.cursor + 1}: id {token.id}{kind}, {piece}"
        self.query_one("#token-info", Label).update(info)
