"""The engine client: what the CLI and the UI use to talk to the engine process.

The engine runs llama.cpp in a child process, so a segfault, abort or out-of-memory kill there never takes the
caller down: a reply that was streaming ends with a `Done(stop_reason="error")` that keeps the text so far,
and the next call starts a fresh engine and reloads the model. Cancelling sets a byte in shared memory that
llama.cpp's abort callback reads between graph nodes, so it also stops a long prompt evaluation.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

from localchat.engine import protocol as p
from localchat.errors import EngineError, LoadCancelled, LocalchatError
from localchat.models.gguf import read_gguf

R = TypeVar("R")
STOP_TIMEOUT_S = 5.0
CLOSE_GRACE_S = 0.5  # close(): how long a request in flight may take to end after its cancel before the kill


class EngineCrashed(EngineError):
    pass


class EngineClient:
    exact_counts = True  # the model's own tokenizer and template (chat/backend.py's contract)

    def __init__(self, log_path: Path | None = None) -> None:
        # Two bytes of memory shared with the engine: b"\0\0" = run, b"\1\0" = cancel (runner.abort_callback).
        self._flag_file = tempfile.TemporaryFile()
        self._flag_file.write(b"\0\0")
        self._flag_file.flush()
        self._abort_flag = mmap.mmap(self._flag_file.fileno(), 2)
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._lock = threading.RLock()
        self._model_request: p.LoadModel | None = None
        self.model: p.ModelInfo | None = None

    # --- process lifecycle ------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        with self._lock:
            if self.alive:
                return
            self._discard_process()
            if self._log_path:
                self._log_path.parent.mkdir(parents=True, exist_ok=True)
            # A fresh interpreter (not multiprocessing's spawn, which re-imports the caller's __main__).
            ours, theirs = socket.socketpair()
            command = [sys.executable, "-m", "localchat.engine.worker", str(theirs.fileno())]
            command += [str(self._flag_file.fileno()), str(self._log_path or "")]
            self._process = subprocess.Popen(
                command,
                pass_fds=(theirs.fileno(), self._flag_file.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "GGML_NO_BACKTRACE": "1"},  # ggml would run gdb on an abort: slow, noisy
                start_new_session=True,  # Ctrl-C in the terminal goes to us; we decide to cancel
            )
            theirs.close()  # so that the engine's death reads as EOF here
            self._conn = Connection(ours.detach())

    def close(self) -> None:
        """End the engine. Whatever runs is cancelled first; if it does not let go of the engine within
        CLOSE_GRACE_S (a model still loading cannot be cancelled), the process is killed, so that closing never
        waits for a reply or a load to finish."""
        self.cancel()
        if not self._lock.acquire(timeout=CLOSE_GRACE_S):
            process = self._process
            if process is not None and process.poll() is None:
                process.kill()  # the thread in the request reads EOF and ends it as a crash
            self._lock.acquire()
        try:
            if self._conn is not None and self.alive:
                with contextlib.suppress(OSError):
                    self._conn.send(p.Shutdown())
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(CLOSE_GRACE_S)
            self._discard_process()
            self.model = None
            self._model_request = None
        finally:
            self._lock.release()

    def _discard_process(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_S)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _crash_message(self) -> str:
        code = None
        if self._process is not None:
            try:
                code = self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait()
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited (code {code})"
        where = f"; details in {self._log_path}" if self._log_path else ""
        return f"the engine process {how}{where}"

    # --- requests ---------------------------------------------------------------------------------------

    def _ensure_engine(self) -> None:
        """Start an engine if there is none (first use, or after a crash) and reload the last model."""
        if self.alive:
            return
        self.start()
        if self._model_request is not None:
            self._expect(self._model_request, p.Loaded)

    def _receive(self) -> p.Reply:
        try:
            return self._conn.recv()
        except (EOFError, OSError, ConnectionError):
            message = self._crash_message()
            self._discard_process()
            raise EngineCrashed(message) from None

    def _expect(self, request: p.Request, kind: type[R], progress: Callable[[float], None] | None = None) -> R:
        with self._lock:
            self._conn.send(request)
            reply = self._receive()
            while isinstance(reply, p.LoadProgress):
                if progress is not None:
                    progress(reply.fraction)
                reply = self._receive()
        if isinstance(reply, p.Failure):
            raise (LoadCancelled if reply.kind == "cancelled" else LocalchatError)(reply.message)
        if not isinstance(reply, kind):
            raise EngineError(f"engine answered {type(reply).__name__} to {type(request).__name__}")
        return reply

    def load(
        self,
        path: str | Path,
        options: p.LoadOptions | None = None,
        progress: Callable[[float], None] | None = None,
        *,
        reset_cancel: bool = True,
    ) -> p.ModelInfo:
        """Load a model (validated here first, so llama.cpp never sees a broken file); replaces any other.
        `progress(fraction)` is called as it loads; `cancel()` stops it (LoadCancelled)."""
        path = Path(path).expanduser().resolve()
        read_gguf(path)
        request = p.LoadModel(str(path), options or p.LoadOptions())
        if reset_cancel:
            self.reset_cancel()
        with self._lock:
            self._model_request = None  # a failed load must not be retried by crash recovery
            self.model = None
            self._ensure_engine()
            self.model = self._expect(request, p.Loaded, progress).info
            self._model_request = request
        return self.model

    def unload(self) -> None:
        with self._lock:
            self._model_request = None
            self.model = None
            if self.alive:
                self._expect(p.Unload(), p.Unloaded)

    def _call(self, request: p.Request, kind: type[R]) -> R:
        with self._lock:
            self._ensure_engine()
            return self._expect(request, kind)

    def count_tokens(self, text: str) -> int:
        return self._call(p.CountTokens(text=text), p.TokenCount).tokens

    def count_chat_tokens(self, messages: Sequence[p.ChatMessage], thinking: bool | None = None) -> int:
        """Tokens of the whole prompt `generate` would evaluate for these messages."""
        return self._call(p.CountTokens(messages=tuple(messages), thinking=thinking), p.TokenCount).tokens

    def tokenize(self, text: str) -> tuple[p.Token, ...]:
        """`text` as the model's tokens (as inside a chat message: the counter counts these)."""
        return self._call(p.Tokenize(text), p.Tokens).tokens

    def measure(self, messages: Sequence[p.ChatMessage], thinking: bool | None = None) -> p.ConversationTokens:
        return self._call(p.MeasureConversation(tuple(messages), thinking), p.ConversationTokens)

    def score_reply(
        self, messages: Sequence[p.ChatMessage], reply: str, top_n: int = 20, thinking: bool | None = None
    ) -> p.ReplyScores:
        """The model's candidates at each token of an assistant `reply` to `messages` (for the sampling lab)."""
        return self._call(p.ScoreReply(tuple(messages), reply, top_n, thinking), p.ReplyScores)

    def stats(self) -> p.Stats:
        return self._call(p.GetStats(), p.Stats)

    def cancel(self) -> None:
        """Stop the generation in progress (safe from any thread). Until `reset_cancel`, the next generation
        stops at once too: a stop pressed while a reply is still being prepared is not lost."""
        self._abort_flag[0] = 1

    def reset_cancel(self) -> None:
        """A new reply begins: forget any earlier stop."""
        self._abort_flag[0] = 0

    @property
    def cancelled(self) -> bool:
        return self._abort_flag[0] == 1

    def generate(self, request: p.Generate, *, reset_cancel: bool = True) -> Iterator[p.Delta | p.Done]:
        """Stream `Delta`s, then one `Done`. A crash ends the stream with Done(stop_reason="error").
        With reset_cancel=False a stop requested before this call (see `cancel`) still applies."""
        with self._lock:
            self._ensure_engine()
            if self._model_request is None:
                raise LocalchatError("no model is loaded: load one first")
            if reset_cancel:
                self.reset_cancel()
            self._conn.send(request)
            parts: list[str] = []
            reasoning: list[str] = []
            tokens = 0  # reply tokens so far, as the engine counted them
            finished = False
            try:
                while True:
                    try:
                        reply = self._receive()
                    except EngineCrashed as exc:
                        finished = True
                        yield _crashed(exc.message, "".join(parts), tokens, "".join(reasoning))
                        return
                    if isinstance(reply, p.Delta):
                        parts.append(reply.text)
                        reasoning.append(reply.reasoning)
                        tokens = reply.tokens
                        yield reply
                    elif isinstance(reply, p.Done):
                        finished = True
                        yield reply
                        return
                    elif isinstance(reply, p.Failure):
                        finished = True
                        raise LocalchatError(reply.message)
            finally:
                if not finished and self.alive:  # the caller stopped reading: stop the engine, drain to Done
                    self.cancel()
                    try:
                        while not isinstance(self._receive(), (p.Done, p.Failure)):
                            pass
                    except EngineCrashed:
                        pass


def _crashed(message: str, partial: str, tokens: int, reasoning: str) -> p.Done:
    return p.Done(
        stop_reason="error",
        text=partial,
        usage=p.Usage(0, 0, tokens),
        timings=p.Timings(0.0, 0.0, 0.0, 0.0, 0.0),
        error=message,
        reasoning=reasoning.strip(),
        reasoning_state="open" if reasoning and not partial else ("closed" if reasoning else "none"),
    )
