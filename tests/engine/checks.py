"""Run one of this folder's check scripts (it loads llama.cpp in a process of its own: the test process never
imports llama_cpp) on the real model; its JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_check(script: str, model_path: Path, *more: Path) -> list[dict]:
    here = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, str(here / script), str(model_path), *map(str, more)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=here.parents[1],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]
