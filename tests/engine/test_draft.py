"""A draft model (engine/draft.py) on the real model: the same reply as without it, token for token, greedy and
sampled; the KV cache afterwards holds exactly the reply's tokens (turned-down guesses dropped); a cancel keeps
what was sent; a draft of another vocabulary is refused at load with a line that says what to use."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from localchat.engine.lookup import DRAFT_MODEL, RECENT, DraftPolicy
from tests.engine.checks import run_check


@pytest.fixture(scope="module")
def cases(model_path: Path, gemma_path: Path) -> dict[str, dict]:
    rows = run_check("draft_check.py", model_path, gemma_path)
    return {row["case"]: row for row in rows}


@pytest.mark.parametrize("case", ["greedy", "sampled"])
def test_a_draft_model_gives_the_same_reply_and_cache_as_decoding_alone(cases: dict, case: str) -> None:
    row = cases[case]
    plain, drafted = row["plain"], row["draft"]
    assert row["draft"] and plain["speculative"] is None
    guesses = drafted["speculative"]
    assert guesses["source"] == "draft model" and guesses["drafted"] >= guesses["accepted"] > 10
    assert drafted["completion"] == plain["completion"] == 150
    assert drafted["text"] == plain["text"] and drafted["emitted"] == drafted["text"]
    assert drafted["cached"] == plain["cached"]  # the KV cache holds the reply, no turned-down guess


def test_sampled_guesses_are_turned_down_too(cases: dict) -> None:
    guesses = cases["sampled"]["draft"]["speculative"]
    assert guesses["drafted"] > guesses["accepted"]


def test_a_cancel_while_drafting_keeps_what_was_sent(cases: dict) -> None:
    stopped, full = cases["cancelled"], cases["greedy"]["draft"]
    assert stopped["reason"] == "cancelled" and stopped["completion"] == 30
    assert stopped["text"] == stopped["emitted"] and full["text"].startswith(stopped["text"])
    assert full["cached"][: len(stopped["cached"])] == stopped["cached"]


def test_the_draft_reads_a_long_prompt_with_the_target_and_restores_its_state_after_a_restart(cases: dict) -> None:
    caught = cases["caught up"]
    assert caught["prompt"] > 300 and caught["draft_held_prompt"]
    assert 0 < caught["evaluated_after_restart"] <= 2  # the last prompt token, not the whole chat


def test_a_draft_of_another_vocabulary_is_refused_with_what_to_use(cases: dict) -> None:
    error = cases["other vocabulary"]["error"]
    assert error.startswith("gemma-3-270m-q4_k_m.gguf cannot draft for SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "262,144 tokens" in error and "same family" in error and "\n" not in error


def test_guesses_are_drafted_where_they_are_cheap_and_not_where_they_cost_a_decode() -> None:
    policy = DraftPolicy()
    policy.timed(1, 0.010)
    policy.timed(9, 0.012)  # a wide batch as cheap as one row (a GPU)
    recent = deque([0.004, 0.001, 0.002], maxlen=RECENT)  # as the draft model keeps them (DraftModel.guess_s)
    assert policy.guess_cost(recent) == pytest.approx(0.1)  # the fastest guess over one row
    assert policy.length(DRAFT_MODEL, 16, 0.05) > 0
    assert policy.length(DRAFT_MODEL, 16, 1.0) == 0  # each guess as dear as the target's own step
