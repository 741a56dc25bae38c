"""chat/distribution.py: the chain's reshaping of stored candidates, by its rules on small hand-made
distributions, and against llama.cpp's own sampler chain over the whole vocabulary of the real model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from localchat.chat.distribution import Scored, reshape
from localchat.chat.sampling import SamplingParams


def stored(probabilities: list[float], shift: float = 3.0) -> list[Scored]:
    """Candidates with these raw probabilities (most likely first); logits are the logprobs plus a shift."""
    return [Scored(i, math.log(p) + shift, math.log(p)) for i, p in enumerate(probabilities)]


FIVE = [0.4, 0.3, 0.15, 0.1, 0.05]  # the whole vocabulary: nothing unseen


def test_greedy_keeps_only_the_top_raw_candidate() -> None:
    shaped = reshape(stored(FIVE), SamplingParams(temperature=0))
    assert shaped.probabilities == (1.0, 0.0, 0.0, 0.0, 0.0) and shaped.exact


def test_top_k_leaves_k_and_normalises() -> None:
    shaped = reshape(stored(FIVE), SamplingParams(temperature=1, top_k=2, top_p=1, min_p=0))
    assert [p > 0 for p in shaped.probabilities] == [True, True, False, False, False]
    assert shaped.probabilities[0] == pytest.approx(0.4 / 0.7) and sum(shaped.probabilities) == pytest.approx(1)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    kept = lambda p: sum(x > 0 for x in reshape(stored(FIVE), SamplingParams(1, p, 0, 0)).probabilities)  # noqa: E731
    assert (kept(0.4), kept(0.41), kept(0.7), kept(0.71), kept(0.99)) == (1, 2, 2, 3, 5)


def test_min_p_drops_what_is_below_min_p_times_the_top() -> None:
    shaped = reshape(stored(FIVE), SamplingParams(temperature=1, top_p=1, top_k=0, min_p=0.3))
    assert [p > 0 for p in shaped.probabilities] == [True, True, True, False, False]  # 0.1 < 0.3 × 0.4 ≤ 0.15


def test_temperature_sharpens_or_flattens_the_survivors() -> None:
    cold = reshape(stored(FIVE), SamplingParams(temperature=0.5, top_p=1, top_k=0, min_p=0)).probabilities
    hot = reshape(stored(FIVE), SamplingParams(temperature=2.0, top_p=1, top_k=0, min_p=0)).probabilities
    assert cold[0] == pytest.approx(0.16 / sum(p * p for p in FIVE)) and hot[0] < 0.4 < cold[0]


def test_the_repeat_penalty_lowers_recent_tokens() -> None:
    settings = SamplingParams(temperature=1, top_p=1, top_k=0, min_p=0, repeat_penalty=1.5)
    assert reshape(stored(FIVE), settings, recent=[0]).probabilities[0] < 0.4
    assert reshape(stored(FIVE), SamplingParams(temperature=0, repeat_penalty=2.0), recent=[0]).probabilities[1] == 1


def test_a_set_that_reaches_past_the_stored_candidates_is_not_exact() -> None:
    partial = stored([0.2, 0.1, 0.05])  # 0.65 of the mass is unseen
    assert not reshape(partial, SamplingParams(temperature=1, top_p=0.9, top_k=0, min_p=0)).exact
    assert reshape(partial, SamplingParams(temperature=1, top_p=0.25, top_k=0, min_p=0)).exact
    assert reshape(partial, SamplingParams(temperature=1, top_p=1, top_k=2, min_p=0)).exact


@pytest.fixture(scope="module")
def against_llama(model_path: Path) -> list[dict]:
    script = Path(__file__).with_name("distribution_check.py")
    result = subprocess.run(
        [sys.executable, str(script), str(model_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_reshaping_agrees_with_llama_cpps_chain_on_the_real_models_logits(against_llama: list[dict]) -> None:
    """Same survivors, same probabilities, and for 40 seeds the same pick as llama.cpp's chain over the whole
    vocabulary, wherever the 64 stored candidates hold every survivor (and it says so where they do not)."""
    assert len(against_llama) == 81
    exact = [row for row in against_llama if row["exact"]]
    assert len(exact) == 72  # every setting but the unfiltered "wide" one, at 9 positions
    for row in exact:
        assert row["same_set"] and row["max_diff"] < 1e-5 and row["sum"] == pytest.approx(1.0), row
        assert row["choices_agree"] == row["seeds"], row
        if row["settings"] == "greedy":
            assert row["greedy_pick"] == row["top_raw"], row
        if row["settings"] == "top_k=5":
            assert row["ours"] == 5, row
    for row in against_llama:
        if not row["exact"]:
            assert row["settings"] == "wide" and not row["same_set"], row
