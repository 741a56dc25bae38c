"""Each way a server fails, as one line, with nothing lost: against a real HTTP server on 127.0.0.1 that fails
as servers do (tests/backends/faulty_server.py); llama_cpp.server's own failures are in test_remote.py."""

from __future__ import annotations

import pytest

from localchat.backends.remote import Endpoint, RemoteBackend, RemoteError
from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ChatMessage, Done, Generate
from tests.backends.faulty_server import BEFORE_FAILING, Handler, faulty_server
from tests.conftest import assert_one_line_error, run_cli

REQUEST = Generate((ChatMessage("user", "Hi"),), sampling=SamplingParams(temperature=0.5, top_k=7, max_tokens=20))


def reply_from(url: str, model: str) -> Done:
    backend = RemoteBackend(Endpoint(url), model)
    backend.open()
    *deltas, done = list(backend.generate(REQUEST))
    assert done.text == "".join(d.text for d in deltas)
    return done


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("busy", "is busy (429): try again in 7 s"),
        ("overloaded", "is busy (503): try again later"),
        ("gone", "has no model 'gone' (404): `localchat list --endpoint"),
    ],
)
def test_a_refused_request_is_one_line_saying_what_to_do(model: str, message: str) -> None:
    with faulty_server() as url:
        with pytest.raises(RemoteError, match=message.replace("(", r"\(").replace(")", r"\)")):
            reply_from(url, model)
        assert_one_line_error(run_cli("run", model, "Hi", "--endpoint", url), message)


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("garbled", "sent a stream event that is not JSON"),
        ("failing", "failed mid-reply: the GPU ran out of memory"),
        ("cut", "ended mid-reply (no finish reason)"),
    ],
)
def test_a_reply_that_fails_mid_way_keeps_what_came_and_says_why(model: str, error: str) -> None:
    with faulty_server() as url:
        done = reply_from(url, model)
        assert done.stop_reason == "error" and error in done.error and done.text == "".join(BEFORE_FAILING)
        result = run_cli("run", model, "Hi", "--endpoint", url)
        assert result.stdout.startswith("".join(BEFORE_FAILING))  # what came is printed, then the error
        assert_one_line_error(result, "the reply was cut off", error)


def test_an_api_base_that_answers_html_and_an_unknown_model_are_one_line_each() -> None:
    with faulty_server() as url:
        web_page = url.replace("/v1", "/html/v1")
        assert_one_line_error(run_cli("list", "--endpoint", web_page), "did not answer JSON")
        assert_one_line_error(run_cli("run", "nope", "Hi", "--endpoint", url), "serves no model 'nope'", "busy")


def test_fields_outside_openais_api_are_not_sent_to_a_server_that_may_refuse_them_and_that_is_said() -> None:
    """top_k, min_p and repeat_penalty go only to servers known to read them (others, OpenAI's own among them,
    refuse unknown fields); the user hears which settings that server does not get, once."""
    with faulty_server() as url:
        Handler.bodies.clear()
        backend = RemoteBackend(Endpoint(url), "cut")
        backend.open()
        list(backend.generate(REQUEST))
        sent = Handler.bodies[-1]
        assert sent["temperature"] == 0.5 and sent["max_tokens"] == 20
        assert not {"top_k", "min_p", "repeat_penalty"} & set(sent)
        assert backend.ignored == ("top_k", "min_p", "repeat_penalty")
        result = run_cli("run", "cut", "Hi", "--endpoint", url)
        assert result.stderr.count("top_k, min_p, repeat_penalty are not sent") == 1
