"""Fit a conversation into the context window with the engine's exact per-message token counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from localchat.chat.budget import ContextFit, Turn, fit_context
from localchat.engine.protocol import ChatMessage, ConversationTokens


@dataclass(frozen=True)
class PromptPlan:
    messages: tuple[ChatMessage, ...]  # what will be sent
    dropped: tuple[ChatMessage, ...]  # old messages left out to fit, oldest first
    fit: ContextFit


UNKNOWN_CONTEXT = 1 << 40  # a server that does not say its context size: nothing is left out on our side


def plan_prompt(
    messages: Sequence[ChatMessage], tokens: ConversationTokens, n_ctx: int, reply_budget: int
) -> PromptPlan:
    """`messages` is [system?] + history + newest user message; `tokens` their measured shares."""
    if not messages or messages[-1].role != "user":
        raise ValueError("the conversation must end with the user's newest message")
    has_system = messages[0].role == "system"
    system = tokens.per_message[0] if has_system else 0
    start = 1 if has_system else 0
    history = messages[start:-1]
    fit = fit_context(
        n_ctx=n_ctx,
        reply_budget=reply_budget,
        system=system,
        history=[Turn(m.role, n) for m, n in zip(history, tokens.per_message[start:-1], strict=False)],
        newest=tokens.per_message[-1],
        overhead=tokens.generation_prompt,
    )
    dropped = tuple(history[i] for i in fit.dropped)
    kept = tuple(messages[:start]) + tuple(history[len(fit.dropped) :]) + (messages[-1],)
    return PromptPlan(kept, dropped, fit)
