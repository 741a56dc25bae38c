"""Fit a conversation into the context window with the engine's exact per-message token counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def plan_to_fit(
    messages: Sequence[ChatMessage],
    measure: Callable[[Sequence[ChatMessage]], ConversationTokens],
    n_ctx: int,
    reply_budget: int,
) -> PromptPlan:
    """`plan_prompt` on measured shares, made exact when old messages are left out: the first message kept then
    carries what the template puts before the first one (BOS, a default system prompt), which the shares counted
    in a message now dropped. So what is kept is measured again, and planned again, until nothing more goes."""
    plan = plan_prompt(messages, measure(messages), n_ctx, reply_budget)
    dropped = plan.dropped
    while plan.dropped:
        plan = plan_prompt(plan.messages, measure(plan.messages), n_ctx, reply_budget)
        dropped += plan.dropped
    return PromptPlan(plan.messages, dropped, plan.fit)
