"""Thinking models on the real engine: reasoning streamed apart from the answer with its own token count and
time, the template's thinking switch, and the states a reply can end in (tests/thinking.py says how)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import ChatMessage, Delta, Done, Generate
from tests.thinking import few_shot_messages

GREEDY = SamplingParams(temperature=0, max_tokens=40)


def stream(engine: EngineClient, request: Generate) -> tuple[list[Delta], Done]:
    deltas: list[Delta] = []
    for event in engine.generate(request):
        if isinstance(event, Done):
            return deltas, event
        deltas.append(event)
    raise AssertionError("no Done")


def test_reasoning_streams_apart_from_the_answer_with_its_tokens_and_time(engine: EngineClient) -> None:
    deltas, done = stream(engine, Generate(few_shot_messages(), sampling=GREEDY))
    assert done.reasoning_state == "closed"
    assert done.reasoning and done.text  # both, apart
    assert "<think>" not in done.text and "</think>" not in done.text and "think>" not in done.reasoning
    assert "".join(d.reasoning for d in deltas).strip() == done.reasoning  # what streamed is what is kept
    assert "".join(d.text for d in deltas) == done.text
    assert any(d.thinking for d in deltas if d.reasoning) and not deltas[-1].thinking
    assert 0 < done.usage.reasoning_tokens < done.usage.completion_tokens
    answer_tokens = done.usage.completion_tokens - done.usage.reasoning_tokens
    assert answer_tokens == engine.count_tokens("\n\n" + done.text)  # the rest of the reply is the answer's
    assert 0 < done.timings.thinking_s < done.timings.decode_s + done.timings.prompt_s


def test_a_closing_marker_with_no_opening_one_is_kept_in_the_answer(engine: EngineClient) -> None:
    _, done = stream(engine, Generate(few_shot_messages(opening="Thinking: "), sampling=GREEDY))
    assert done.reasoning_state == "stray"
    assert "</think>" in done.text and done.reasoning == ""


@pytest.fixture(scope="module")
def thinking_engine(thinking_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> EngineClient:
    client = EngineClient(tmp_path_factory.mktemp("engine") / "engine.log")
    client.load(thinking_model_path)
    yield client
    client.close()


def test_the_templates_switch_is_read_at_load_and_changes_the_prompt(thinking_engine: EngineClient) -> None:
    info = thinking_engine.model
    assert (info.thinking, info.thinks_by_default) == ("switch", True)
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Capital of France?"))
    counts = {}
    for thinking in (None, True, False):
        counted = thinking_engine.measure(messages, thinking).total
        assert counted == thinking_engine.count_chat_tokens(messages, thinking)  # the counter counts what is sent
        _, done = stream(thinking_engine, Generate(messages, sampling=GREEDY, thinking=thinking))
        assert done.usage.prompt_tokens == counted
        counts[thinking] = counted
        if thinking is False:
            assert done.reasoning_state == "none" and done.text
        else:  # the prompt opened <think>: the reply starts inside it, and this small model never closes it
            assert done.reasoning_state == "open" and done.reasoning and done.text == ""
    assert counts[None] == counts[True] != counts[False]  # off: "<think>\n\n</think>\n\n" is in the prompt


def test_a_reasoning_that_ends_within_one_delta_interval_still_streams_as_reasoning() -> None:
    """The engine sends a Delta at most every 30 ms. Found when prompt lookup drafted a few-shot reply's whole
    reasoning in one step: the reasoning and its closing marker landed in one interval, and no Delta said the
    reply was inside its reasoning. What the reasoning said goes out when it closes, flagged as reasoning."""
    from localchat.engine.worker import DeltaBatcher
    from localchat.reasoning import ReasoningSplitter

    ours, theirs = multiprocessing.Pipe()
    batcher = DeltaBatcher(ours, ReasoningSplitter())
    for tokens, piece in enumerate(["<think>", "Let", " me", " see.", "</think>", "\n\nIt", " is", " 4."], 1):
        batcher(piece, tokens)  # all at once: well within one interval
    batcher.flush()  # the interval is over
    deltas = []
    while theirs.poll():
        deltas.append(theirs.recv())
    shown = [(d.reasoning, d.text, d.thinking, d.reasoning_tokens, d.tokens) for d in deltas]
    assert shown == [("Let me see.", "", True, 5, 5), ("", "It is 4.", False, 5, 8)]


def test_a_json_reply_from_a_thinking_model_does_not_think_unless_asked(thinking_engine: EngineClient) -> None:
    """format "json" holds the reply to a JSON object from its first token: with no switch given, thinking is off
    (the prompt opened the reasoning, and JSON would fill it); asked to think, the prompt opens it as before."""
    ask = (ChatMessage("user", "Describe a cat as JSON with name and age."),)
    sampling = SamplingParams(temperature=0, max_tokens=120)
    _, held = stream(thinking_engine, Generate(ask, sampling=sampling, format="json"))
    _, off = stream(thinking_engine, Generate(ask, sampling=sampling, format="json", thinking=False))
    assert held.reasoning_state == "none" and held.text == off.text
    assert held.usage.prompt_tokens == off.usage.prompt_tokens  # the same prompt: thinking off
    _, asked = stream(thinking_engine, Generate(ask, sampling=sampling, format="json", thinking=True))
    assert asked.usage.prompt_tokens != held.usage.prompt_tokens  # the thinking prompt, as asked
