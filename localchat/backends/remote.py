"""A model on an OpenAI-compatible server (llama-server, vLLM, SGLang, Ollama, LM Studio, llama_cpp.server),
behind the same small contract as the local engine's client: `generate(Generate)` yields `Delta`s then one `Done`,
`cancel()` stops it at once (the stream is closed), `models()` lists what the server serves.

Only the standard library: a stream is read line by line from one HTTP connection (server-sent events).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from localchat.engine.protocol import Delta, Done, Generate, StopReason, Timings, Usage
from localchat.errors import LocalchatError
from localchat.text import one_line

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0  # a big model's first token, on a busy server, may take minutes
FINISH: dict[str, StopReason] = {"stop": "eos", "length": "length", "tool_calls": "eos", "content_filter": "eos"}


class RemoteError(LocalchatError):
    """The server could not be reached or refused the request."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the API's base, e.g. http://host:8080/v1
    api_key: str | None = None

    @property
    def loopback(self) -> bool:
        host = urllib.parse.urlsplit(self.url).hostname or ""
        return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def endpoint_from(url: str, api_key_env: str = "OPENAI_API_KEY") -> Endpoint:
    """An endpoint from a URL given by the user, its key from the environment (never from a file or a flag)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"--endpoint {url!r} is not an http(s) URL: give the API's base, e.g. http://host:8080/v1")
    return Endpoint(url.rstrip("/"), os.environ.get(api_key_env) or None)


class RemoteBackend:
    def __init__(self, endpoint: Endpoint, model: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.model = model
        self.timeout = timeout  # to connect (a reply's tokens may take longer: READ_TIMEOUT_S)
        self._connection: http.client.HTTPConnection | None = None
        self._cancelled = threading.Event()

    # --- the contract -----------------------------------------------------------------------------------------

    def models(self) -> list[str]:
        answer = self._json(self._request("GET", "/models"), "/models")
        return [str(m.get("id")) for m in answer.get("data", []) if isinstance(m, dict)]

    def cancel(self) -> None:
        """Stop the reply in flight at once: its connection is closed (safe from any thread)."""
        self._cancelled.set()
        connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(2)

    def reset_cancel(self) -> None:
        self._cancelled.clear()

    def generate(self, request: Generate, reset_cancel: bool = True) -> Iterator[Delta | Done]:
        if reset_cancel:
            self.reset_cancel()
        started = time.perf_counter()
        response = self._request("POST", "/chat/completions", self._body(request), READ_TIMEOUT_S)
        parts: list[str] = []
        reasoning: list[str] = []
        chunks = 0
        first_at: float | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        reason: StopReason = "error"
        error: str | None = None
        try:
            for event in self._events(response):
                usage = event.get("usage") or usage
                timings = event.get("timings") or timings
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text, thought = delta.get("content") or "", delta.get("reasoning_content") or ""
                    if text or thought:
                        chunks += 1
                        first_at = first_at or time.perf_counter()
                        parts.append(text)
                        reasoning.append(thought)
                        yield Delta(text, chunks, thought, thinking=bool(thought) and not text)
                    if choice.get("finish_reason"):
                        reason = FINISH.get(choice["finish_reason"], "eos")
            if reason == "error":
                error = f"the stream from {self.endpoint.url} ended mid-reply (no finish reason)"
        except (OSError, http.client.HTTPException) as exc:
            if self._cancelled.is_set():
                reason = "cancelled"
            else:
                cause = one_line(str(exc)) or type(exc).__name__
                error = f"the stream from {self.endpoint.url} was cut mid-reply ({cause})"
        finally:
            self._close()
        if self._cancelled.is_set() and reason == "error":
            reason, error = "cancelled", None
        yield self._done(reason, error, "".join(parts), "".join(reasoning), usage, timings, started, first_at, chunks)

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _body(self, request: Generate) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            # Not in OpenAI's API, but llama-server, vLLM and llama_cpp.server read them (others ignore them).
            "top_k": s.top_k,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
        }
        if s.seed is not None:
            body["seed"] = s.seed
        return body

    def _request(
        self, method: str, path: str, body: dict | None = None, read_timeout: float | None = None
    ) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(self.endpoint.url + path)
        if parts.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.connect()
            connection.sock.settimeout(read_timeout or self.timeout)
            self._connection = connection
            connection.request(method, target, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise RemoteError(
                f"cannot reach {self.endpoint.url} ({one_line(str(exc)) or type(exc).__name__}): is the server "
                "running, and is --endpoint its API base (…/v1)?"
            ) from None
        if response.status >= 400:
            detail = one_line(response.read(2000).decode("utf-8", "replace"))[:200]
            connection.close()
            raise self._refusal(response, detail)
        return response

    def _refusal(self, response: http.client.HTTPResponse, detail: str) -> RemoteError:
        status, url = response.status, self.endpoint.url
        if status in (401, 403):
            return RemoteError(f"{url} refused the API key ({status}): set the right key in $OPENAI_API_KEY")
        if status == 404:
            return RemoteError(
                f"{url} has no model {self.model!r} ({status}): `localchat list --endpoint {url}` shows its models"
            )
        if status in (429, 503):
            wait = response.getheader("Retry-After")
            again = f"try again in {wait} s" if wait else "try again later"
            return RemoteError(f"{url} is busy ({status}): {again}")
        return RemoteError(f"{url} answered {status}: {detail or response.reason}")

    def _json(self, response: http.client.HTTPResponse, what: str) -> dict[str, Any]:
        try:
            body = response.read()
            answer = json.loads(body)
        except (OSError, http.client.HTTPException, ValueError):
            raise RemoteError(
                f"{self.endpoint.url}{what} did not answer JSON: is it an OpenAI-compatible API?"
            ) from None
        finally:
            self._close()
        if not isinstance(answer, dict):
            raise RemoteError(f"{self.endpoint.url}{what} did not answer a JSON object")
        return answer

    def _events(self, response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
        """The JSON objects of a server-sent event stream, until `data: [DONE]`."""
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError:
                raise RemoteError(f"{self.endpoint.url} sent a stream event that is not JSON") from None
            if isinstance(event, dict) and "error" in event:
                message = event["error"].get("message") if isinstance(event["error"], dict) else event["error"]
                raise RemoteError(f"{self.endpoint.url} failed mid-reply: {one_line(str(message))[:200]}")
            if isinstance(event, dict):
                yield event

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _done(
        self,
        reason: StopReason,
        error: str | None,
        text: str,
        reasoning: str,
        usage: dict[str, Any],
        timings: dict[str, Any],
        started: float,
        first_at: float | None,
        chunks: int,
    ) -> Done:
        ended = time.perf_counter()
        completion = int(usage.get("completion_tokens") or chunks)
        prompt = int(usage.get("prompt_tokens") or 0)
        ttft = (first_at or ended) - started
        decode_s = ended - first_at if first_at else 0.0
        # llama-server's own timings where it sends them; else what this side saw.
        decode_tok_s = float(timings.get("predicted_per_second") or (completion / decode_s if decode_s > 0 else 0.0))
        prompt_tok_s = float(timings.get("prompt_per_second") or (prompt / ttft if ttft > 0 and prompt else 0.0))
        evaluated = int(timings.get("prompt_n") or prompt)
        return Done(
            stop_reason=reason,
            text=text,
            usage=Usage(prompt, evaluated, completion),
            timings=Timings(ttft, ttft, decode_s, prompt_tok_s, decode_tok_s),
            error=error,
            reasoning=reasoning.strip(),
            reasoning_state="closed" if reasoning.strip() else "none",
        )
