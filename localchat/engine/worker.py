"""The engine process: receives requests on a pipe, runs llama.cpp, sends replies.

Started by `EngineClient` as `python -m localchat.engine.worker PIPE_FD FLAG_FD LOG_PATH`. Its stderr goes to the
engine log (llama.cpp prints there, and a crash report must not land in the user's terminal) and core dumps
are off: a llama.cpp crash ends this process only, and the client turns that into an error event.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import sys
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from localchat.engine import protocol as p
from localchat.errors import ContextOverflow, LoadCancelled, LocalchatError
from localchat.reasoning import ReasoningSplitter, Split, opened_by_prompt

if TYPE_CHECKING:
    from localchat.engine.generation import GenerationResult


def _quiet_process(log_path: str | None) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):  # not on Windows; a hard limit may forbid it
        pass
    if log_path:
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 2)
        os.close(log)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def _silence_llama_logs() -> None:
    """Keep llama.cpp's info chatter out of the log; warnings and errors stay (they explain failed loads)."""
    import llama_cpp as ll

    from localchat.engine.runner import LLAMA_ERRORS

    @ll.llama_log_callback
    def on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            line = text.decode("utf-8", errors="replace")
            sys.stderr.write(line)
            LLAMA_ERRORS.append(line)

    _silence_llama_logs.callback = on_log  # type: ignore[attr-defined]  # llama.cpp keeps the pointer
    ll.llama_log_set(on_log, ctypes.c_void_p(0))


DELTA_INTERVAL_S = 0.03


class DeltaBatcher:
    """Send the first piece of a reply at once, then at most one Delta per 30 ms: every message wakes the
    client, and on a machine with few cores that steals time from llama.cpp's threads (at 1,000 tok/s on a
    GPU it would be a message per millisecond). 30 ms is below what a reader can see.

    Each token's text goes through the reasoning splitter first, so a thinking model's reasoning arrives apart
    from its answer, with its exact token count and time."""

    def __init__(self, conn: Connection, splitter: ReasoningSplitter | None = None) -> None:
        self.conn = conn
        self.splitter = splitter
        self.parts: list[str] = []
        self.reasoning_parts: list[str] = []
        self.tokens = 0
        self.reasoning_tokens = 0
        self.thinking_started: float | None = None
        self.thinking_s = 0.0
        self.sent_at = 0.0

    def __call__(self, text: str, tokens: int) -> None:
        self.tokens = tokens
        if self.splitter is None:
            self.parts.append(text)
        else:
            was_thinking = self.splitter.thinking
            split = self.splitter.feed(text)
            if was_thinking or self.splitter.thinking:  # the closing marker's token is the reasoning's too
                self.reasoning_tokens = tokens
                now = time.perf_counter()
                self.thinking_started = self.thinking_started or now
                self.thinking_s = now - self.thinking_started
            if was_thinking and not self.splitter.thinking:
                # The reasoning closed: what it said goes out now, as the reply's reasoning, ahead of the answer
                # (all of it may have come within one interval: prompt lookup drafts a copied reasoning at once).
                self._take(Split(reasoning=split.reasoning))
                self.flush(thinking=True)
                split = Split(answer=split.answer)
            self._take(split)
        if time.perf_counter() - self.sent_at >= DELTA_INTERVAL_S:
            self.flush()

    def _take(self, split: Split) -> None:
        if split.answer:
            self.parts.append(split.answer)
        if split.reasoning:
            self.reasoning_parts.append(split.reasoning)

    def flush(self, thinking: bool | None = None) -> None:
        """Send what has come since the last Delta; `thinking`: whether the reply is inside its reasoning (by
        default, whether it is now)."""
        if self.parts or self.reasoning_parts:
            if thinking is None:
                thinking = self.splitter is not None and self.splitter.thinking
            reasoning = "".join(self.reasoning_parts)
            self.conn.send(p.Delta("".join(self.parts), self.tokens, reasoning, self.reasoning_tokens, thinking))
            self.parts.clear()
            self.reasoning_parts.clear()
        self.sent_at = time.perf_counter()

    def done(self, result: GenerationResult) -> p.Done:
        """The last Delta, then the reply's Done: the answer apart from the reasoning."""
        usage, timings, reasoning, answer, state = result.usage, result.timings, "", result.text, "none"
        if self.splitter is not None:
            self._take(self.splitter.finish())
            reasoning, answer = self.splitter.result()
            usage = replace(usage, reasoning_tokens=self.reasoning_tokens)
            timings = replace(timings, thinking_s=self.thinking_s)
            state = self.splitter.state
        self.flush()
        return p.Done(
            result.stop_reason,
            answer,
            usage,
            timings,
            reasoning=reasoning,
            reasoning_state=state,
            sampler=result.sampler,
            logprobs=result.logprobs,
            speculative=result.speculative,
        )


class LoadReporter:
    """Load progress to the client, every 2% (llama.cpp reports it per tensor: hundreds of calls)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sent = -1.0

    def __call__(self, fraction: float) -> None:
        if fraction - self.sent >= 0.02 or (fraction >= 1.0 > self.sent):
            self.sent = fraction
            self.conn.send(p.LoadProgress(min(fraction, 1.0)))


def serve(conn: Connection, abort_flag: ctypes.Array, log_path: str | None) -> None:
    _quiet_process(log_path)
    from localchat.engine.native import foreign_extensions_loaded

    # llama.cpp first: before anything that brings a C++ runtime of its own (see engine/native.py).
    before_llama = tuple(foreign_extensions_loaded())
    _silence_llama_logs()
    from localchat import hardware
    from localchat.chat.sampling import PENALTY_LAST_N
    from localchat.engine.runner import LlamaRunner
    from localchat.models.gguf import read_gguf

    runner: LlamaRunner | None = None

    def need_model() -> LlamaRunner:
        if runner is None:
            raise LocalchatError("no model is loaded")
        return runner

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        try:
            if isinstance(request, p.Shutdown):
                break
            if isinstance(request, p.LoadModel):
                if runner is not None:
                    runner.close()
                    runner = None
                runner = LlamaRunner(read_gguf(request.path), request.options, abort_flag, LoadReporter(conn))
                conn.send(p.Loaded(runner.info))
            elif isinstance(request, p.Unload):
                if runner is not None:
                    runner.close()
                    runner = None
                conn.send(p.Unloaded())
            elif isinstance(request, p.CountTokens):
                model = need_model()
                if request.messages is not None:
                    count = len(model.chat_tokens(request.messages, request.thinking))
                else:
                    count = len(model.tokenize(request.text or ""))
                conn.send(p.TokenCount(count))
            elif isinstance(request, p.Tokenize):
                conn.send(need_model().split(request.text))
            elif isinstance(request, p.MeasureConversation):
                conn.send(need_model().measure(request.messages, request.thinking))
            elif isinstance(request, p.Generate):
                model = need_model()
                if request.prompt is not None:  # a raw completion: no chat, no reasoning to split
                    tokens, batcher = model.prompt_tokens(request.prompt), DeltaBatcher(conn)
                else:
                    # A reply held to JSON from its first token has no room to reason first: thinking off, unless asked
                    thinking = False if request.format and request.thinking is None else request.thinking
                    prompt = model.render(request.messages, True, thinking)
                    tokens = model.prompt_tokens(prompt)
                    # The kept start of a reply: tokenized on its own after the prompt, as ScoreReply does.
                    tokens += model.tokenize(request.prefix, parse_special=True) if request.prefix else []
                    batcher = DeltaBatcher(conn, ReasoningSplitter(opened_by_prompt(prompt)))
                result = model.generate(
                    tokens,
                    request.sampling,
                    batcher,
                    request.ignore_eos,
                    request.logprobs,
                    request.lookup,
                    request.draft,
                    cache_prompt=request.cache_prompt,
                    format=request.format,
                )
                conn.send(batcher.done(result))
                model.save_state()  # after the reply is out: the next request waits for it, the reader does not
            elif isinstance(request, p.ScoreReply):
                model = need_model()
                prompt = model.chat_tokens(request.messages, request.thinking)
                reply = model.tokenize(request.reply, parse_special=True)
                scored = model.score(prompt, reply, request.top_n)
                conn.send(p.ReplyScores(tuple(scored), tuple(prompt[-PENALTY_LAST_N:])))
            elif isinstance(request, p.GetStats):
                conn.send(
                    p.Stats(
                        os.getpid(),
                        hardware.process_rss_bytes(),
                        runner.info if runner else None,
                        len(runner.cached) if runner else 0,
                        before_llama,
                        runner.graphs_reused() if runner else 0,
                    )
                )
            else:
                conn.send(p.Failure(f"unknown request {type(request).__name__}"))
        except ContextOverflow as exc:
            conn.send(p.Failure(exc.message, kind="context"))
        except LoadCancelled as exc:
            conn.send(p.Failure(exc.message, kind="cancelled"))
        except LocalchatError as exc:
            conn.send(p.Failure(exc.message, kind="model" if isinstance(request, p.LoadModel) else "error"))
        except Exception as exc:  # report, keep serving: the client decides what to do
            logging.getLogger("localchat.engine").exception("request failed")
            conn.send(p.Failure(f"engine error: {type(exc).__name__}: {exc}"))
    if runner is not None:
        runner.close()


def main(argv: list[str]) -> None:
    pipe_fd, flag_fd, log_path = int(argv[0]), int(argv[1]), argv[2]
    flag = mmap.mmap(flag_fd, 2)
    serve(Connection(pipe_fd), (ctypes.c_char * 2).from_buffer(flag), log_path or None)


if __name__ == "__main__":
    main(sys.argv[1:])
