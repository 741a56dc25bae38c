"""The engine can crash or be killed without taking the caller down; unloading frees the model's memory."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import ChatMessage, Delta, Done, Generate
from tests.conftest import collect

MiB = 1024 * 1024


@pytest.fixture
def core_dumps_allowed() -> Iterator[None]:
    """As for a user whose shell allows core dumps: engines started from here inherit the limit, and must turn
    dumps off themselves (a model's weights in a core file: gigabytes, and the chat in memory)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core dumps are forbidden here (hard limit 0): there is nothing for the engine to turn off")
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


@pytest.mark.parametrize("how", [signal.SIGSEGV, signal.SIGABRT, signal.SIGKILL], ids=["segfault", "abort", "oom-kill"])
def test_engine_death_mid_reply_is_an_error_event_and_a_new_engine_follows(
    how: signal.Signals, model_path: Path, tmp_path: Path, core_dumps_allowed: None
) -> None:
    with EngineClient(tmp_path / "engine.log") as client:
        client.load(model_path)
        first_pid = client.pid
        received: list[str] = []
        done = None
        request = Generate(prompt="Once upon a time", sampling=SamplingParams(max_tokens=5000), ignore_eos=True)
        for event in client.generate(request):
            if isinstance(event, Delta):
                received.append(event.text)
                if len(received) == 5:
                    os.kill(first_pid, how)
            else:
                done = event
        assert isinstance(done, Done)
        assert done.stop_reason == "error"
        assert how.name in done.error  # e.g. "the engine process was killed by SIGSEGV"
        assert done.text == "".join(received) and len(received) >= 5  # the partial reply is kept
        # The next request starts a new engine with the same model, transparently.
        reply = collect(client, Generate((ChatMessage("user", "Hi"),), sampling=SamplingParams(max_tokens=8)))[1]
        assert reply.stop_reason in ("eos", "length") and client.pid != first_pid
        assert client.model is not None
        # No core dump of a crash, whatever the machine's setting: the engine runs with a core file limit of 0.
        assert core_limit(client.pid) == 0


def core_limit(pid: int) -> int:
    """The soft RLIMIT_CORE of a process, read from /proc (what the kernel will apply if it crashes)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            value = line.split()[4]
            return -1 if value == "unlimited" else int(value)
    raise AssertionError("no core file size in /proc/PID/limits")


def test_unload_returns_memory_to_baseline(model_path: Path, tmp_path: Path) -> None:
    with EngineClient(tmp_path / "engine.log") as client:
        baseline = client.stats().rss_bytes
        client.load(model_path)
        collect(client, Generate(prompt="Hello", sampling=SamplingParams(max_tokens=8)))
        loaded = client.stats().rss_bytes
        assert loaded - baseline > 80 * MiB  # weights (~94 MB), KV cache, compute buffers
        client.unload()
        after = client.stats()
        assert after.model is None
        assert after.rss_bytes - baseline < 25 * MiB, (baseline / MiB, loaded / MiB, after.rss_bytes / MiB)
        # Load again (model switch) and unload: no growth from cycle to cycle.
        client.load(model_path)
        client.unload()
        assert client.stats().rss_bytes - baseline < 25 * MiB


def test_failed_load_keeps_the_engine_usable(model_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(model_path.read_bytes()[:1_000_000])
    with EngineClient(tmp_path / "engine.log") as client:
        with pytest.raises(Exception, match="truncated"):
            client.load(broken)
        client.load(model_path)
        done = collect(client, Generate(prompt="Hi", sampling=SamplingParams(max_tokens=3)))[1]
        assert done.stop_reason in ("eos", "length") and done.usage.completion_tokens > 0


def test_the_engine_loads_llama_cpp_before_any_other_native_library(engine: EngineClient) -> None:
    """On a CUDA host, numpy (or any extension with its own C++ runtime) loaded before llama.cpp made every model
    load segfault (engine/native.py): the engine process records what came first, and nothing may."""
    stats = engine.stats()
    assert stats.model is not None and stats.native_before_llama == ()
