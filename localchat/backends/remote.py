"""A model on an OpenAI-compatible server (llama-server, vLLM, SGLang, Ollama, LM Studio, llama_cpp.server),
behind the same small contract as the local engine's client (chat/backend.py): `open()` asks the server about
the model (`model`: its ModelInfo), `generate(Generate)` yields `Delta`s then one `Done`, `cancel()` stops it at
once (the stream is closed), `measure()` counts a conversation's tokens (backends/remote_count.py: exactly where
the server can tokenize a chat, else an estimate that says so), `models()` lists what the server serves.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localchat.engine.protocol import (
    ChatMessage,
    ConversationTokens,
    Delta,
    Done,
    Generate,
    ModelInfo,
    StopReason,
    Timings,
    Usage,
)
from localchat.errors import LocalchatError
from localchat.text import one_line

if TYPE_CHECKING:
    from localchat.backends.remote_count import RemoteCounter

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0  # a big model's first token, on a busy server, may take minutes
# Sampling fields outside OpenAI's API, and the servers (by /models' owned_by) known to read them: llama-server
# ("llamacpp"), llama_cpp.server ("me"), vLLM ("vllm", which calls the penalty repetition_penalty).
EXTRA_SAMPLING = ("top_k", "min_p", "repeat_penalty")
EXTRA_SAMPLING_READERS = ("llamacpp", "me", "vllm")
FINISH: dict[str, StopReason] = {"stop": "eos", "length": "length", "tool_calls": "eos", "content_filter": "eos"}


class RemoteError(LocalchatError):
    """The server could not be reached or refused the request."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the API's base, e.g. http://host:8080/v1
    api_key: str | None = None

    @property
    def root(self) -> str:
        """The server's own address: llama-server's /tokenize and /props sit beside /v1, not under it."""
        return self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url

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
    exact_counts = False  # until open() finds how the server tokenizes a chat

    def __init__(
        self, endpoint: Endpoint, model_name: str, timeout: float = CONNECT_TIMEOUT_S, label: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.model_name = model_name
        self.label = label or endpoint.url  # how the user named the server (config.toml's name, or its URL)
        self.timeout = timeout  # to connect (a reply's tokens may take longer: READ_TIMEOUT_S)
        self.model: ModelInfo | None = None  # set by open()
        self.ignored: tuple[str, ...] = ()  # sampling fields this server is not sent (see open)
        self._counter: RemoteCounter | None = None
        self._server_kind = ""
        self._connection: http.client.HTTPConnection | None = None  # the reply streaming now, if any
        self._cancelled = threading.Event()

    # --- the contract -----------------------------------------------------------------------------------------

    def open(self, n_ctx: int = 0) -> ModelInfo:
        """Check that the server serves the model, find its context size (`n_ctx` from config.toml wins; 0 if
        nobody says) and how to count tokens there."""
        from localchat.backends.remote_count import RemoteCounter, context_size

        started = time.perf_counter()
        answer = self.request_json("GET", "/models")
        served = {str(m.get("id")): m for m in answer.get("data", []) if isinstance(m, dict)}
        if served and self.model_name not in served:
            names = ", ".join(sorted(served)[:8])
            raise RemoteError(f"{self.label} serves no model {self.model_name!r} (it serves: {names})")
        entry = served.get(self.model_name, {})
        self._server_kind = str(entry.get("owned_by", ""))
        self._counter = RemoteCounter(self)
        self.exact_counts = self._counter.exact
        n_ctx = n_ctx or context_size(self, entry)
        self.model = ModelInfo(
            path=self.endpoint.url,
            name=self.model_name,
            architecture="remote",
            quantization=f"at {self.label}",
            parameters=0,
            layers=0,
            gpu_layers=0,
            n_ctx=n_ctx,
            n_ctx_train=n_ctx,
            threads=0,
            chat_template="the server's",
            load_s=time.perf_counter() - started,
        )
        self.ignored = () if self._server_kind in EXTRA_SAMPLING_READERS else EXTRA_SAMPLING
        return self.model

    def measure(self, messages: Sequence[ChatMessage], thinking: bool | None = None) -> ConversationTokens:
        if self._counter is None:
            raise RemoteError(f"{self.label}: open the model first")
        return self._counter.measure(messages)

    def models(self) -> list[str]:
        answer = self.request_json("GET", "/models")
        return [str(m.get("id")) for m in answer.get("data", []) if isinstance(m, dict)]

    def close(self) -> None:
        self.cancel()

    def cancel(self) -> None:
        """Stop the reply in flight at once: its connection is closed (safe from any thread)."""
        self._cancelled.set()
        connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(2)

    def reset_cancel(self) -> None:
        self._cancelled.clear()

    def generate(self, request: Generate, *, reset_cancel: bool = True) -> Iterator[Delta | Done]:
        if reset_cancel:
            self.reset_cancel()
        started = time.perf_counter()
        connection, response = self._request("POST", "/chat/completions", self._body(request), READ_TIMEOUT_S)
        self._connection = connection
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
        except RemoteError as exc:  # an error event, or an event that is not JSON: what came before is kept
            reason, error = "error", exc.message
        finally:
            self._close()
        if self._cancelled.is_set() and reason == "error":
            reason, error = "cancelled", None
        if self._counter is not None and usage.get("prompt_tokens"):
            with contextlib.suppress(LocalchatError):  # counting is the counter's business, not the reply's
                self._counter.learn(request.messages, int(usage["prompt_tokens"]))
        yield self._done(reason, error, "".join(parts), "".join(reasoning), usage, timings, started, first_at, chunks)

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _body(self, request: Generate) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [m.as_dict() for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        if not self.ignored:
            # Not in OpenAI's API (which refuses unknown fields): sent only to servers that read them.
            body |= {"top_k": s.top_k, "min_p": s.min_p, "repeat_penalty": s.repeat_penalty}
            if self._server_kind == "vllm":
                body["repetition_penalty"] = body.pop("repeat_penalty")
        if s.seed is not None:
            body["seed"] = s.seed
        if request.format == "json":
            body["response_format"] = {"type": "json_object"}  # OpenAI's JSON mode (llama-server: its grammar)
        return body

    def _request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        read_timeout: float | None = None,
        at_root: bool = False,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urllib.parse.urlsplit((self.endpoint.root if at_root else self.endpoint.url) + path)
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
        return connection, response

    def _refusal(self, response: http.client.HTTPResponse, detail: str) -> RemoteError:
        status, url = response.status, self.endpoint.url
        if status in (401, 403):
            return RemoteError(f"{url} refused the API key ({status}): set the right key in $OPENAI_API_KEY")
        if status == 404:
            return RemoteError(
                f"{url} has no model {self.model_name!r} ({status}): `localchat list --endpoint {url}` shows its models"
            )
        if status in (429, 503):
            wait = response.getheader("Retry-After")
            again = f"try again in {wait} s" if wait else "try again later"
            return RemoteError(f"{url} is busy ({status}): {again}")
        return RemoteError(f"{url} answered {status}: {detail or response.reason}")

    def request_json(self, method: str, path: str, body: dict | None = None, at_root: bool = False) -> dict[str, Any]:
        """One request and its JSON object (a connection of its own: never the reply streaming now)."""
        connection, response = self._request(method, path, body, at_root=at_root)
        where = (self.endpoint.root if at_root else self.endpoint.url) + path
        try:
            answer = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError):
            raise RemoteError(f"{where} did not answer JSON: is it an OpenAI-compatible API?") from None
        finally:
            connection.close()
        if not isinstance(answer, dict):
            raise RemoteError(f"{where} did not answer a JSON object")
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
