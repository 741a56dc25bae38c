"""The live counter's counts: exact (the same as rendering and tokenizing every prefix in full) on both real
models' templates and tokenizers, and on a template without special tokens, where only full counts are exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLAIN_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"  # joins with no special token


@pytest.fixture(scope="module")
def plain_template_model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.gguf_files import with_metadata

    destination = tmp_path_factory.mktemp("plain") / "plain-template.gguf"
    return with_metadata(model_path, destination, {"tokenizer.chat_template": PLAIN_TEMPLATE})


@pytest.mark.parametrize("which", ["smollm2", "gemma3", "plain template"])
def test_incremental_counts_equal_full_render_and_tokenize(
    which: str, model_path: Path, gemma_path: Path, request: pytest.FixtureRequest
) -> None:
    model = {"smollm2": model_path, "gemma3": gemma_path}.get(which)
    model = model or request.getfixturevalue("plain_template_model")
    result = subprocess.run(
        [sys.executable, "-m", "tests.engine.count_reference", str(model), "7", "400"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["checks"] >= 350
    assert report["mismatch_count"] == 0, report["mismatches"]
