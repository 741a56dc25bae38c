"""The decode loop in both orders: the next decode launched before a token's text is sent (on a GPU, so the Python
work overlaps the GPU's) and the text first (on the CPU). Run here on the CPU backend, where both orders exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.engine.offload import decode_threads
from tests.engine.checks import run_check


@pytest.fixture(scope="module")
def orders(model_path: Path) -> dict[bool, dict]:
    rows = run_check("decode_loop_check.py", model_path)
    return {row.get("overlap"): row for row in rows}


def test_both_orders_give_the_same_reply_and_send_all_of_it(orders: dict[bool, dict]) -> None:
    cpu, gpu = orders[False], orders[True]
    assert len(cpu["text"]) > 40 and cpu["stop_reason"] == "length" and cpu["completion"] == 40
    assert gpu["text"] == cpu["text"] and gpu["completion"] == cpu["completion"]
    for row in (cpu, gpu):
        assert row["emitted"] == row["text"]
        # the KV cache holds the prompt and the reply but its last token: a reply cut at max_tokens does not decode
        # that one (the next turn's prompt evaluates it in its batch, as llama-server's does)
        assert row["cached_is_prompt_then_reply"] and row["cached_reply_tokens"] == row["completion"] - 1


def test_a_cancel_keeps_exactly_what_was_sent(orders: dict[bool, dict]) -> None:
    for row in (orders[False], orders[True]):
        assert row["cancelled_reason"] == "cancelled" and row["cancelled_completion"] == 5
        assert row["cancelled_text"] == row["cancelled_emitted"] and row["text"].startswith(row["cancelled_text"])
        assert row["cancelled_cached_prefix"] and row["cancelled_cached_reply_tokens"] <= 5


def test_sampling_in_the_graph_keeps_its_chain_while_the_settings_mean_the_same(orders: dict) -> None:
    assert orders[None]["chain_kept"] == [False, True, True, False, True, False]


def test_on_the_cpu_a_one_token_decode_has_every_thread(orders: dict) -> None:
    threads = orders[None]["threads"]
    assert threads["set"] >= 1 and threads["decode"] == threads["prompt"] == threads["set"]


def test_a_plain_greedy_reply_on_the_cpu_picks_what_llama_cpps_greedy_chain_picks(orders: dict) -> None:
    greedy = orders[None]["greedy"]
    picks = greedy["picks"]
    assert len(picks) == 48 and len({chained for _, chained in picks}) > 10  # a reply, not one token repeated
    assert [picked for picked, _ in picks] == [chained for _, chained in picks]
    # numpy's argmax there, and llama.cpp's chain alone in the graph or at a temperature without a penalty
    assert greedy["fast_is_the_chain"] is False and greedy["others_are_the_chain"] == [True, True, False]


@pytest.mark.parametrize("settings", ["greedy", "sampled"])
def test_the_cpus_own_repeat_penalty_picks_what_llama_cpps_penalties_sampler_picks(orders: dict, settings: str) -> None:
    case = orders[None]["penalised"][settings]
    steps = case["steps"]
    assert len(steps) == 48 and not case["is_the_chain"]
    assert [step["picked"] for step in steps] == [step["chained"] for step in steps]
    assert all(step["row_unchanged"] for step in steps)  # undone after the pick: log-probabilities read it raw
    # every logit as llama.cpp's penalties sampler leaves it, those at or below zero (multiplied) among them
    assert all(step["same_penalised_row"] for step in steps)
    assert sum(step["penalised_at_or_below_zero"] for step in steps) > 0
    assert orders[None]["penalised"]["prompt_tokens"] > 64  # more than the penalty looks back on
    # the penalty is felt: without it the chain would have picked otherwise at some steps
    assert sum(step["unpenalised"] != step["chained"] for step in steps) >= 3


def test_the_cpus_own_repeat_penalty_treats_logits_at_and_near_zero_as_llama_cpp_does(orders: dict) -> None:
    assert orders[None]["penalised"]["crafted"] == {"0.75": True, "1.3": True}


@pytest.mark.parametrize(
    ("gpu_layers", "layers", "threads", "expected"),
    [(0, 30, 8, 8), (12, 23, 16, 16), (23, 23, 16, 16), (24, 23, 16, 1), (999, 23, 16, 1)],
)
def test_with_every_layer_and_the_output_on_a_gpu_one_thread_decodes(
    gpu_layers: int, layers: int, threads: int, expected: int
) -> None:
    assert decode_threads(gpu_layers, layers, threads) == expected
