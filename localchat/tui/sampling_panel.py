"""The sampling lab: a panel beside the chat with this chat's sampling settings, nudged by keys, and the reply's
next-token candidates at a chosen token — the model's raw distribution beside what the settings make of it.

The candidates come from the engine once per reply (ChatSession.score); moving through the reply or changing a
setting reshapes them in chat/distribution.py without calling the model. "Regenerate from here" keeps the reply's
tokens before the chosen one and lets the model go on from there with the current settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from localchat.chat.distribution import Shaped, reshape
from localchat.chat.sampling import PENALTY_LAST_N, PRESETS, RANGES, SamplingParams
from localchat.chat.session import ChatSession
from localchat.engine.protocol import ReplyScores, TokenLogprob
from localchat.errors import LocalchatError
from localchat.text import inert

TOP_N = 40  # candidates stored per token: the chart shows the first rows, the chain reshapes all of them
ROWS = 8
STEPS: dict[str, float] = {"temperature": 0.1, "top_p": 0.05, "top_k": 5, "min_p": 0.01, "repeat_penalty": 0.05}
RAW_STYLE, AFTER_STYLE = "#6c8ebf", "#e0a030"


@dataclass
class RepliesScored(Message):
    """A worker scored a reply (or failed to)."""

    message_id: int
    scores: ReplyScores | None
    error: str | None = None


def nudged(sampling: SamplingParams, name: str, direction: int) -> SamplingParams:
    """One step of `name` up or down, kept within its range (and on its grid: 0.7 + 0.1 is 0.8, not 0.7999…)."""
    low, high = RANGES[name]
    value = getattr(sampling, name) + direction * STEPS[name]
    value = min(high, max(low, round(value, 2)))
    return sampling.with_overrides(**{name: int(value) if name == "top_k" else value})


def shown_piece(text: str, width: int = 10) -> str:
    """A token's text as one inert cell: quoted so spaces show, a newline as ↵, cut to `width`."""
    piece = inert(text).replace("\n", "↵").replace("\t", "⇥")
    piece = piece if len(piece) <= width - 2 else piece[: width - 3] + "…"
    return f"‘{piece}’"


def bar(probability: float, width: int) -> str:
    eighths = round(max(0.0, min(1.0, probability)) * width * 8)
    return ("█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]).ljust(width)


def chart(entry: TokenLogprob, shaped: Shaped, width: int, rows: int = ROWS) -> Text:
    """The top raw candidates at one position: raw probability and after the settings, the sampled one marked."""
    bar_width = max(4, (width - 2 - 12 - 2 * 5) // 2)
    text = Text(no_wrap=True)
    text.append(f"  {'token':<12}", style="bold")
    text.append(f"{'raw':<{bar_width + 5}}", style=f"bold {RAW_STYLE}")
    text.append("these settings\n", style=f"bold {AFTER_STYLE}")
    for candidate, after in list(zip(entry.top, shaped.probabilities, strict=True))[:rows]:
        raw = math.exp(candidate.logprob)
        mark = "▶ " if candidate.id == entry.id else "  "
        text.append(mark, style="bold")
        text.append(f"{shown_piece(candidate.token):<12}")
        text.append(bar(raw, bar_width), style=RAW_STYLE)
        text.append(f"{raw:>4.0%} ")
        text.append(bar(after, bar_width), style=AFTER_STYLE)
        text.append(f"{after:>4.0%}\n" if after else "   –\n", style="" if after else "dim")
    if all(c.id != entry.id for c in entry.top[:rows]):
        text.append(f"▶ {shown_piece(entry.token)} was sampled from further down ({math.exp(entry.logprob):.1%})\n")
    if not shaped.exact:
        text.append(f"approximate: these settings keep tokens beyond the {len(entry.top)} stored\n", style="dim")
    return text


def shaped_at(scores: ReplyScores, position: int, sampling: SamplingParams) -> Shaped:
    """The chain's distribution at one token of a scored reply: the repeat penalty looks back on the tokens
    before it (the prompt's tail, then the reply's)."""
    recent = [*scores.before, *(t.id for t in scores.tokens[:position])][-PENALTY_LAST_N:]
    return reshape(scores.tokens[position].top, sampling, recent)


def context_line(tokens: tuple[TokenLogprob, ...], cursor: int, around: int = 24) -> Text:
    """The reply around the chosen token, the token highlighted (all inert text)."""
    before = "".join(t.token for t in tokens[:cursor])[-around:]
    after = "".join(t.token for t in tokens[cursor + 1 :])[:around]
    line = Text(no_wrap=True, overflow="ellipsis")
    clean = lambda s: inert(s).replace("\n", "↵")  # noqa: E731
    line.append("…" + clean(before), style="dim")
    line.append(clean(tokens[cursor].token) or "·", style="reverse bold")
    line.append(clean(after) + "…", style="dim")
    return line


class SamplingPanel(VerticalScroll, can_focus=True):
    """This chat's sampling settings and the chosen token's candidates. Focus it (F5) to use its keys."""

    BINDINGS = [
        Binding("left", "move(-1)", "Previous token", show=False),
        Binding("right", "move(1)", "Next token", show=False),
        Binding("home", "move(-1000000)", show=False),
        Binding("end", "move(1000000)", show=False),
        *(
            Binding(key, f"nudge('{name}', {direction})", show=False)
            for name, (down, up) in {
                "temperature": ("t", "T"),
                "top_p": ("p", "P"),
                "top_k": ("k", "K"),
                "min_p": ("m", "M"),
                "repeat_penalty": ("r", "R"),
            }.items()
            for key, direction in ((down, -1), (up, 1))
        ),
        *(Binding(str(i + 1), f"preset('{name}')", show=False) for i, name in enumerate(PRESETS)),
        Binding("g", "regenerate_from", "Regenerate from here", id="lab.regenerate_from"),
        Binding("escape", "leave", "Back to the chat", id="lab.leave"),
    ]

    class Changed(Message):
        """The chat's sampling settings changed here."""

    @dataclass
    class RegenerateFrom(Message):
        message_id: int
        prefix: str

    class Left(Message):
        """Esc: the focus goes back to the composer."""

    @dataclass
    class TypedAway(Message):
        """A printable key the panel has no use for: text meant for the composer (no keystroke is lost)."""

        character: str

    def __init__(self, session: ChatSession, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.conversation_id: int | None = None
        self.message_id: int | None = None
        self.scores: ReplyScores | None = None
        self.cursor = 0
        self.note = "Focus a reply and press F5, or wait for one."

    def compose(self) -> ComposeResult:
        yield Static("", id="lab-settings", markup=False)
        yield Static("", id="lab-position", markup=False)
        yield Static("", id="lab-chart", markup=False)

    def on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character and event.key not in self.keys:
            event.stop()
            event.prevent_default()
            self.post_message(self.TypedAway(event.character))

    @property
    def keys(self) -> set[str]:
        return {key for binding in self.BINDINGS if isinstance(binding, Binding) for key in binding.key.split(",")}

    # --- which reply ----------------------------------------------------------------------------------------

    def show_reply(self, conversation_id: int, message_id: int | None) -> None:
        """Show this chat's settings and the candidates along `message_id` (a reply), scored in a worker."""
        self.conversation_id = conversation_id
        if message_id is None:
            self.message_id, self.scores, self.note = None, None, "No reply yet: the chart shows one once it ends."
        elif message_id != self.message_id or self.scores is None:
            self.message_id, self.scores, self.cursor, self.note = message_id, None, 0, "reading the candidates…"
            self.score(message_id)
        self.redraw()

    @work(thread=True, exclusive=True, group="score", exit_on_error=False)
    def score(self, message_id: int) -> None:
        try:
            self.post_message(RepliesScored(message_id, self.session.score(message_id, TOP_N)))
        except LocalchatError as exc:
            self.post_message(RepliesScored(message_id, None, exc.message))

    def on_replies_scored(self, message: RepliesScored) -> None:
        if message.message_id != self.message_id:
            return  # a reply no longer shown
        self.scores = message.scores
        self.note = "" if message.scores and message.scores.tokens else (message.error or "This reply is empty.")
        self.cursor = 0
        self.redraw()

    # --- keys -------------------------------------------------------------------------------------------------

    def sampling(self) -> SamplingParams:
        return self.session.sampling_for(self.session.store.conversation(self.conversation_id))

    def save(self, sampling: SamplingParams) -> None:
        self.session.store.update_conversation(self.conversation_id, sampling=sampling.to_dict())
        self.post_message(self.Changed())
        self.redraw()

    def action_nudge(self, name: str, direction: int) -> None:
        if self.conversation_id is not None:
            self.save(nudged(self.sampling(), name, direction))

    def action_preset(self, name: str) -> None:
        if self.conversation_id is not None:
            current = self.sampling()
            self.save(PRESETS[name].with_overrides(max_tokens=current.max_tokens, seed=current.seed))

    def action_move(self, step: int) -> None:
        if self.scores and self.scores.tokens:
            self.cursor = max(0, min(len(self.scores.tokens) - 1, self.cursor + step))
            self.redraw()

    def action_regenerate_from(self) -> None:
        if self.scores and self.scores.tokens and self.message_id is not None:
            kept = b"".join(t.raw for t in self.scores.tokens[: self.cursor])
            self.post_message(self.RegenerateFrom(self.message_id, kept.decode("utf-8", errors="ignore")))

    def action_leave(self) -> None:
        self.post_message(self.Left())

    # --- drawing ------------------------------------------------------------------------------------------------

    def redraw(self) -> None:
        if not self.is_mounted or self.conversation_id is None:
            return
        s = self.sampling()
        settings = Text(no_wrap=True)
        settings.append("Sampling", style="bold")
        settings.append("  (keys while focused)\n", style="dim")
        settings.append(f"temperature {s.temperature:<5.2f} t/T   top-p {s.top_p:<5.2f} p/P\n")
        settings.append(f"top-k       {s.top_k:<5d} k/K   min-p {s.min_p:<5.2f} m/M\n")
        settings.append(f"repeat      {s.repeat_penalty:<5.2f} r/R\n")
        settings.append("presets  " + "  ".join(f"{i + 1} {name}" for i, name in enumerate(PRESETS)), style="dim")
        self.query_one("#lab-settings", Static).update(settings)
        position, chart_text = Text(self.note, style="dim"), Text("")
        if self.scores and self.scores.tokens:
            tokens = self.scores.tokens
            entry = tokens[self.cursor]
            position = Text(f"\ntoken {self.cursor + 1} of {len(tokens)} (←/→), g: regenerate from here\n")
            position.append_text(context_line(tokens, self.cursor))
            chart_text = chart(entry, shaped_at(self.scores, self.cursor, s), self.content_size.width or 44)
        self.query_one("#lab-position", Static).update(position)
        self.query_one("#lab-chart", Static).update(chart_text)
