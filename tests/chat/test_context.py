"""Planning what is sent when a chat outgrows the window: what is kept is what was counted."""

from __future__ import annotations

from collections.abc import Sequence

from localchat.chat.context import plan_prompt, plan_to_fit
from localchat.engine.protocol import ChatMessage, ConversationTokens

PREAMBLE = 7  # what a template puts before its first message (BOS, a default system prompt)


def measure(messages: Sequence[ChatMessage]) -> ConversationTokens:
    """Shares as the engine gives them: each message's words, the first one carrying the template's opening."""
    shares = [len(m.content.split()) for m in messages]
    shares[0] += PREAMBLE
    return ConversationTokens(tuple(shares), 2)


def test_what_is_kept_is_measured_again_and_fits() -> None:
    turns = [ChatMessage("user" if i % 2 == 0 else "assistant", "word " * 10) for i in range(8)]
    messages = [*turns, ChatMessage("user", "newest " * 5)]
    n_ctx, budget = 60, 10
    naive = plan_prompt(messages, measure(messages), n_ctx, budget)
    assert measure(naive.messages).total + budget > n_ctx  # the preamble went with the dropped turns
    plan = plan_to_fit(messages, measure, n_ctx, budget)
    assert measure(plan.messages).total + budget <= n_ctx == plan.fit.n_ctx
    assert plan.fit.prompt_tokens == measure(plan.messages).total
    assert list(plan.dropped) == messages[: len(plan.dropped)] and len(plan.dropped) > len(naive.dropped)
    assert plan.messages[-1] == messages[-1]


def test_nothing_left_out_is_measured_once() -> None:
    calls = []
    messages = [ChatMessage("user", "hi")]
    plan = plan_to_fit(messages, lambda m: calls.append(m) or measure(m), 100, 10)
    assert plan.dropped == () and len(calls) == 1
