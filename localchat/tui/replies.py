"""Sending, streaming and the live counter: the part of the app that talks to the chat session.

A mixin of LocalchatApp (named `on_*` handlers, so Textual finds them through the MRO). Workers run the blocking
session calls in threads and only post typed messages; the handlers here update the widgets.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

from textual import work
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input

from localchat.chat.session import Budget, ChatSession
from localchat.engine.protocol import Delta
from localchat.errors import LocalchatError
from localchat.hardware import usable_cores
from localchat.store.db import Conversation, Store
from localchat.store.db import Message as StoredMessage
from localchat.tui.messages import BudgetCounted, ReplyFinished, ReplyPending, ReplyStarted
from localchat.tui.pacing import FramePacer, ReplyBuffer, contended
from localchat.tui.screens.dialogs import AskText
from localchat.tui.widgets import Composer, ContextCounter, MessageView

if TYPE_CHECKING:
    from localchat.tui.app import LocalchatApp

W = TypeVar("W", bound=Widget)
COUNT_DELAY_S = 0.25  # debounce: count the draft when typing pauses
MOUNTED_MESSAGES = 200  # a long chat opens with its last 200 messages; older ones mount when scrolled to
MOUNT_MORE = 100


class RepliesMixin:
    """What LocalchatApp provides to this mixin (set in its __init__ and on_mount)."""

    store: Store
    session: ChatSession
    conversation: Conversation
    streaming: MessageView | None
    budget: Budget
    reply_buffer: ReplyBuffer
    pacer: FramePacer
    render_timer: Timer | None
    count_timer: Timer | None

    # --- the live counter -----------------------------------------------------------------------------------

    def chat_widget(self, kind: type[W]) -> W | None:
        """A widget of the chat screen (the bottom of the stack, whatever dialog is on top), or None while the app
        closes: seen in CI, a count finished after the widgets were removed and query_one raised in a handler."""
        stack = self.screen_stack
        found = stack[0].query(kind) if stack else []
        return found.first() if found else None

    def on_text_area_changed(self, event: Composer.Changed) -> None:
        if isinstance(event.text_area, Composer):
            self.schedule_count()

    def schedule_count(self) -> None:
        if self.count_timer is not None:
            self.count_timer.stop()
        self.count_timer = self.set_timer(COUNT_DELAY_S, self.count_draft)

    def count_draft(self) -> None:
        if self.session is not None and self.session.engine.model is not None and self.streaming is None:
            self.count(self.query_one(Composer).text)

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def count(self, draft: str) -> None:
        branch = self.store.branch(self.conversation.id)
        budget = self.session.budget(self.conversation, branch, draft)
        self.post_message(BudgetCounted(budget, draft))

    def on_budget_counted(self, message: BudgetCounted) -> None:
        composer = self.chat_widget(Composer)
        if composer is None or message.draft != composer.text:
            return  # closing, or a count for an older draft that finished late: a newer one is on its way
        self.budget = message.budget
        self.show_budget()

    def show_budget(self, extra: int = 0) -> None:
        """Before a send: prompt + reply budget. While a reply streams: prompt + the reply so far (it grows)."""
        budget = self.budget
        used = budget.used
        note = ""
        if budget.overflow_by:
            note = f"over by {budget.overflow_by:,}: shorten the message or raise the context size"
        elif budget.dropped_ids:
            note = f"{len(budget.dropped_ids)} oldest messages will be left out"
        if extra:
            used = budget.used - self.session.sampling_for(self.conversation).max_tokens + extra
            note = f"replying: {extra:,} tokens"
        counter = self.chat_widget(ContextCounter)
        if counter is None:
            return
        counter.show(used, budget.n_ctx, note)
        if extra:
            return  # while a reply streams, which messages are left out does not change
        dropped = set(budget.dropped_ids)
        for view in self.query(MessageView):
            view.set_left_out(view.message.id in dropped)

    # --- sending and streaming ------------------------------------------------------------------------------

    def on_composer_submitted(self, event: Composer.Submitted) -> None:
        text = event.text
        if not text.strip() or self.streaming is not None:
            return  # an empty message is not sent; one reply at a time
        if self.session.engine.model is None:
            self.notify("Choose a model first (ctrl+l, or ctrl+o for the catalog).", severity="warning")
            return
        if self.budget.overflow_by:
            self.notify(f"The message does not fit: over by {self.budget.overflow_by:,} tokens.", severity="error")
            return
        self.query_one(Composer).clear()
        self.generate("send", text)

    def action_regenerate(self) -> None:
        if self.streaming is None and any(v.message.role == "user" for v in self.query(MessageView)):
            self.generate("regenerate", None)

    def action_edit_last(self) -> None:
        """Edit the focused user message (or the last one); the old branch stays in the database."""
        views = [v for v in self.query(MessageView) if v.message.role == "user"]
        focused = (
            self.focused if isinstance(self.focused, MessageView) and self.focused.message.role == "user" else None
        )
        target = focused or (views[-1] if views else None)
        if target is None or self.streaming is not None:
            return

        def resend(text: str | None) -> None:
            if text:
                self.generate("edit", text, target.message.id)

        self.push_screen(AskText("Edit and resend:", target.message.content), resend)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def generate(self, kind: str, text: str | None, message_id: int | None = None) -> None:
        listener = ReplyListener(self)
        try:
            if kind == "send":
                self.session.send(self.conversation.id, text, listener)
            elif kind == "edit":
                self.session.edit(message_id, text, listener)
            else:
                self.session.regenerate(self.conversation.id, listener)
        except LocalchatError as exc:
            self.post_message(ReplyFinished(None, exc.message))
            return
        self.post_message(ReplyFinished(None))

    async def on_reply_started(self, message: ReplyStarted) -> None:
        await self.reopen_branch()
        self.streaming = next((v for v in self.query(MessageView) if v.message.id == message.message_id), None)
        model = self.session.engine.model
        busy = model is not None and contended(model.threads, usable_cores(), model.gpu_layers > model.layers)
        self.pacer.start_reply(busy)
        self.set_cursor_blink(not busy)  # a blink is a frame too: 2 a second, ≈1% of generation on 2 cores

    def set_cursor_blink(self, blink: bool) -> None:
        composer = self.chat_widget(Composer)
        if composer is not None:
            composer.cursor_blink = blink

    def on_reply_pending(self, message: ReplyPending) -> None:
        """Text is waiting: draw it at the pacer's next frame (see tui/pacing.py for why not at once)."""
        if self.render_timer is None:
            wait = max(0.001, self.pacer.delay(time.monotonic()))  # (a timer of 0 divides by 0)
            self.render_timer = self.set_timer(wait, self.render_pending)

    async def render_pending(self) -> None:
        self.render_timer = None
        text, tokens = self.reply_buffer.take()
        if self.streaming is not None and text:
            self.pacer.frame(time.monotonic(), time.thread_time())
            await self.streaming.append(text)
            self.show_budget(extra=tokens)

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        if message.error:
            self.notify(message.error, severity="error", timeout=8)
        if self.render_timer is not None:
            self.render_timer.stop()
        await self.render_pending()
        streaming = self.streaming
        if streaming is not None and streaming.is_attached:
            await streaming.finish(self.store.message(streaming.message.id))
        self.streaming = None  # only now: the reply is fully rendered
        self.set_cursor_blink(True)
        await self.reopen_branch()
        self.refresh_conversations(self.query_one("#search", Input).value.strip() or None)
        last = self.store.branch(self.conversation.id)
        if last and last[-1].status == "error":
            self.notify(
                "The engine stopped; the partial reply is kept and the next message starts a new engine.",
                severity="error",
                timeout=8,
            )
        self.schedule_count()

    async def reopen_branch(self) -> None:
        """Show the stored branch: mount new messages, refresh changed ones, drop ones from another branch."""
        self.conversation = self.store.conversation(self.conversation.id)
        branch = self.store.branch(self.conversation.id)
        container = self.query_one("#messages", VerticalScroll)
        views = list(self.query(MessageView))
        ids = [m.id for m in branch]
        mounted = [v.message.id for v in views if v.message.id in ids]
        # Keep what is shown from its first message on (older ones stay unmounted until scrolled to).
        branch = branch[ids.index(mounted[0]) if mounted else max(0, len(branch) - MOUNTED_MESSAGES) :]
        wanted = {m.id for m in branch}
        for view in views:
            if view.message.id not in wanted:
                await view.remove()
        have = {v.message.id: v for v in views if v.message.id in wanted}
        for message in branch:
            view = have.get(message.id)
            if view is None:
                await container.mount(MessageView(message))
            elif view is not self.streaming and (view.message.content, view.message.status) != (
                message.content,
                message.status,
            ):
                await view.finish(message)

    def action_stop(self) -> None:
        if self.streaming is not None or self.session is not None:
            self.session.stop()

    def action_copy_message(self) -> None:
        views = list(self.query(MessageView))
        target = self.focused if isinstance(self.focused, MessageView) else (views[-1] if views else None)
        if target is not None:
            target.action_copy()

    def edit_message(self, view: MessageView) -> None:
        if self.streaming is not None or view.message.role != "user":
            return

        def resend(text: str | None) -> None:
            if text:
                self.generate("edit", text, view.message.id)

        self.push_screen(AskText("Edit and resend (the old version is kept):", view.message.content), resend)


class ReplyListener:
    """Turns the session's reply callbacks (on a worker thread) into the reply buffer and messages for the UI."""

    def __init__(self, app: LocalchatApp) -> None:
        self.app = app

    def started(self, reply: StoredMessage) -> None:
        self.app.post_message(ReplyStarted(reply.id))

    def delta(self, delta: Delta) -> None:
        if self.app.reply_buffer.put(delta.text, delta.tokens):
            self.app.post_message(ReplyPending())


class OlderMessagesMixin:
    """Mount older messages of a long chat when the view is scrolled to the top, keeping the reading position."""

    store: Store
    conversation: Conversation
    loading_older: bool

    def watch_messages_scroll(self, scroll_y: float) -> None:
        if scroll_y <= 0 and not self.loading_older:
            self.loading_older = True
            self.call_later(self.load_older)

    async def load_older(self) -> None:
        views = list(self.query(MessageView))
        branch = self.store.branch(self.conversation.id) if views else []
        ids = [m.id for m in branch]
        first = ids.index(views[0].message.id) if views and views[0].message.id in ids else 0
        older = branch[max(0, first - MOUNT_MORE) : first]
        if not older:
            self.loading_older = False
            return
        container = self.query_one("#messages", VerticalScroll)
        await container.mount_all([MessageView(m) for m in older], before=views[0])

        def keep_place() -> None:  # once laid out: back to the message that was on top
            container.scroll_to_widget(views[0], top=True, animate=False)
            self.loading_older = False

        self.call_after_refresh(keep_place)
