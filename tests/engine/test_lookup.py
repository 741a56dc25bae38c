"""Prompt lookup (engine/lookup.py) on the real model: the same reply as without it, token for token, greedy and
sampled; the KV cache afterwards holds exactly the reply's tokens (a rejected draft's tail dropped); a cancel
mid-reply keeps what was sent. And the drafting rules themselves, on token ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.engine.lookup import DraftPolicy, PromptLookup
from tests.engine.checks import run_check


@pytest.fixture(scope="module")
def cases(model_path: Path) -> dict[str, dict]:
    rows = run_check("lookup_check.py", model_path)
    return {row["case"]: row for row in rows}


@pytest.mark.parametrize("case", ["greedy", "sampled"])
def test_lookup_gives_the_same_reply_and_cache_as_decoding_one_token_at_a_time(cases: dict, case: str) -> None:
    plain, lookup = cases[case]["plain"], cases[case]["lookup"]
    assert plain["speculative"] is None
    drafts = lookup["speculative"]
    # drafts were both taken and turned down, so both paths of the loop ran
    assert drafts["drafted"] > drafts["accepted"] > 10
    assert lookup["completion"] == plain["completion"] == 160
    assert lookup["text"] == plain["text"] and lookup["emitted"] == lookup["text"]
    assert lookup["cached"] == plain["cached"]  # the KV cache holds the reply, no rejected draft


def test_a_cancel_during_lookup_keeps_what_was_sent(cases: dict) -> None:
    stopped, full = cases["cancelled"], cases["greedy"]["lookup"]
    assert stopped["reason"] == "cancelled" and stopped["completion"] == 30
    assert stopped["text"] == stopped["emitted"] and full["text"].startswith(stopped["text"])
    reply_cached = len(stopped["cached"]) - stopped["prompt"]
    assert 29 <= reply_cached <= 30 and full["cached"][: len(stopped["cached"])] == stopped["cached"]


def test_a_draft_is_what_followed_the_longest_earlier_match() -> None:
    lookup = PromptLookup([5, 6, 7, 8, 9, 1, 6, 7, 2, 3])
    assert lookup.draft(4) == ([], 0)  # the end (2, 3) occurred nowhere before
    lookup.append(6)
    lookup.append(7)  # ends with (6, 7): last seen followed by 2
    assert lookup.draft(3) == ([2, 3, 6], 2)
    lookup = PromptLookup([1, 6, 7, 8, 9, 2, 6, 7, 4])
    lookup.append(1)
    lookup.append(6)
    lookup.append(7)  # (1, 6, 7) matches the start, (6, 7) alone matches later: the longer match wins
    assert lookup.draft(2) == ([8, 9], 3)


def test_a_draft_says_how_long_the_copy_has_run_and_goes_round_a_loop_again() -> None:
    lookup = PromptLookup([9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 0, 1, 2, 3, 4, 5, 6, 7])
    assert lookup.draft(1) == ([8], 8)  # (5, 6, 7) matched, and the 5 tokens before it agree too: 8 in all
    lookup = PromptLookup([9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 1, 2, 3, 4, 5, 6, 7])
    assert lookup.draft(1) == ([8], 4)  # the copy began a token later: 7 agree, of the class from 4 to 7
    lookup = PromptLookup([0, 7, 7, 7, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2])
    # (4, 1, 2) last came before 3, 4 and the context's end: the draft goes on round the loop, 4 tokens a turn
    assert lookup.draft(7) == ([3, 4, 1, 2, 3, 4, 1], 4)  # 1, 2, 3, 4, 1, 2 agree with the turn before


def test_the_policy_drafts_long_where_drafts_are_taken_and_not_at_all_where_they_miss() -> None:
    policy = DraftPolicy()
    policy.timed(1, 0.010)
    policy.timed(2, 0.017)
    policy.timed(9, 0.045)
    policy.timed(1, 0.060)  # one decode slowed by other work: the fastest recent one stands for one row
    assert policy.cost(9) == pytest.approx(4.5)
    assert policy.cost(5) == pytest.approx(1 + 3.5 / 8 * 4)  # not measured: at the cheapest rate a row measured
    for _ in range(20):
        policy.record(3, 8, 8)
    assert policy.length(3, 16) >= 8
    assert policy.length(3, 2) == 2  # never past the room left
    for _ in range(20):
        policy.record(2, 4, 0)
    assert policy.length(2, 16) == 0
    # where a wider batch costs nearly nothing (a GPU), even an unsure draft pays
    gpu = DraftPolicy()
    for rows in (1, 2, 9):
        gpu.timed(rows, 0.010)
    assert gpu.length(2, 16) > 0
    assert DraftPolicy().length(0, 16) == 0  # nothing matched


def test_the_policy_tries_a_wide_draft_where_a_narrow_one_was_dear() -> None:
    """Gemma 3's CPU kernels take rows in pairs: 3 rows cost more than 2 rows' rate says. A width not measured
    yet is priced at the cheapest rate measured, so the wide draft that pays is tried (and then known)."""
    policy = DraftPolicy()
    policy.timed(1, 0.010)
    policy.timed(2, 0.016)
    policy.timed(3, 0.0266)
    for _ in range(20):
        policy.record(32, 2, 2)  # a long copy: every drafted token taken
    assert policy.length(32, 16) >= 12
    for rows in range(4, 18):  # tried: each wider batch cost more than its rows, so nothing wide pays after all
        policy.timed(rows, 0.012 * rows)
    assert policy.length(32, 16) == 1
    # the only width measured yet was dear (SmolLM2 at 2,000 cached tokens, 2026-12-06: 2 rows cost 1.95 of one):
    # the wider ones are still tried at the prior's rate, not priced at that one's and never known
    policy = DraftPolicy()
    policy.timed(1, 0.010)
    policy.timed(2, 0.0195)
    for _ in range(20):
        policy.record(32, 2, 2)
    assert policy.length(32, 16) >= 12


def test_costs_timed_over_a_long_context_do_not_price_a_short_one() -> None:
    """A long chat's wide batches are dear (attention over every cached token, each row): a short chat after it
    is priced by its own decodes, and drafts at once where its own one-row decode is known."""
    policy = DraftPolicy()
    for rows in range(1, 18):  # over 2,000 cached tokens, where the one-row decodes were at their slowest
        policy.timed(rows, 0.010 * rows, context=2_000)
    for _ in range(20):
        policy.record(4, 4, 3)
    assert policy.length(4, 16, context=2_000) == 0
    assert policy.length(4, 16, context=100) == 0  # nothing timed at this length yet: one row first
    policy.timed(1, 0.004, context=100)  # a short context's one-row decode, faster
    assert policy.cost(9, context=100) == pytest.approx(1 + 0.5 * 8)  # its own prior, not 0.09 / 0.004
    assert policy.length(4, 16, context=100) > 0
