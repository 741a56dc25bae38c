"""localchat/bench.py's prompts, on the real engine: each measured prompt evaluates exactly as many tokens as asked
into an empty cache (llama-bench's pp512: 512), with a BOS model (Gemma 3) and without one (SmolLM2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.bench import PROMPT_TOKENS, _prompt_of, _prompt_run, _warm_up
from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient


@pytest.mark.parametrize("which", ["smollm2", "gemma3"])
@pytest.mark.parametrize("tokens", [64, 73])  # 73: the next word has two tokens, one fits
def test_each_prompt_has_exactly_the_tokens_asked(
    which: str, tokens: int, model_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    """In the bench's order (salts -2, -1, 0, 1, 2), each evaluated whole: the text's tokens and a BOS where the
    model adds one (Gemma 3)."""
    with EngineClient(tmp_path / "engine.log") as engine:
        engine.load({"smollm2": model_path, "gemma3": gemma_path}[which])
        evaluated = []
        for salt in (-2, -1, 0, 1, 2):
            done = _prompt_run(engine, _prompt_of(engine, tokens, salt), SamplingParams(temperature=0.0, max_tokens=1))
            evaluated.append(done.usage.evaluated_prompt_tokens)
    assert evaluated == [tokens + (which == "gemma3")] * 5


@pytest.mark.parametrize("which", ["smollm2", "gemma3"])
def test_after_the_warm_up_each_prompt_evaluates_512_tokens(
    which: str, model_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    """As llama-bench's pp512: 512 tokens into an empty cache, a BOS among them where the model adds one."""
    greedy = SamplingParams(temperature=0.0, max_tokens=1)
    with EngineClient(tmp_path / "engine.log") as engine:
        engine.load({"smollm2": model_path, "gemma3": gemma_path}[which])
        text_tokens = _warm_up(engine, greedy)
        measured = [_prompt_run(engine, _prompt_of(engine, text_tokens, salt), greedy) for salt in (0, 1)]
    assert text_tokens == PROMPT_TOKENS - (which == "gemma3")
    assert [d.usage.evaluated_prompt_tokens for d in measured] == [PROMPT_TOKENS] * 2
    assert [d.usage.prompt_tokens for d in measured] == [PROMPT_TOKENS] * 2
