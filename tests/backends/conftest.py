"""Real OpenAI-compatible servers on 127.0.0.1, serving the test model under the name "smollm2":
llama-cpp-python's own (`python -m llama_cpp.server`, asking for an API key) and llama.cpp's llama-server (built
by `make install-test`: scripts/build_llama_server.sh)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

API_KEY = "test-key"


@dataclass
class Server:
    url: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, log: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--api_key", API_KEY]
    return wait_for_server(command, f"http://127.0.0.1:{port}/v1", log, API_KEY)


def llama_server_binary() -> Path:
    built = subprocess.run(
        ["bash", "scripts/build_llama_server.sh", sys.executable], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        pytest.fail(f"llama-server could not be built (make install-test builds it): {built.stderr[-2000:]}")
    return Path(built.stdout.strip())


def start_llama_server(model: Path, log: Path) -> Server:
    port = free_port()
    command = [str(llama_server_binary()), "-m", str(model), "--alias", "smollm2", "-c", "2048", "-t", "1"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-webui"]
    return wait_for_server(command, f"http://127.0.0.1:{port}/v1", log)


def wait_for_server(command: list[str], url: str, log: Path, key: str | None = None) -> Server:
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url + "/models", headers=headers), timeout=2):
                return Server(url, process)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{command[0]} did not answer within 60 s")


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(model_path, tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.process.kill()
    running.process.wait()


@pytest.fixture(scope="module")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_llama_server(model_path, tmp_path_factory.mktemp("llama-server") / "server.log")
    yield running
    running.process.kill()
    running.process.wait()
