"""The counter on a server: exact where the server tokenizes a chat with its template (llama-server), an
estimate that says so where it only tokenizes text (llama_cpp.server); the context size as the server says it."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.backends.endpoints import open_remote
from localchat.backends.remote import Endpoint, RemoteBackend
from localchat.engine.client import EngineClient
from localchat.engine.protocol import ChatMessage
from tests.backends.conftest import API_KEY, Server

CHATS = [
    [ChatMessage("user", "Hi")],
    [ChatMessage("system", "Be brief."), ChatMessage("user", "Name three rivers in Europe.")],
    [
        ChatMessage("user", "Name three rivers in Europe."),
        ChatMessage("assistant", "Rhine, Danube, Seine."),
        ChatMessage("user", "And in Asia? Ünïcödé, 日本語, emoji 🙂 and <|im_start|> typed as text."),
    ],
    [ChatMessage("user", "word " * 300)],
]


def test_llama_server_counts_a_chat_exactly_as_the_local_engine_does(
    llama_server: Server, engine: EngineClient
) -> None:
    backend = RemoteBackend(Endpoint(llama_server.url), "smollm2")
    info = backend.open()
    assert backend.exact_counts and info.n_ctx == 2048 and backend.ignored == ()
    for chat in CHATS:
        there, here = backend.measure(chat), engine.measure(chat)
        assert there.total == here.total, chat
        assert len(there.per_message) == len(chat)


def test_a_server_that_tokenizes_text_only_gives_an_estimate_marked_as_one(
    server: Server, engine: EngineClient, home: Path
) -> None:
    backend = RemoteBackend(Endpoint(server.url, API_KEY), "smollm2")
    info = backend.open()
    assert not backend.exact_counts and info.n_ctx == 0  # llama_cpp.server does not say its context size
    # SmolLM2's template adds a system prompt when none is given: learnt from what the server counted for a
    # one-token reply when the model was opened (llama_cpp.server sends no usage in a stream).
    for chat in CHATS:
        if chat[0].role == "system":
            continue  # a template drops its default system prompt when one is given: that stays an estimate

        there, here = backend.measure(chat).total, engine.measure(chat).total
        assert abs(there - here) <= max(4, here // 10), (there, here, chat)
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(
        f'[endpoints.box]\nurl = "{server.url}"\napi_key_env = "BOX_KEY"\nctx = 2048\n'
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BOX_KEY", API_KEY)
        assert open_remote("box", "smollm2").model.n_ctx == 2048  # config.toml's ctx where the server is silent
