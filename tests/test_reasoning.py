"""The reasoning splitter: a thinking model's reasoning apart from its answer, however the text is cut up."""

from __future__ import annotations

import pytest

from localchat.reasoning import ReasoningSplitter, opened_by_prompt, soft_switch


def split(text: str, opened: str | None = None, piece: int = 0) -> tuple[str, str, str]:
    """(reasoning, answer, state) of `text` fed whole (piece=0) or `piece` characters at a time."""
    splitter = ReasoningSplitter(opened)
    pieces = [text[i : i + piece] for i in range(0, len(text), piece)] if piece else [text]
    streamed_reasoning, streamed_answer = [], []
    for part in [*pieces, None]:
        result = splitter.feed(part) if part is not None else splitter.finish()
        streamed_reasoning.append(result.reasoning)
        streamed_answer.append(result.answer)
    reasoning, answer = splitter.result()
    assert "".join(streamed_answer) == answer  # what streamed is what is kept
    assert "".join(streamed_reasoning).rstrip() == reasoning
    return reasoning, answer, splitter.state


CASES = [
    # (text, prompt opened the block, reasoning, answer, state)
    ("<think>\nThe user greets.\n</think>\n\nHello!", None, "The user greets.", "Hello!", "closed"),
    ("  <think>a</think>b", None, "a", "b", "closed"),
    ("The user greets.\n</think>\n\nHello!", "<think>", "The user greets.", "Hello!", "closed"),
    ("<think>\nStill going", None, "Still going", "", "open"),  # the reply ended mid-reasoning: kept as such
    ("Hello </think> there", None, "", "Hello </think> there", "stray"),  # kept as written
    ("Use <think> tags like <think>x</think>", None, "", "Use <think> tags like <think>x</think>", "stray"),
    ("Plain answer.", None, "", "Plain answer.", "none"),
    ("<thi", None, "", "<thi", "none"),  # an unfinished marker at the end is text
    ("<|channel>thought\nPlanning.<channel|>Answer", None, "Planning.", "Answer", "closed"),  # Gemma 4
    ("reasoning </thi", "<think>", "reasoning </thi", "", "open"),
    ("", "<think>", "", "", "open"),
]


@pytest.mark.parametrize(("text", "opened", "reasoning", "answer", "state"), CASES)
@pytest.mark.parametrize("piece", [0, 1, 2, 3, 5])
def test_reasoning_is_split_from_the_answer_however_the_text_streams(
    text: str, opened: str | None, reasoning: str, answer: str, state: str, piece: int
) -> None:
    assert split(text, opened, piece) == (reasoning, answer, state)


def test_a_marker_is_held_back_until_the_next_piece_says_what_it_is() -> None:
    splitter = ReasoningSplitter()
    assert splitter.feed("<thi").answer == ""  # might be <think>: nothing shown yet
    assert splitter.feed("nk>Hm").reasoning == "Hm"
    assert splitter.thinking
    assert splitter.feed("m</th").reasoning == "m"
    assert splitter.feed("ink>Yes").answer == "Yes"
    assert not splitter.thinking and splitter.state == "closed"


def test_prompts_that_open_the_reasoning_block() -> None:
    assert opened_by_prompt("<|im_start|>assistant\n<think>\n") == "<think>"
    assert opened_by_prompt("<|im_start|>assistant\n<think>\n\n</think>\n\n") is None  # thinking switched off
    assert opened_by_prompt("<|turn>model\n<|channel>thought") == "<|channel>thought"
    assert opened_by_prompt("<|im_start|>assistant\n") is None


def test_the_soft_switch_goes_at_the_end_of_the_system_prompt() -> None:
    messages = [{"role": "system", "content": "Be brief. "}, {"role": "user", "content": "Hi"}]
    assert soft_switch(messages, False)[0]["content"] == "Be brief. /no_think"
    assert soft_switch(messages[1:], True) == [{"role": "system", "content": "/think"}, messages[1]]
    assert messages[0]["content"] == "Be brief. "  # the caller's messages are not changed
