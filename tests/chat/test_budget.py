"""Context budgeting: examples and the invariants, as properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localchat.chat.budget import Turn, fit_context
from localchat.errors import ContextOverflow


def test_everything_fits() -> None:
    history = [Turn("user", 10), Turn("assistant", 20)]
    fit = fit_context(n_ctx=100, reply_budget=30, system=5, history=history, newest=7, overhead=3)
    assert fit.dropped == ()
    assert fit.prompt_tokens == 45 and fit.used == 75 and fit.left == 25


def test_drops_oldest_exchange_whole() -> None:
    history = [Turn("user", 10), Turn("assistant", 20), Turn("user", 10), Turn("assistant", 20)]
    fit = fit_context(n_ctx=70, reply_budget=20, system=5, history=history, newest=5)
    assert fit.dropped == (0, 1)  # the first user message and its reply go together
    assert fit.used == 60


def test_overflow_says_by_how_much() -> None:
    with pytest.raises(ContextOverflow) as error:
        fit_context(n_ctx=100, reply_budget=50, system=30, newest=40, history=[Turn("user", 1)])
    assert error.value.over_by == 20
    assert "20 tokens too many" in error.value.message


turns = st.lists(st.builds(Turn, st.sampled_from(["user", "assistant"]), st.integers(0, 300)), max_size=30)


@given(
    history=turns,
    system=st.integers(0, 200),
    newest=st.integers(0, 200),
    reply=st.integers(0, 500),
    overhead=st.integers(0, 10),
    n_ctx=st.integers(1, 4000),
)
def test_invariants(history, system, newest, reply, overhead, n_ctx) -> None:
    fixed = system + newest + overhead + reply
    try:
        fit = fit_context(
            n_ctx=n_ctx, reply_budget=reply, history=history, system=system, newest=newest, overhead=overhead
        )
    except ContextOverflow as error:
        assert fixed > n_ctx  # only when what must be kept cannot fit
        assert error.over_by == fixed - n_ctx
        return
    kept = history[len(fit.dropped) :]
    # What is counted is exact, and it fits.
    assert fit.used == fixed + sum(t.tokens for t in kept)
    assert fit.used <= n_ctx and fit.left == n_ctx - fit.used
    # Dropped turns are the oldest ones, and the kept history starts at a user message (or is empty).
    assert fit.dropped == tuple(range(len(fit.dropped)))
    assert not kept or len(fit.dropped) == 0 or kept[0].role == "user"
    # Nothing was dropped without need: keeping the previous group as well would not fit.
    if fit.dropped:
        starts = [i for i, t in enumerate(history) if i == 0 or t.role == "user"]
        previous = max(s for s in starts if s < len(fit.dropped))
        assert fixed + sum(t.tokens for t in history[previous:]) > n_ctx
