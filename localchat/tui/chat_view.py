"""The chat on screen: a reply's whole life — compose, count, send, stream, stop, regenerate, edit.

The App composes one ChatView and tells it which conversation is open and which model is loading or loaded; the
view tells the App when a reply changed the conversation (`Changed`, for the sidebar). Workers run the blocking
session calls in threads and only post typed messages (tui/messages.py) to this view.

Messages sent while a reply streams or the model loads wait in a queue shown above the composer and go out in
order; whatever is still queued or typed when the app closes is kept as the chat's draft, so no keystroke is lost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message as TextualMessage
from textual.timer import Timer
from textual.widgets import Static

from localchat.chat.session import Budget, ChatSession
from localchat.engine.protocol import Delta, ModelInfo
from localchat.errors import LocalchatError
from localchat.hardware import usable_cores
from localchat.store.db import NEW_CHAT, Conversation, Store
from localchat.store.db import Message as StoredMessage
from localchat.text import inert
from localchat.tui.message_list import MessageList
from localchat.tui.messages import BudgetCounted, ReplyFinished, ReplyPending, ReplyStarted
from localchat.tui.pacing import FramePacer, ReplyBuffer, contended
from localchat.tui.screens.dialogs import AskText
from localchat.tui.status_line import StatusLine
from localchat.tui.widgets import Composer, MessageView

log = logging.getLogger(__name__)

COUNT_DELAY_S = 0.25  # debounce: count the draft when typing pauses
DRAFT_KEY = "draft:{}"  # settings key of a conversation's unsent text
COUNTER_EVERY_S = 0.5  # while a reply streams, the counter's "replying: N tokens" moves twice a second
RESERVE_LINES = 8  # a streaming reply asks for a layout once per this many new lines when the cores are busy


class ChatView(Vertical):
    """The messages of the open conversation, the queue, the composer and the status line."""

    class Changed(TextualMessage):
        """A reply changed the open conversation (its title, its order in the sidebar)."""

    def __init__(self, store: Store, session: ChatSession, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.session = session
        self.conversation: Conversation | None = None
        self.streaming: MessageView | None = None
        self.replying = False  # from the moment a send is accepted until its reply is fully drawn
        self.model_loading = False
        self.queue: list[str] = []  # sent while busy: go out in order
        self.budget = Budget(0, 0)
        self.reply_buffer = ReplyBuffer()  # reply text received but not drawn yet
        self.pacer = FramePacer()
        self.render_timer: Timer | None = None
        self.count_timer: Timer | None = None
        self.count_serial = 0  # which count is the latest: a thread already counting cannot be stopped
        self.counter_shown_at = 0.0
        self.model_name = ""  # the loaded model's name, as the status line shows it

    def compose(self) -> ComposeResult:
        yield MessageList(self.store, id="messages")
        yield Static("", id="queued", markup=False)
        yield Composer(id="composer", soft_wrap=True, show_line_numbers=False)
        yield StatusLine(id="status")

    def on_mount(self) -> None:
        self.query_one("#queued").display = False

    @property
    def messages(self) -> MessageList:
        return self.query_one(MessageList)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def busy(self) -> bool:
        """A reply is on its way or being drawn: conversations cannot be switched now."""
        return self.replying

    def views(self) -> list[MessageView]:
        return self.messages.views()

    # --- the open conversation ------------------------------------------------------------------------------

    async def open(self, conversation_id: int) -> None:
        if self.conversation is not None:
            self.save_draft()
        self.conversation = self.store.conversation(conversation_id)
        await self.messages.show(conversation_id)
        self.composer.text = self.store.setting(DRAFT_KEY.format(conversation_id), "")
        self.composer.move_cursor(self.composer.document.end)
        self.show_model_line()
        self.schedule_count()

    def save_draft(self) -> None:
        """Unsent text (queued messages first, then the composer) is kept with its conversation."""
        if self.conversation is None:
            return
        text = "\n\n".join([*self.queue, self.composer.text] if self.composer.text.strip() else self.queue)
        key = DRAFT_KEY.format(self.conversation.id)
        if text.strip() or self.store.setting(key):
            self.store.set_setting(key, text)

    def untouched(self, default_prompt: str | None) -> bool:
        """The open chat is as a new chat comes: no message, no unsent text, no title or setting of its own."""
        if self.conversation is None or self.replying or self.queue or self.composer.text.strip():
            return False
        chat = self.store.conversation(self.conversation.id)
        made = (None, NEW_CHAT, default_prompt, None, None, None)
        return (chat.head_id, chat.title, chat.system_prompt, chat.sampling, chat.n_ctx, chat.thinking) == made

    def close(self) -> None:
        """The app is closing: stop the reply (the session stores it as stopped) and keep unsent text."""
        if self.replying:
            self.session.stop()
        self.save_draft()
        self.queue.clear()

    # --- the model --------------------------------------------------------------------------------------------

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    def show_model_loading(self, name: str, fraction: float | None = None) -> None:
        self.model_loading = True
        self.status.show_loading(name, fraction)

    def show_model_loaded(self, info: ModelInfo | None, name: str) -> None:
        self.model_loading = False
        self.model_name = name if info is not None else ""
        self.status.show_model(info, name)
        if info is None:
            self.unqueue_all()
            return
        self.show_model_line()
        self.schedule_count()
        self.send_next()

    def show_model_line(self) -> None:
        """The model, and whether this chat's replies think (where the model can)."""
        info = self.session.model
        if not self.model_loading and info is not None and self.model_name:
            self.status.show_model(info, self.model_name, self.thinking_on())

    # --- thinking -------------------------------------------------------------------------------------------

    def thinking_on(self) -> bool:
        info = self.session.model
        chosen = self.conversation.thinking if self.conversation is not None else None
        return bool(info and (info.thinks_by_default if chosen is None else chosen))

    def toggle_thinking(self) -> None:
        """Thinking on or off for this chat, where the model's template has a switch; its next reply uses it."""
        info = self.session.model
        if info is None or self.conversation is None:
            return
        if info.thinking not in ("switch", "soft"):
            does = "always thinks" if info.thinking == "always" else "has no thinking switch"
            self.notify(f"This model {does}.", severity="warning")
            return
        thinking = not self.thinking_on()
        self.store.update_conversation(self.conversation.id, thinking=thinking)
        self.conversation = self.store.conversation(self.conversation.id)
        self.show_model_line()
        self.notify(f"Thinking {'on' if thinking else 'off'} for this chat (from its next reply).")
        self.schedule_count()  # the prompt changes with the switch: so does the count

    # --- the live counter -----------------------------------------------------------------------------------

    def on_text_area_changed(self, event: Composer.Changed) -> None:
        if isinstance(event.text_area, Composer):
            self.schedule_count()

    def schedule_count(self) -> None:
        if self.count_timer is not None:
            self.count_timer.stop()
        self.count_timer = self.set_timer(COUNT_DELAY_S, self.count_draft)

    def count_draft(self) -> None:
        if self.session.model is not None and not self.replying and self.conversation is not None:
            self.count_serial += 1
            self.count(self.composer.text, self.count_serial)

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def count(self, draft: str, serial: int) -> None:
        try:
            branch = self.store.branch(self.conversation.id)
            budget = self.session.budget(self.conversation, branch, draft)
        except LocalchatError as exc:
            log.info("count failed: %s", exc.message)
            return
        self.post_message(BudgetCounted(budget, draft, serial))

    def on_budget_counted(self, message: BudgetCounted) -> None:
        stale = message.serial != self.count_serial or message.draft != self.composer.text
        if not self.is_attached or stale or self.replying:
            # closing, or a count begun before a later change (the draft, thinking, the model) that finished
            # late: a newer one is on its way
            return
        self.budget = message.budget
        self.show_budget()

    def show_budget(self, extra: int = 0, reasoning: int = 0) -> None:
        """Before a send: prompt + reply budget. While a reply streams: prompt + the reply so far (it grows), and
        what of it is reasoning (it takes room now, but is not sent back with the history)."""
        budget = self.budget
        used = budget.used
        note = ""
        if budget.overflow_by:
            note = f"over by {budget.overflow_by:,}: shorten the message or raise the context size"
        elif budget.dropped_ids:
            left_out = len(budget.dropped_ids)
            note = (
                f"{left_out} oldest messages will be left out"
                if left_out > 1
                else "the oldest message will be left out"
            )
        if extra:
            used = budget.used - self.session.sampling_for(self.conversation).max_tokens + extra
            note = f"replying: {extra:,} token{'s' * (extra != 1)}"
            note += f" ({reasoning:,} reasoning, not kept)" if reasoning else ""
        self.status.counter.show(used, budget.n_ctx if budget.context_known else None, note, budget.exact)
        if extra:
            return  # while a reply streams, which messages are left out does not change
        dropped = set(budget.dropped_ids)
        for view in self.views():
            view.set_left_out(view.message.id in dropped)

    # --- sending --------------------------------------------------------------------------------------------

    def on_composer_submitted(self, event: Composer.Submitted) -> None:
        event.stop()
        text = event.text
        if self.session.model is None and not self.model_loading:
            self.composer.give_back(text)
            self.notify("Choose a model first (ctrl+l, or ctrl+o for the catalog).", severity="warning")
            return
        if not self.replying and not self.model_loading and self.budget.overflow_by:
            self.composer.give_back(text)
            self.notify(f"The message does not fit: over by {self.budget.overflow_by:,} tokens.", severity="error")
            return
        self.queue.append(text)
        self.show_queue()
        self.send_next()

    def send_next(self) -> None:
        """Send the oldest queued message once nothing else is in flight."""
        if self.replying or self.model_loading or not self.queue or self.session.model is None:
            return
        text = self.queue.pop(0)
        self.show_queue()
        self.start_reply("send", text)

    def unqueue_all(self) -> None:
        """Nothing can be sent (the model failed to load): queued messages go back into the composer."""
        if self.queue:
            self.composer.text = "\n\n".join([*self.queue, self.composer.text]).rstrip("\n")
            self.queue.clear()
            self.show_queue()

    def show_queue(self) -> None:
        queued = self.query_one("#queued", Static)
        queued.display = bool(self.queue)
        if self.queue:
            first = " ".join(self.queue[0].split())
            more = f" (+{len(self.queue) - 1} more)" if len(self.queue) > 1 else ""
            queued.update(f"queued: {inert(first[:80])}{'…' if len(first) > 80 else ''}{more}")

    def start_reply(self, kind: str, text: str | None, message_id: int | None = None) -> None:
        self.replying = True
        self.session.prepare_reply()  # from here on a stop (Esc) stops this reply, even before it starts
        self.generate(kind, text, message_id)

    def after_the_reply(self, then: str) -> bool:
        """Regenerate, edit and a switch of chats wait for the reply on its way: say so, rather than drop the key."""
        if self.replying:
            self.notify(f"A reply is on its way: Esc stops it, then {then}.", severity="warning")
        return not self.replying

    def regenerate(self) -> None:
        if any(v.message.role == "user" for v in self.views()) and self.after_the_reply("regenerate"):
            self.start_reply("regenerate", None)

    def regenerate_from(self, message_id: int, prefix: str) -> None:
        """A new version of a reply that keeps its text up to a chosen token (the sampling lab)."""
        if self.after_the_reply("regenerate"):
            self.start_reply("from", prefix, message_id)

    def edit(self, view: MessageView | None = None) -> None:
        """Edit a user message (the given one, else the last) and resend; the old branch stays in the database."""
        if view is None:
            users = [v for v in self.views() if v.message.role == "user"]
            view = users[-1] if users else None
        if view is None or view.message.role != "user" or not self.after_the_reply("edit"):
            return

        def resend(text: str | None) -> None:
            if text and not self.replying:
                self.start_reply("edit", text, view.message.id)

        self.app.push_screen(AskText("Edit and resend (the old version is kept):", view.message.content), resend)

    def on_message_view_edit_requested(self, message: MessageView.EditRequested) -> None:
        self.edit(message.view)

    def stop(self) -> None:
        self.session.stop()

    def copy_message(self, focused: object) -> None:
        views = self.views()
        target = focused if isinstance(focused, MessageView) else (views[-1] if views else None)
        if target is not None:
            target.action_copy()

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def generate(self, kind: str, text: str | None, message_id: int | None = None) -> None:
        listener = ReplyListener(self)
        try:
            if kind == "send":
                self.session.send(self.conversation.id, text, listener)
            elif kind == "edit":
                self.session.edit(message_id, text, listener)
            elif kind == "from":
                self.session.regenerate_from(message_id, text, listener)
            else:
                self.session.regenerate(self.conversation.id, listener)
        except LocalchatError as exc:
            self.post_message(ReplyFinished(None, exc.message))
            return
        except Exception as exc:  # any failure must end the reply, or every later send would wait for ever
            log.exception("the reply failed")
            self.post_message(ReplyFinished(None, f"the reply failed: {exc!r} (details in the log)"))
            return
        self.post_message(ReplyFinished(None))

    # --- streaming ------------------------------------------------------------------------------------------

    async def on_reply_started(self, message: ReplyStarted) -> None:
        # The count of the draft may not have landed before Enter (keys typed in a burst): the prompt as the
        # session sent it is the counter's base while the reply streams.
        reply_budget = self.session.sampling_for(self.conversation).max_tokens
        self.budget = replace(self.budget, used=message.prompt_tokens + reply_budget)
        await self.reopen_branch()
        self.streaming = next((v for v in self.views() if v.message.id == message.message_id), None)
        busy = self.cores_contended()
        self.pacer.start_reply(busy)
        if self.streaming is not None:
            # With every core busy a layout (≈10 ms) is paid for by llama.cpp: lay out every few lines, not each.
            self.streaming.start_stream(RESERVE_LINES if busy else 1)
        self.composer.cursor_blink = not busy  # a blink is a frame too: ≈1% of generation on 2 busy cores

    def cores_contended(self) -> bool:
        """llama.cpp's threads fill every core: what the UI draws is taken from generation (tui/pacing.py)."""
        model = self.session.model
        return model is not None and contended(model.threads, usable_cores(), model.gpu_layers > model.layers)

    def on_reply_pending(self, message: ReplyPending) -> None:
        """Text is waiting. The first of a reply is drawn at once; then one interval timer
        draws a frame at the pacer's rate while the reply streams (see tui/pacing.py) — one timer per reply,
        not a new one (an asyncio task) per frame."""
        if self.render_timer is None:
            self.call_later(self.render_pending)
            self.render_timer = self.set_interval(self.pacer.wait_s, self.render_pending)

    async def render_pending(self) -> None:
        pending = self.reply_buffer.take()
        if self.streaming is not None and (pending.text or pending.reasoning):
            now = time.monotonic()
            self.pacer.frame()
            if pending.reasoning:
                self.streaming.append_reasoning(pending.reasoning, pending.reasoning_tokens)
            if pending.text:
                self.streaming.append(pending.text, pending.reasoning_tokens)
            if now - self.counter_shown_at >= COUNTER_EVERY_S:
                # Not in the same repaint as the reply: Textual repaints the box around all changed regions, and
                # the counter at the bottom would stretch that box over the whole column, every frame.
                self.counter_shown_at = now
                self.call_after_refresh(self.show_reply_count, pending.tokens, pending.reasoning_tokens)

    def show_reply_count(self, tokens: int, reasoning: int) -> None:
        """The counter while a reply streams. A reply can finish before the refresh this waited for (one of a
        few fast tokens): then its final count is on its way, and this one would say "replying" under it."""
        if self.streaming is not None:
            self.show_budget(tokens, reasoning)

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        if not self.is_attached:
            return
        if message.error:
            self.notify(inert(message.error), severity="error", timeout=8, markup=False)
        if self.render_timer is not None:
            self.render_timer.stop()
            self.render_timer = None
        await self.render_pending()
        streaming = self.streaming
        if streaming is not None and streaming.is_attached:
            streaming.finish(self.store.message(streaming.message.id))
        self.streaming = None
        self.composer.cursor_blink = True
        await self.reopen_branch()
        self.post_message(self.Changed())
        last = self.store.branch(self.conversation.id)
        if last and last[-1].status == "error" and self.session.local:
            self.notify(
                "The engine stopped; the partial reply is kept and the next message starts a new engine.",
                severity="error",
                timeout=8,
            )
        elif last and last[-1].status == "error":  # a server's stream was cut, or it failed mid-reply
            why = (last[-1].stats or {}).get("error") or "the server's stream ended"
            self.notify(f"The reply was cut off: {inert(why)}. What came is kept.", severity="error", markup=False)
        self.replying = False  # only now: the reply is fully drawn
        self.schedule_count()
        self.send_next()

    async def reopen_branch(self) -> None:
        self.conversation = self.store.conversation(self.conversation.id)
        await self.messages.sync(self.streaming)


class ReplyListener:
    """Turns the session's reply callbacks (on a worker thread) into the reply buffer and messages for the view."""

    def __init__(self, view: ChatView) -> None:
        self.view = view

    def started(self, reply: StoredMessage, prompt_tokens: int) -> None:
        self.view.post_message(ReplyStarted(reply.id, prompt_tokens))

    def delta(self, delta: Delta) -> None:
        if self.view.reply_buffer.put(
            delta.text, delta.tokens, delta.reasoning, delta.reasoning_tokens, delta.thinking
        ):
            self.view.post_message(ReplyPending())
