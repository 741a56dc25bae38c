"""Widgets: one chat message, the composer, the context counter."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message as TextualMessage
from textual.widgets import Label, Markdown, Static, TextArea
from textual.widgets.markdown import MarkdownStream

from localchat.store.db import Message
from localchat.text import inert

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
    if message.status in ("interrupted", "cancelled", "error"):
        parts.append({"interrupted": "interrupted", "cancelled": "stopped", "error": "error"}[message.status])
        if stats.get("error"):
            parts.append(str(stats["error"]))
    return " · ".join(p for p in parts if p)


CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
SEGMENT_CHARS = 2000  # a streaming reply goes on in a new Markdown widget at a blank line after this much text


def segment_cut(segment: str, text: str) -> int | None:
    """Where in `text` the live segment may end (after a blank line, not inside a code fence), once it is long."""
    cut = text.rfind("\n\n")
    if cut < 0 or len(segment) + cut < SEGMENT_CHARS:
        return None
    cut += 2
    return cut if len(FENCE.findall(segment + text[:cut])) % 2 == 0 else None


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
        self.stream: MarkdownStream | None = None
        self.text = message.content
        self.segment = ""  # the text streamed into the last Markdown widget

    def compose(self) -> ComposeResult:
        yield Label(ROLE_LABELS.get(self.message.role, self.message.role), classes="role")
        yield Markdown(inert(self.message.content), classes="body")
        yield Label(stats_line(self.message) if self.message.role == "assistant" else "", classes="stats")

    @property
    def body(self) -> Markdown:
        return self.query(".body").first(Markdown)

    async def append(self, text: str) -> None:
        """Stream: each delta is appended (O(n) over the reply), not the whole message re-rendered. A long reply
        streams into a chain of Markdown widgets: each frame lays out only the last one (Textual arranges every
        block of a widget whose children changed, which made the last frames of a long reply the costliest)."""
        self.text += text
        if self.stream is None:
            self.stream = Markdown.get_stream(self.body)
        cut = segment_cut(self.segment, text)
        if cut is not None:
            await self.stream.write(inert(text[:cut]))
            await self.stream.stop()
            segment = Markdown(classes="body")
            await self.mount(segment, before=self.query_one(".stats"))
            self.stream, self.segment, text = Markdown.get_stream(segment), "", text[cut:]
        self.segment += text
        await self.stream.write(inert(text))

    async def finish(self, message: Message) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None
        self.message = message
        self.text = message.content
        self.segment = ""
        extra = list(self.query(".body"))[1:]
        if extra:
            await self.remove_children(extra)  # the segments of the streamed reply become one widget again
        await self.body.update(inert(message.content))  # one full render at the end
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


class ContextCounter(Static):
    """`used / n_ctx` for system prompt + history + draft + reply budget, from the model's own tokenizer."""

    def show(self, used: int, n_ctx: int, note: str = "") -> None:
        share = used / n_ctx if n_ctx else 0.0
        self.set_class(share > 1, "over")
        self.set_class(0.8 < share <= 1, "near")
        text = f"{used:,} / {n_ctx:,} tokens" + (f" · {note}" if note else "") if n_ctx else "no model"
        # A fixed width and one line: no layout pass, only this line is redrawn (it changes every frame of a reply)
        self.update(text, layout=False)
