"""Widgets: one chat message, the composer, the context counter."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Click
from textual.message import Message as TextualMessage
from textual.widgets import Label, Static, TextArea

from localchat.chat.sampling import SamplingParams
from localchat.errors import LocalchatError
from localchat.store.db import Message
from localchat.text import inert
from localchat.tui.markdown_body import MarkdownBody
from localchat.tui.reasoning_block import ReasoningBlock, reasoning_title

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}


def stats_line(message: Message) -> str:
    stats = message.stats or {}
    parts = [message.model or stats.get("model") or ""]
    if stats.get("completion_tokens") is not None:
        parts.append(f"{stats['completion_tokens']} tokens")
    if stats.get("ttft_s"):
        parts.append(f"TTFT {stats['ttft_s']:.2f} s")
    if stats.get("decode_tok_s"):
        parts.append(f"{stats['decode_tok_s']:.1f} tok/s")
    drafts = stats.get("speculative")
    if isinstance(drafts, dict) and drafts.get("drafted"):
        source = str(drafts.get("source", "lookup"))  # older replies stored no source: lookup was the only one
        parts.append(f"{source} {drafts.get('accepted', 0)}/{drafts['drafted']} drafted tokens taken")
    if stats.get("sampling"):
        with contextlib.suppress(TypeError, LocalchatError):  # a record from another version is not shown
            parts.append(SamplingParams(**stats["sampling"]).summary())
    if stats.get("reasoning_state") == "stray":
        parts.append("a closing reasoning marker with no opening one, kept as written")
    if message.status in ("interrupted", "cancelled", "error"):
        parts.append({"interrupted": "interrupted", "cancelled": "stopped", "error": "error"}[message.status])
        if stats.get("error"):
            parts.append(str(stats["error"]))
    return inert(" · ".join(p for p in parts if p))  # a model name, an engine's error: literal, inert


CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


class MessageView(Vertical, can_focus=True):
    """One message: who, the Markdown body (streamed while the reply comes), and the reply's stats.
    Focus one with Tab: c copies it, b copies its last code block, e edits it (your messages)."""

    BINDINGS = [
        Binding("c", "copy", "Copy", id="message.copy"),
        Binding("b", "copy_code", "Copy code", id="message.copy_code"),
        Binding("e", "edit", "Edit", id="message.edit"),
    ]

    def __init__(self, message: Message) -> None:
        super().__init__(classes=f"message {message.role}")
        self.message = message
        self.reserve = 1  # while streaming (see MarkdownBody)
        # Held, not queried: the reasoning block has a MarkdownBody of its own, and these are used every frame.
        # What a person wrote is shown as written (pasted code keeps its lines); a model's reply is Markdown.
        self.body = MarkdownBody(message.content, classes="body", markdown=message.role == "assistant")
        self.reasoning: ReasoningBlock | None = None

    @property
    def text(self) -> str:
        return self.body.text

    def compose(self) -> ComposeResult:
        yield Label(ROLE_LABELS.get(self.message.role, self.message.role), classes="role")
        if self.message.reasoning:
            self.reasoning = ReasoningBlock(self.message.reasoning, title=reasoning_title(self.message))
            self.reasoning.collapsed = bool(self.message.content)  # with no answer, the reasoning is what there is
            yield self.reasoning
        yield self.body
        yield Label(stats_line(self.message) if self.message.role == "assistant" else "", classes="stats", markup=False)

    def start_stream(self, reserve: int = 1) -> None:
        """The reply streams into this view from now on; `reserve` lines at a time (see MarkdownBody)."""
        self.reserve = reserve
        self.body.start_stream(reserve)

    def append(self, text: str, reasoning_tokens: int = 0) -> None:
        """Stream: only the block being written is rendered again, only changed lines are repainted."""
        if self.reasoning is not None:
            self.reasoning.answer_started(reasoning_tokens)
        self.body.append(text)

    def append_reasoning(self, text: str, tokens: int) -> None:
        """Stream a thinking model's reasoning: open and dimmed above the answer (folded when the answer starts)."""
        if self.reasoning is None:
            self.reasoning = ReasoningBlock(collapsed=False)
            self.reasoning.start_stream(self.reserve)
            self.mount(self.reasoning, before=self.body)
        self.reasoning.stream(text, tokens)

    def finish(self, message: Message) -> None:
        self.message = message
        self.body.update(message.content)  # one full render at the end
        if self.reasoning is None and message.reasoning:
            self.reasoning = ReasoningBlock()
            self.mount(self.reasoning, before=self.body)
        if self.reasoning is not None:
            self.reasoning.show(message)
        self.query_one(".stats", Label).update(stats_line(message))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)  # OSC 52: works over SSH too
        self.notify("Copied the message.")

    def action_copy_code(self) -> None:
        blocks = CODE_BLOCK.findall(self.text)
        if blocks:
            self.app.copy_to_clipboard(blocks[-1])
            self.notify("Copied the code block.")
        else:
            self.notify("This message has no code block.", severity="warning")

    class EditRequested(TextualMessage):
        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    def action_edit(self) -> None:
        self.post_message(self.EditRequested(self))

    def set_left_out(self, left_out: bool) -> None:
        self.set_class(left_out, "left-out")


class Composer(TextArea):
    """Enter sends; Ctrl+J (or Alt+Enter) inserts a newline.

    Both are priority bindings (TextArea would take Enter as a newline), and a priority binding runs when the App
    reads the key, while the keys typed just before it may still wait in this widget's own queue: a fast typist,
    a paste or a text expander delivers "text" + Enter in one burst. So the actions only post a message to this
    widget's queue, behind those keys, and act when it comes up: the text sent is every key that came before
    Enter, and keys after it stay in the composer.
    """

    BINDINGS = [
        Binding("enter", "submit", "Send", id="composer.send", priority=True),
        Binding("ctrl+j,alt+enter", "newline", "Newline", id="composer.newline", show=False, priority=True),
    ]

    class Submitted(TextualMessage):
        """The user sent `text`; it has left the composer (`give_back` returns it if it cannot be sent)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    @dataclass
    class InOrder(TextualMessage):
        """An action waiting behind the keys that arrived before it."""

        action: str

    def action_submit(self) -> None:
        self.post_message(self.InOrder("submit"))

    def action_newline(self) -> None:
        self.post_message(self.InOrder("newline"))

    def on_composer_in_order(self, message: InOrder) -> None:
        message.stop()
        if message.action == "newline":
            self.insert("\n")
            return
        text = self.text
        if text.strip():  # an empty message is not sent (and the spaces stay where they are)
            # Cleared here, in key order: the next message's keys may already be behind this one in the queue.
            self.clear()
            self.post_message(self.Submitted(text))

    def give_back(self, text: str) -> None:
        """A message that could not be sent returns in front of whatever was typed since."""
        rest = self.text
        self.text = text + (("\n" + rest) if rest else "")
        self.move_cursor(self.document.end)


class KeyBar(Static):
    """The keys that work now, on one line, as Textual's Footer shows them (a click presses the key).

    One widget instead of the Footer's dozen: while a reply streams, Textual re-reads every widget whose clip
    covers the changed line, and the Footer alone cost 1.2 of the 2.6 ms of a one-line repaint (measured)."""

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $footer-background; color: $footer-description-foreground; }
    KeyBar > .key-bar--key { color: $footer-key-foreground; text-style: bold; }
    """
    COMPONENT_CLASSES = {"key-bar--key"}

    def __init__(self) -> None:
        super().__init__("", markup=False)
        self.spans: list[tuple[int, int, str]] = []  # (start, end, key) of each shown binding

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.call_after_refresh(self.show_keys)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: object) -> None:
        if self.is_attached and screen is self.screen:
            self.show_keys()

    def show_keys(self) -> None:
        text, spans, actions = Text(no_wrap=True, overflow="ellipsis"), [], set()
        key_style = self.get_component_rich_style("key-bar--key")
        palette = self.app.COMMAND_PALETTE_BINDING
        bindings = [b for b in self.screen.active_bindings.values() if b.binding.show and b.binding.key != palette]
        bindings += [b for b in self.screen.active_bindings.values() if b.binding.key == palette]
        for active in bindings:
            binding = active.binding
            if binding.action in actions:
                continue  # one key per action, as the Footer does
            actions.add(binding.action)
            start = len(text)
            text.append(f" {self.app.get_key_display(binding)} ", style=key_style)
            text.append(f"{binding.description} ")
            spans.append((start, len(text), binding.key.split(",")[0]))
        self.spans = spans
        self.update(text)

    def on_click(self, event: Click) -> None:
        key = next((key for start, end, key in self.spans if start <= event.x < end), None)
        if key is not None:
            self.app.simulate_key(key)


class ContextCounter(Static):
    """`used / n_ctx` for system prompt + history + draft + reply budget, from the model's own tokenizer."""

    shown = ""  # the text on screen: set only when it changes

    def show(self, used: int, n_ctx: int | None, note: str = "", exact: bool = True) -> None:
        """`n_ctx` None: a server that does not say its context size; `exact` False: a server's estimate."""
        share = used / n_ctx if n_ctx else 0.0
        # Classes and text are set only when they change: re-applying a class restyles the widget, and any
        # change here is a repaint at the bottom of the screen (see ChatView.render_pending for why that matters).
        for name, on in (("over", share > 1), ("near", 0.8 < share <= 1)):
            if self.has_class(name) != on:
                self.set_class(on, name)
        about, tail = ("" if exact else "≈"), (f" · {note}" if note else "")
        if n_ctx is None:
            text = f"{about}{used:,} tokens · context size unknown (ctx in config.toml){tail}"
        elif n_ctx:
            text = f"{about}{used:,} / {n_ctx:,} tokens{tail}"
        else:
            text = "no model"
        if text != self.shown:
            self.shown = text
            # As wide as its text, so the model's name beside it gets the rest; its width changes (a layout
            # pass) only in steps of 8 columns, so counting while a reply streams redraws just this line.
            width = -(-(len(text) + 2) // 8) * 8
            if self.styles.width is None or self.styles.width.value != width:
                self.styles.width = width
            self.update(text, layout=False)
