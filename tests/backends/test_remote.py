"""The remote backend and `--endpoint` against a real OpenAI-compatible server (llama_cpp.server) serving the
test model: streaming, the same greedy text as the local engine, stop, and each failure as one line."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from localchat.backends.remote import Endpoint, RemoteBackend, RemoteError, endpoint_from
from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ChatMessage, Delta, Done, Generate
from tests.backends.conftest import API_KEY, Server, free_port, start_server
from tests.conftest import assert_one_line_error, line_chat_in_a_terminal, run_cli

QUESTION = (ChatMessage("user", "Name three rivers in Europe."),)


def remote(server: Server, key: str | None = API_KEY) -> RemoteBackend:
    return RemoteBackend(Endpoint(server.url, key), "smollm2")


def test_a_reply_streams_from_the_server(server: Server) -> None:
    events = list(remote(server).generate(Generate(QUESTION, sampling=SamplingParams(temperature=0, max_tokens=40))))
    deltas, done = events[:-1], events[-1]
    assert isinstance(done, Done) and all(isinstance(d, Delta) for d in deltas) and len(deltas) > 5
    assert done.stop_reason in ("eos", "length") and done.text == "".join(d.text for d in deltas)
    assert done.usage.completion_tokens >= len(deltas) - 1 and done.timings.decode_tok_s > 0


def test_run_with_endpoint_gives_what_the_local_engine_gives(server: Server, model_path: Path) -> None:
    """Same model, same greedy settings, same chat template: the same text, and the same --json shape."""
    env = {"OPENAI_API_KEY": API_KEY}
    args = ("Name three rivers in Europe.", "--temperature", "0", "-n", "30", "--json")
    there = json.loads(run_cli("run", "smollm2", *args, "--endpoint", server.url, env=env).stdout)
    here = json.loads(run_cli("run", str(model_path), *args).stdout)
    assert there["text"] == here["text"] and len(there["text"]) > 20
    assert set(there) == set(here) and there["offload"] == {"endpoint": server.url}
    listed = json.loads(run_cli("list", "--endpoint", server.url, "--json", env=env).stdout)
    assert listed == [{"name": "smollm2", "source": "endpoint", "endpoint": server.url}]


def test_format_json_reaches_the_server_as_openais_json_mode(server: Server) -> None:
    """--format json on an endpoint: OpenAI's response_format json_object, which the server holds to its grammar."""
    ask = ("run", "smollm2", "Describe a cat as JSON with name and age.", "--temp", "0", "-n", "120")
    env = {"OPENAI_API_KEY": API_KEY}
    held = run_cli(*ask, "--format", "json", "--endpoint", server.url, env=env)
    assert held.code == 0 and isinstance(json.loads(held.stdout), dict), held.stdout + held.stderr
    free = run_cli(*ask, "--endpoint", server.url, env=env)
    assert free.code == 0 and free.stdout.strip().startswith("```"), free.stdout


def test_stop_closes_the_stream_at_once_and_keeps_what_came(server: Server) -> None:
    backend = remote(server)
    request = Generate(QUESTION, sampling=SamplingParams(temperature=0.8, max_tokens=2000, seed=1))
    texts, stopped_at = [], []
    for event in backend.generate(request):
        if isinstance(event, Done):
            done = event
            break
        texts.append(event.text)
        if len(texts) == 5:
            stopped_at.append(time.monotonic())
            threading.Thread(target=backend.cancel).start()
    assert done.stop_reason == "cancelled" and done.text == "".join(texts)
    assert time.monotonic() - stopped_at[0] < 1.0 and done.usage.completion_tokens < 200


def test_a_wrong_key_and_an_unreachable_host_are_one_line_each(server: Server) -> None:
    with pytest.raises(RemoteError, match="refused the API key"):
        remote(server, "wrong").models()
    result = run_cli("run", "smollm2", "Hi", "--endpoint", server.url, env={"OPENAI_API_KEY": "wrong"})
    assert_one_line_error(result, "refused the API key (401)")
    closed = f"http://127.0.0.1:{free_port()}/v1"
    assert_one_line_error(run_cli("run", "smollm2", "Hi", "--endpoint", closed), "cannot reach")
    assert_one_line_error(run_cli("list", "--endpoint", "ftp://example.org"), "not an http(s) URL")
    assert_one_line_error(run_cli("run", "m", "Hi", "--endpoint", server.url, "--logprobs", "3"), "--logprobs")


def test_a_server_killed_mid_reply_keeps_the_partial_reply_marked(model_path: Path, tmp_path: Path) -> None:
    server = start_server(model_path, tmp_path / "server.log")
    try:
        events = []
        request = Generate(QUESTION, sampling=SamplingParams(temperature=0.8, max_tokens=2000, seed=1))
        for event in remote(server).generate(request):
            events.append(event)
            if len(events) == 5:
                server.process.kill()
        done = events[-1]
        assert isinstance(done, Done) and done.stop_reason == "error" and "mid-reply" in done.error
        assert done.text == "".join(e.text for e in events[:-1]) and done.text
    finally:
        server.process.kill()
        server.process.wait()


def test_the_key_comes_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert endpoint_from("https://example.org/v1/").api_key == "from-env"
    assert endpoint_from("https://example.org/v1/").url == "https://example.org/v1"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert endpoint_from("http://127.0.0.1:1/v1").api_key is None and endpoint_from("http://127.0.0.1:1/v1").loopback
    assert not endpoint_from("http://10.0.0.2/v1").loopback
    assert os.environ.get("OPENAI_API_KEY") is None


def write_config(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(text)


def test_named_endpoints_are_listed_beside_local_models_and_run_by_name(
    server: Server, home: Path, model_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    write_config(
        home,
        f'[endpoints.box]\nurl = "{server.url}"\napi_key_env = "BOX_KEY"\n\n[endpoints.off]\nurl = "{down}"\n',
    )
    env = {"BOX_KEY": API_KEY}
    run_cli("import", str(model_path), "--name", "here")
    rows = json.loads(run_cli("list", "--json", env=env).stdout)
    assert [r["name"] for r in rows if r["source"] != "endpoint"] == ["here"]
    assert {"name": "smollm2", "source": "endpoint", "endpoint": server.url, "endpoint_name": "box"} in rows
    off = next(r for r in rows if r.get("endpoint_name") == "off")  # a server that is down: said, not hidden
    assert "cannot reach" in off["error"]
    table = run_cli("list", env=env).stdout
    assert "smollm2" in table and "endpoint box" in table and "here" in table
    reply = json.loads(run_cli("run", "smollm2", "Hi", "-n", "5", "--endpoint", "box", "--json", env=env).stdout)
    assert reply["offload"] == {"endpoint": server.url} and reply["usage"]["completion_tokens"] >= 1
    assert_one_line_error(run_cli("run", "smollm2", "Hi", "--endpoint", "nope"), "no endpoint named 'nope'", "box")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url = "http://h/v1"\napi_key = "sk-123"', "keys never go in the file"),
        ('url = "h:8080"', "url must be the API base"),
        ('url = "http://h/v1"\nmodel = ["a"]', "unknown key model"),
        ('url = "http://h/v1"\nmodels = "a"', "models must be a list"),
        ('url = "http://h/v1"\napi_key_env = "MY KEY"', "api_key_env must name an environment variable"),
    ],
)
def test_endpoint_settings_are_checked_strictly(home: Path, table: str, message: str) -> None:
    write_config(home, f"[endpoints.box]\n{table}\n")
    assert_one_line_error(run_cli("list"), "endpoints.box", message)


def test_bench_on_an_endpoint_reports_what_this_client_costs(server: Server) -> None:
    env = {"OPENAI_API_KEY": API_KEY}
    report = json.loads(run_cli("bench", "smollm2", "--endpoint", server.url, "-r", "2", "--json", env=env).stdout)
    assert report["replies"] == 2 and 2 * 100 <= report["tokens"] <= 2 * 128 and report["decode_tok_s"] > 0
    assert report["client_cpu_ms_per_token"] > 0 and 0 < report["client_share_of_decode"] < 0.5
    text = run_cli("bench", "smollm2", "--endpoint", server.url, "-r", "1", env=env).stdout
    assert "of a token's decode time" in text


def test_the_line_chat_runs_on_a_server_with_its_history(server: Server) -> None:
    """No PROMPT and a terminal: the same multi-turn chat as with a local model; each reply sees the ones before."""
    env = {"OPENAI_API_KEY": API_KEY}
    args = ["run", "smollm2", "--endpoint", server.url, "-n", "12", "--temp", "0"]
    lines = ["My name is Ada.", "What is my name?", "/clear", "What is my name?", "/bye"]
    result = line_chat_in_a_terminal(args, lines, env)
    assert result.code == 0, result.stderr
    assert "Chatting with smollm2 (context size not given by the server)" in result.stderr
    replies = [part.strip() for part in result.stdout.split(">>> ") if part.strip()]
    assert len(replies) == 3, result.stdout
    alone = json.loads(run_cli("run", "smollm2", "What is my name?", *args[2:], "--json", env=env).stdout)["text"]
    assert replies[-1] == alone.strip() and replies[1] != replies[-1]
