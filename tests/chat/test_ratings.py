"""Ratings from votes: checked against the Bradley–Terry equations themselves, not against this code's output."""

from __future__ import annotations

import math

from localchat.chat.ratings import BASE, SCALE, Battle, fit, leaderboard, position_bias

VOTES = [
    Battle("big", "small", "a"),
    Battle("small", "big", "b"),
    Battle("big", "small", "a"),
    Battle("small", "big", "a"),
    Battle("mid", "small", "a"),
    Battle("big", "mid", "tie"),
    Battle("mid", "big", "b"),
    Battle("small", "mid", "bad"),
]


def strength(rating: float) -> float:
    return 10 ** ((rating - BASE) / SCALE)


def test_the_fit_solves_the_bradley_terry_equations_with_the_anchor_prior() -> None:
    """A reference computation: at the maximum, each contestant's expected score (against its opponents and the
    1000-rated anchor it virtually tied once) equals its actual score, ties counting half."""
    ratings = fit(VOTES)
    assert set(ratings) == {"big", "mid", "small"}
    for name, rating in ratings.items():
        actual, expected = 0.5, 0.0  # the virtual tie with the anchor
        expected += strength(rating) / (strength(rating) + 1.0)
        for battle in VOTES:
            if name not in (battle.a, battle.b):
                continue
            other = battle.b if battle.a == name else battle.a
            mine = {"a": 1.0, "b": 0.0}.get(battle.vote, 0.5)
            actual += mine if battle.a == name else 1.0 - mine
            expected += strength(rating) / (strength(rating) + strength(ratings[other]))
        assert math.isclose(actual, expected, abs_tol=1e-6), name
    assert ratings["big"] > ratings["mid"] > ratings["small"]


def test_two_models_match_the_closed_form() -> None:
    """A beats B w times and loses l: with the prior, the solution of the two equations (checked numerically)."""
    ratings = fit([Battle("x", "y", "a")] * 3 + [Battle("x", "y", "b")])
    sx, sy = strength(ratings["x"]), strength(ratings["y"])
    assert math.isclose(3.5, 4 * sx / (sx + sy) + sx / (sx + 1), abs_tol=1e-6)
    assert math.isclose(1.5, 4 * sy / (sx + sy) + sy / (sy + 1), abs_tol=1e-6)


def test_a_vote_moves_ratings_its_way() -> None:
    before = fit(VOTES)
    after = fit([*VOTES, Battle("small", "big", "a")])
    assert after["small"] > before["small"] and after["big"] < before["big"]
    tie = fit([*VOTES, Battle("small", "big", "tie")])
    assert before["small"] < tie["small"] < after["small"]


def test_an_unbeaten_model_stays_finite_and_one_model_with_itself_says_nothing() -> None:
    ratings = fit([Battle("winner", "loser", "a")] * 50)
    assert 1000 < ratings["winner"] < 3000 and math.isclose(
        ratings["winner"] - BASE, BASE - ratings["loser"], abs_tol=1e-3
    )
    assert fit([Battle("same", "same", "a")]) == {}


def test_the_leaderboard_counts_votes_and_brackets_each_rating() -> None:
    table = leaderboard(VOTES)
    assert [row.model for row in table] == ["big", "mid", "small"]
    assert {row.model: row.votes for row in table} == {"big": 6, "small": 6, "mid": 4}
    for row in table:
        low, high = row.ci
        assert low <= row.rating <= high and high - low > 10  # 8 votes leave real doubt
    assert leaderboard(VOTES) == table  # a fixed bootstrap seed: the same votes, the same table
    many = leaderboard(VOTES * 20)
    assert all(m.ci[1] - m.ci[0] < t.ci[1] - t.ci[0] for m, t in zip(many, table, strict=True))
    assert leaderboard([]) == []


def test_position_bias_reads_the_side_that_won() -> None:
    bias = position_bias(VOTES)
    assert (bias.a_wins, bias.decisive) == (4, 6)
    assert position_bias([Battle("x", "y", "tie")]).share is None
