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


def test_the_policy_drafts_long_where_drafts_are_taken_and_not_at_all_where_they_miss() -> None:
    policy = DraftPolicy()
    policy.timed(1, 0.010)
    policy.timed(2, 0.017)
    policy.timed(9, 0.045)
    policy.timed(1, 0.060)  # one decode slowed by other work: the fastest recent one stands for one row
    assert policy.cost(9) == pytest.approx(4.5) and policy.cost(5) == pytest.approx(1 + 0.7 * 4)  # from 2 rows
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
