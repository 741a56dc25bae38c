"""`localchat doctor`: this build's backends, the GPUs, and the known pitfalls, with how to fix each."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from localchat import hardware
from localchat.commands.cache import describe, saved_states
from localchat.doctor import diagnose

MARKS = {"ok": "✓", "warn": "!", "error": "✗"}


def run_probe() -> tuple[dict[str, Any] | None, str | None]:
    """The engine's probe in its own process: a broken build's crash is a finding, not ours."""
    command = [sys.executable, "-m", "localchat.engine.probe"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return None, "the probe did not answer in 120 s"
    if result.returncode != 0:
        reason = f"signal {-result.returncode}" if result.returncode < 0 else f"exit code {result.returncode}"
        return None, f"the probe failed ({reason})"
    try:
        return json.loads(result.stdout.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return None, "the probe printed no report"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@click.option("--fix", is_flag=True, help="rebuild llama-cpp-python for this CPU in this environment, then check")
def doctor(as_json: bool, fix: bool) -> None:
    """Check this build: CPU features, GPU backends and free GPU memory, known pitfalls (AMX)."""
    if fix:
        from localchat.build import main as rebuild  # pip and a compiler: only when asked

        if rebuild([sys.executable]) != 0:
            sys.exit(1)
    probe, error = run_probe()
    marker = Path(sys.prefix) / "localchat-llama-build.txt"
    built_with = marker.read_text().strip() if marker.exists() else None
    flags = hardware.cpu_flags()
    report = diagnose(probe, error, flags, platform.machine(), platform.system(), hardware.gpus())
    states = saved_states()
    if as_json:
        findings = [asdict(f) for f in report.findings]
        click.echo(json.dumps({"probe": probe, "built_with": built_with, "findings": findings, "saved_states": states}))
    else:
        for finding in report.findings:
            click.echo(f"[{MARKS[finding.level]}] {finding.topic:<7}{finding.text}")
        click.echo(f"    build   {'localchat.build: ' + built_with if built_with else 'not built by localchat'}")
        held = describe(states["files"], states["bytes"], states["budget_bytes"])
        click.echo(f"    states  {held} (localchat cache)")
    if report.worst == "error":
        sys.exit(1)
