"""A chat as the UI sees it: the shown branch of a conversation, the loaded model, budgeting, and replies that
stream into the store as they arrive (so a kill mid-reply loses nothing that was shown).

Blocking calls: the TUI runs them in worker threads and turns the callbacks into messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from localchat.chat.backend import ChatBackend
from localchat.chat.context import UNKNOWN_CONTEXT, PromptPlan, plan_to_fit
from localchat.chat.sampling import DEFAULT_PRESET, SamplingParams, preset
from localchat.engine.client import EngineClient
from localchat.engine.protocol import (
    ChatMessage,
    ConversationTokens,
    Delta,
    Done,
    Generate,
    LoadOptions,
    ModelInfo,
    ReplyScores,
)
from localchat.errors import ContextOverflow, LocalchatError
from localchat.store.db import NEW_CHAT, Conversation, Message, Store

SAVE_EVERY_S = 0.5  # how often a streaming reply is written to the database


class ReplyListener(Protocol):
    # the reply's row exists (status "streaming"); `prompt_tokens`: exactly what the prompt sent takes
    def started(self, reply: Message, prompt_tokens: int) -> None: ...

    def delta(self, delta: Delta) -> None: ...


@dataclass(frozen=True)
class Budget:
    """The live counter: `used` of `n_ctx` tokens, and which shown messages a send would leave out."""

    used: int
    n_ctx: int
    dropped_ids: tuple[int, ...] = ()
    overflow_by: int = 0  # > 0: even the system prompt and the draft do not fit
    exact: bool = True  # False: a server's estimate (the counter shows "≈")
    context_known: bool = True  # False: a server that does not say its context size (n_ctx is 0)


@dataclass
class ChatSession:
    store: Store
    engine: EngineClient  # the local engine (loads, the sampling lab, the tokens view)
    remote: ChatBackend | None = None  # a server's model, when one is chosen instead of a local one
    model_name: str | None = None
    default_sampling: SamplingParams = field(default_factory=lambda: preset(DEFAULT_PRESET))
    load_options: LoadOptions = field(default_factory=LoadOptions)  # the settings file's [engine]
    lookup: bool = True  # [engine] lookup: draft tokens copied from the chat, checked by the model

    # --- model ----------------------------------------------------------------------------------------------

    def load_model(
        self, path: Path, name: str, n_ctx: int | None = None, progress: Callable[[float], None] | None = None
    ) -> ModelInfo:
        """Load with the settings file's GPU layers and threads; a conversation's context size beats its ctx.
        `stop()` from `prepare_load()` on stops the load (LoadCancelled)."""
        options = replace(self.load_options, n_ctx=n_ctx or self.load_options.n_ctx)
        info = self.engine.load(path, options, progress, reset_cancel=False)
        self.remote = None
        self.model_name = name
        return info

    def use_remote(self, backend: ChatBackend, name: str) -> None:
        """From the next reply on, this chat's replies come from a server's model (opened by the caller). The
        local model stays loaded: choosing it again is instant."""
        self.remote = backend
        self.model_name = name

    @property
    def backend(self) -> ChatBackend:
        return self.remote if self.remote is not None else self.engine

    @property
    def model(self) -> ModelInfo | None:
        return self.backend.model

    @property
    def local(self) -> bool:
        return self.remote is None

    @property
    def n_ctx(self) -> int:
        return self.model.n_ctx if self.model else 0

    # --- conversation state ---------------------------------------------------------------------------------

    def sampling_for(self, conversation: Conversation) -> SamplingParams:
        return self.default_sampling.with_overrides(**(conversation.sampling or {}))

    def engine_messages(self, conversation: Conversation, branch: list[Message]) -> list[ChatMessage]:
        messages = [ChatMessage("system", conversation.system_prompt)] if conversation.system_prompt else []
        messages += [ChatMessage(m.role, m.content) for m in _with_text(branch)]
        return messages

    def budget(self, conversation: Conversation, branch: list[Message], draft: str) -> Budget:
        """Exact tokens for system prompt + history + draft + reply budget, with the model's tokenizer."""
        if self.model is None:
            return Budget(0, 0)
        kept_branch = _with_text(branch)
        exact, known = self.backend.exact_counts, self.n_ctx > 0
        try:
            plan = self._plan(conversation, branch, draft)
        except ContextOverflow as exc:
            return Budget(exc.needed, self.n_ctx, tuple(m.id for m in kept_branch), exc.over_by, exact, known)
        # History is the shown branch, and dropping takes its oldest messages first (by estimated shares on a
        # server that only estimates: then what is left out is an estimate too).
        dropped = tuple(m.id for m in kept_branch[: len(plan.dropped)])
        return Budget(plan.fit.used, self.n_ctx, dropped, 0, exact, known)

    # --- replies --------------------------------------------------------------------------------------------

    def send(self, conversation_id: int, text: str, listener: ReplyListener) -> Done:
        """Store the user's message under the current head, then stream the reply."""
        conversation = self.store.conversation(conversation_id)
        user = self.store.add_message(conversation_id, "user", text, conversation.head_id)
        return self._reply(conversation_id, user, listener)

    def edit(self, message_id: int, text: str, listener: ReplyListener) -> Done:
        """A new version of a user message beside the old one (whose branch is kept), then a reply to it."""
        old = self.store.message(message_id)
        user = self.store.add_message(old.conversation_id, "user", text, old.parent_id)
        return self._reply(old.conversation_id, user, listener)

    def regenerate(self, conversation_id: int, listener: ReplyListener) -> Done:
        """Another reply to the last user message; the previous reply stays as a sibling."""
        branch = self.store.branch(conversation_id)
        last_user = next((m for m in reversed(branch) if m.role == "user"), None)
        if last_user is None:
            raise LocalchatError("nothing to regenerate: this chat has no message of yours yet")
        self.store.update_conversation(conversation_id, head_id=last_user.id)
        return self._reply(conversation_id, last_user, listener)

    def regenerate_from(self, reply_id: int, prefix: str, listener: ReplyListener) -> Done:
        """Another reply beside `reply_id` that keeps `prefix` (its first tokens) and goes on from there with the
        chat's current settings; only the tokens after it are generated."""
        if not self.local:
            raise LocalchatError("regenerate from here continues a reply token by token: choose a local model")
        reply = self.store.message(reply_id)
        if reply.role != "assistant" or reply.parent_id is None or not reply.content.startswith(prefix):
            raise LocalchatError("regenerate from here: choose a token of a reply")
        user = self.store.message(reply.parent_id)
        self.store.update_conversation(reply.conversation_id, head_id=user.id)
        return self._reply(reply.conversation_id, user, listener, prefix)

    def score(self, reply_id: int, top_n: int = 20) -> ReplyScores:
        """The model's candidates at each token of a shown reply, with the prompt it answered (the sampling lab)."""
        if not self.local:
            raise LocalchatError("the sampling lab reads the local engine's candidates: choose a local model")
        reply = self.store.message(reply_id)
        conversation = self.store.conversation(reply.conversation_id)
        branch = self.store.branch(conversation.id)
        before = next((branch[:i] for i, m in enumerate(branch) if m.id == reply_id), None)
        if before is None or reply.role != "assistant":
            raise LocalchatError("only a reply in the open chat can be scored")
        plan = self._plan(conversation, before)
        return self.engine.score_reply(plan.messages, reply.content, top_n, conversation.thinking)

    def prepare_load(self) -> None:
        """Called when a load is asked for, before its worker starts: a stop from now on stops that load."""
        self.engine.reset_cancel()

    def prepare_reply(self) -> None:
        """Called when a reply is asked for, before its worker starts: a stop from now on stops that reply."""
        self.backend.reset_cancel()

    def stop(self) -> None:
        self.backend.cancel()

    def _plan(self, conversation: Conversation, branch: list[Message], draft: str | None = None) -> PromptPlan:
        """What to send for this branch (+ a draft), with old turns left out to fit; exact counts."""
        messages = self.engine_messages(conversation, branch)
        if draft is not None:
            messages.append(ChatMessage("user", draft))
        n_ctx = self.n_ctx or UNKNOWN_CONTEXT

        def measure(sent: Sequence[ChatMessage]) -> ConversationTokens:
            return self.backend.measure(sent, conversation.thinking)

        return plan_to_fit(messages, measure, n_ctx, self.sampling_for(conversation).max_tokens)

    def _reply(self, conversation_id: int, user: Message, listener: ReplyListener, prefix: str = "") -> Done:
        conversation = self.store.conversation(conversation_id)
        branch = self.store.branch(conversation_id)
        plan = self._plan(conversation, branch)  # raises ContextOverflow when even the newest cannot fit
        reply = self.store.add_message(
            conversation_id, "assistant", "", user.id, model=self.model_name, status="streaming"
        )
        listener.started(reply, plan.fit.prompt_tokens)
        parts: list[str] = [prefix]
        if prefix:
            listener.delta(Delta(prefix))
        reasoning: list[str] = []  # a thinking model's: stored apart, never sent back
        saved_at = time.monotonic()
        done: Done | None = None
        sampling = self.sampling_for(conversation)
        try:
            request = Generate(
                plan.messages, sampling=sampling, thinking=conversation.thinking, prefix=prefix, lookup=self.lookup
            )
            for event in self.backend.generate(request, reset_cancel=False):
                if isinstance(event, Done):
                    done = event
                    break
                parts.append(event.text)
                reasoning.append(event.reasoning)
                listener.delta(event)
                if time.monotonic() - saved_at > SAVE_EVERY_S:
                    self.store.update_message(reply.id, "".join(parts), reasoning="".join(reasoning))
                    saved_at = time.monotonic()
        finally:
            text = prefix + done.text if done is not None else "".join(parts)
            thought = done.reasoning if done is not None else "".join(reasoning).strip()
            status = {"eos": "complete", "length": "complete", "cancelled": "cancelled"}.get(
                done.stop_reason if done else "", "error"
            )
            stats = reply_stats(done, self.model_name) | {"sampling": sampling.to_dict()}  # what produced this reply
            self.store.update_message(reply.id, text, status, stats, thought)
        if conversation.title == NEW_CHAT:
            self.store.update_conversation(conversation_id, title=_title_from(user.content))
        return done


def _with_text(branch: list[Message]) -> list[Message]:
    """The messages a prompt is made of: a reply stopped or failed before its first token has nothing to say
    (nor one stopped mid-reasoning: reasoning is never sent back, as most thinking models' templates drop it)."""
    return [m for m in branch if m.content]


def reply_stats(done: Done | None, model: str | None) -> dict:
    if done is None:
        return {"model": model, "stop_reason": "error"}
    return (
        {
            "model": model,
            "stop_reason": done.stop_reason,
            "error": done.error,
            "prompt_tokens": done.usage.prompt_tokens,
            "evaluated_prompt_tokens": done.usage.evaluated_prompt_tokens,
            "completion_tokens": done.usage.completion_tokens,
            "ttft_s": done.timings.ttft_s,
            "decode_tok_s": done.timings.decode_tok_s,
        }
        | ({"speculative": asdict(done.speculative)} if done.speculative else {})
        | (
            {
                "reasoning_state": done.reasoning_state,
                "reasoning_tokens": done.usage.reasoning_tokens,
                "thinking_s": done.timings.thinking_s,
            }
            if done.reasoning_state != "none"
            else {}
        )
    )


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return (line[:40] + "…") if len(line) > 40 else (line or NEW_CHAT)
