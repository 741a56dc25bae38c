"""Reopening a long chat restores its saved KV state (engine/saved_states.py) on the real model: the next turn
after a restart evaluates only what is new and replies as it would have without the restart; a damaged or
foreign state file is dropped and the chat is read again; the folder keeps to its budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import ChatMessage, Done, Generate, LoadOptions
from localchat.engine.state_files import SUFFIX, usage
from tests.conftest import assert_one_line_error, collect, run_cli

GREEDY = SamplingParams(temperature=0, max_tokens=24, seed=1)
# Replies compared across engines run with prompt lookup off: whether it drafts depends on measured timings, and
# past 256 cached tokens a batch row's logits are not a one-row decode's (bench/batch_identity.py). Saved states
# are this file's subject, not lookup.
FILLER = "The river runs past old stone bridges and quiet towns, where the bakers open at dawn. "
PARTS = [ChatMessage("user" if i % 2 == 0 else "assistant", f"Part {i}. " + FILLER * 4) for i in range(8)]
HISTORY = (*PARTS, ChatMessage("user", "Sum it up in one sentence."))


def turn(model: Path, options: LoadOptions, *turns: tuple[ChatMessage, ...]) -> list[Done]:
    """Each chat in one freshly started engine, in order."""
    with EngineClient(None) as engine:
        engine.load(model, options)
        return [collect(engine, Generate(messages, sampling=GREEDY, lookup=False))[1] for messages in turns]


def follow_up(first: Done) -> tuple[ChatMessage, ...]:
    return (*HISTORY, ChatMessage("assistant", first.text), ChatMessage("user", "And in one word?"))


@pytest.fixture(scope="module")
def unbroken(model_path: Path) -> tuple[Done, Done]:
    """Turn N and N+1 in one engine, nothing saved: what a reopened chat must reply."""
    with EngineClient(None) as engine:
        engine.load(model_path, LoadOptions())
        first = collect(engine, Generate(HISTORY, sampling=GREEDY, lookup=False))[1]
        return first, collect(engine, Generate(follow_up(first), sampling=GREEDY, lookup=False))[1]


def test_a_reopened_chat_restores_its_state_and_replies_as_without_the_restart(
    model_path: Path, unbroken: tuple[Done, Done], tmp_path: Path
) -> None:
    first, reference = unbroken
    saving = LoadOptions(saved_states=str(tmp_path))
    assert turn(model_path, saving, HISTORY)[0].text == first.text
    saved = list(tmp_path.glob(f"*/*{SUFFIX}"))
    assert len(saved) == 1 and not list(tmp_path.glob("*/*.partial"))
    restored = turn(model_path, saving, follow_up(first))[0]
    new_tokens = restored.usage.prompt_tokens - first.usage.prompt_tokens - first.usage.completion_tokens
    assert restored.usage.evaluated_prompt_tokens <= new_tokens + 2  # the history came from the file
    assert reference.usage.evaluated_prompt_tokens <= new_tokens + 2  # as the live cache gave it
    assert restored.text == reference.text
    # turn N+1's state replaces turn N's (it starts with it)
    assert [p.name for p in tmp_path.glob(f"*/*{SUFFIX}")] != [saved[0].name] and usage(tmp_path).files == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_state_file_is_dropped_and_the_chat_read_again(
    model_path: Path, unbroken: tuple[Done, Done], tmp_path: Path, damage: str
) -> None:
    first, _ = unbroken
    saving = LoadOptions(saved_states=str(tmp_path))
    turn(model_path, saving, HISTORY)
    (state,) = tmp_path.glob(f"*/*{SUFFIX}")
    data = state.read_bytes()
    kept = 12 + 4 * int.from_bytes(data[8:12], "little")  # header and tokens whole: the file still matches the chat
    damaged = data[: len(data) // 2] if damage == "truncated" else data[:kept] + b"\x07" * (len(data) - kept)
    state.write_bytes(damaged)
    again = turn(model_path, saving, follow_up(first))[0]
    cold = turn(model_path, LoadOptions(), follow_up(first))[0]
    assert again.stop_reason == cold.stop_reason != "error"
    assert again.usage.evaluated_prompt_tokens == again.usage.prompt_tokens  # nothing came from the file
    assert again.text == cold.text
    assert state not in list(tmp_path.glob(f"*/*{SUFFIX}"))  # dropped (a new one was saved after the reply)


def test_another_context_size_does_not_restore_and_the_budget_evicts_the_oldest(
    model_path: Path, unbroken: tuple[Done, Done], tmp_path: Path
) -> None:
    first, _ = unbroken
    turn(model_path, LoadOptions(n_ctx=2048, saved_states=str(tmp_path)), HISTORY)
    other = turn(model_path, LoadOptions(n_ctx=1024, saved_states=str(tmp_path)), follow_up(first))[0]
    assert other.usage.evaluated_prompt_tokens == other.usage.prompt_tokens
    assert usage(tmp_path).files == 2  # one per context size
    one = max(p.stat().st_size for p in tmp_path.glob(f"*/*{SUFFIX}"))
    budget = LoadOptions(n_ctx=1024, saved_states=str(tmp_path), saved_states_bytes=one + 1)
    other_chat = (ChatMessage("user", "Another chat. " + FILLER * 30),)
    turn(model_path, budget, other_chat)
    held = usage(tmp_path)
    assert held.files == 1 and held.bytes <= one + 1  # the least recently used went


def test_cache_command_shows_and_clears_the_saved_states(model_path: Path, home: Path) -> None:
    prompt = "Summarise: " + FILLER * 40
    assert run_cli("run", str(model_path), prompt, "-n", "4", "--temp", "0").code == 0
    shown = run_cli("cache", "--json")
    assert shown.code == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["files"] == 1 and report["bytes"] > 0 and report["budget_bytes"] == 2048 * 2**20
    cleared = run_cli("cache", "clear")
    assert cleared.code == 0 and "deleted 1 saved chat state" in cleared.stdout
    assert json.loads(run_cli("cache", "--json").stdout)["files"] == 0
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text("[engine]\nstate_cache_mb = 0\n")
    assert run_cli("run", str(model_path), prompt, "-n", "4", "--temp", "0").code == 0
    assert json.loads(run_cli("cache", "--json").stdout)["files"] == 0  # off: nothing saved
    (home / "config" / "config.toml").write_text('[engine]\nstate_cache_mb = "lots"\n')
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "engine.state_cache_mb must be a whole number")
