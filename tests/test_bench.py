"""localchat/bench.py's prompts, on the real engine: each measured prompt evaluates exactly as many tokens as asked
(llama-bench's pp512 is exactly 512), with a BOS model (Gemma 3) and without one (SmolLM2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.bench import _prompt_of
from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import Generate
from tests.conftest import collect


@pytest.mark.parametrize("which", ["smollm2", "gemma3"])
@pytest.mark.parametrize("tokens", [64, 73])  # 73: the next word has two tokens, one fits
def test_each_prompt_evaluates_exactly_the_tokens_asked(
    which: str, tokens: int, model_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    """In the bench's order: a warm-up (on an empty cache it evaluates the BOS as well), then salts 0, 1 and 2,
    each after the one before it sits in the cache."""
    with EngineClient(tmp_path / "engine.log") as engine:
        engine.load({"smollm2": model_path, "gemma3": gemma_path}[which])
        evaluated = []
        for salt in (-1, 0, 1, 2):
            prompt = _prompt_of(engine, tokens, salt)
            _, done = collect(engine, Generate(prompt=prompt, sampling=SamplingParams(temperature=0.0, max_tokens=1)))
            evaluated.append(done.usage.evaluated_prompt_tokens)
    assert evaluated[1:] == [tokens] * 3
    assert evaluated[0] == tokens + (which == "gemma3")
