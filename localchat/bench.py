"""`localchat bench`: the engine's speed on a model, measured the way llama-bench measures llama.cpp.

prompt: a fresh ~512-token prompt evaluated in full (llama-bench pp512); decode: 128 tokens generated past any
end-of-text (tg128); both the median of `repetitions`. turns: a 10-turn greedy conversation, where each turn
should evaluate only its new tokens (prefix reuse). cancel: how long a cancel takes to stop a long prompt.
count: the live counter on a 300-message chat: its first count, then one per keystroke (a changed draft),
beside a keystroke in a 2-message chat; it should not grow with the chat's length.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import ChatMessage, Done, Generate, LoadOptions

if TYPE_CHECKING:
    from localchat.backends.remote import RemoteBackend

PROMPT_TOKENS = 512
DECODE_TOKENS = 128
TURN_QUESTIONS = (
    "Hi! Can you help me plan a small vegetable garden?",
    "Which vegetables are easiest for a beginner?",
    "How much sun do tomatoes need?",
    "What about watering, how often?",
    "Should I use raised beds?",
    "What soil mix would you recommend?",
    "How do I keep slugs away?",
    "When should I plant lettuce?",
    "Can I grow herbs next to the tomatoes?",
    "Thanks! Can you summarise the plan in three points?",
)
LONG_CHAT = 300  # messages of ~600 characters: weeks of chatting
FILLER = "The quick brown fox jumps over the lazy dog while the river runs past old stone bridges. "


@dataclass(frozen=True)
class TurnResult:
    new_tokens: int
    evaluated_tokens: int
    ttft_s: float


@dataclass
class BenchResult:
    model: str
    threads: int
    n_ctx: int
    load_s: float
    prompt_tokens: int = 0
    ttft_s: float = 0.0
    prompt_tok_s: float = 0.0
    decode_tok_s: float = 0.0
    sampler: str = "cpu"  # where decode picked its tokens: "cpu", or "graph" (in llama.cpp's graph, on the GPU)
    decode_logprobs_tok_s: float = 0.0  # the same decode reading each token's top-5 log-probabilities
    cancel_ms: float = 0.0
    turns: list[TurnResult] = field(default_factory=list)
    count_long_first_ms: float = 0.0  # LONG_CHAT messages, counted for the first time
    count_long_key_ms: float = 0.0  # the same chat, the draft one character longer (median)
    count_short_key_ms: float = 0.0  # a 2-message chat, the same keystroke (median)

    @property
    def last_turn_ratio(self) -> float:
        last = self.turns[-1] if self.turns else None
        return last.evaluated_tokens / last.new_tokens if last and last.new_tokens else 0.0


def _finish(engine: EngineClient, request: Generate) -> Done:
    for event in engine.generate(request):
        if isinstance(event, Done):
            return event
    raise RuntimeError("no Done event")


def _prompt_of(engine: EngineClient, tokens: int, salt: int) -> str:
    """Text of about `tokens` tokens; the salt makes it differ from the start so no cache prefix applies."""
    words = f"Run {salt}. {FILLER * (tokens // 10)}".split(" ")
    low, high = 1, len(words)
    while low < high:  # the longest word prefix that stays within `tokens`
        middle = (low + high + 1) // 2
        if engine.count_tokens(" ".join(words[:middle])) <= tokens:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low])


def run_bench(
    model: str | Path, options: LoadOptions, repetitions: int = 3, log_path: Path | None = None
) -> BenchResult:
    greedy = SamplingParams(temperature=0.0, max_tokens=1, seed=1)
    with EngineClient(log_path) as engine:
        info = engine.load(model, options)
        result = BenchResult(str(model), info.threads, info.n_ctx, info.load_s)
        _finish(engine, Generate(prompt=_prompt_of(engine, 64, -1), sampling=greedy))  # warm-up
        prompt_runs, decode_runs, logprob_runs = [], [], []
        decode = SamplingParams(temperature=0.0, max_tokens=DECODE_TOKENS)
        for rep in range(repetitions):
            done = _finish(engine, Generate(prompt=_prompt_of(engine, PROMPT_TOKENS, rep), sampling=greedy))
            prompt_runs.append(done)
        # Prompts first: a reply with log-probabilities samples on the CPU, and the chain attached again after it
        # (where sampling runs in the graph) makes llama.cpp plan its graph anew, once, in the next prompt. Then
        # decode with and without log-probabilities in turn, so that the two see the same machine.
        for rep in range(repetitions):
            # Greedy, like llama-bench's tg (which samples nothing); sampling chains add ~2% per token here.
            done = _finish(engine, Generate(prompt=f"Story {rep}:", sampling=decode, ignore_eos=True))
            decode_runs.append(done)
            request = Generate(prompt=f"Story {rep}:", sampling=decode, ignore_eos=True, logprobs=5)
            logprob_runs.append(_finish(engine, request))
        result.prompt_tokens = prompt_runs[0].usage.evaluated_prompt_tokens
        result.prompt_tok_s = statistics.median(d.timings.prompt_tok_s for d in prompt_runs)
        result.ttft_s = statistics.median(d.timings.ttft_s for d in prompt_runs)
        result.decode_tok_s = statistics.median(d.timings.decode_tok_s for d in decode_runs)
        result.sampler = decode_runs[-1].sampler
        result.decode_logprobs_tok_s = statistics.median(d.timings.decode_tok_s for d in logprob_runs)
        result.cancel_ms = _cancel_latency_ms(engine)
        result.turns = _conversation(engine)
        result.count_long_first_ms, result.count_long_key_ms, result.count_short_key_ms = _count_times(engine)
    return result


def _count_times(engine: EngineClient, keys: int = 9) -> tuple[float, float, float]:
    """Milliseconds for the counter's measure (IPC included): a long chat's first count, then keystrokes."""
    long_chat = [
        ChatMessage("user" if i % 2 == 0 else "assistant", f"Message {i}. " + FILLER * 7) for i in range(LONG_CHAT)
    ]

    def timed(messages: list[ChatMessage]) -> float:
        started = time.perf_counter()
        engine.measure(messages)
        return (time.perf_counter() - started) * 1000

    first = timed(long_chat)
    draft = "What do you think"
    long_keys = [timed([*long_chat, ChatMessage("user", draft + "?" * n)]) for n in range(1, keys + 1)]
    short_chat = long_chat[:2]
    timed(short_chat)
    short_keys = [timed([*short_chat, ChatMessage("user", draft + "?" * n)]) for n in range(1, keys + 1)]
    return first, statistics.median(long_keys), statistics.median(short_keys)


def _cancel_latency_ms(engine: EngineClient) -> float:
    """Cancel 0.3 s into evaluating a long prompt; the time from cancel() to the Done event."""
    prompt = _prompt_of(engine, min(engine.model.n_ctx - 8, 4 * PROMPT_TOKENS), 99)
    cancelled_at: list[float] = []

    def cancel_later() -> None:
        time.sleep(0.3)
        cancelled_at.append(time.perf_counter())
        engine.cancel()

    timer = threading.Thread(target=cancel_later)
    timer.start()
    done = _finish(engine, Generate(prompt=prompt, sampling=SamplingParams(max_tokens=1)))
    ended = time.perf_counter()
    timer.join()
    return (ended - cancelled_at[0]) * 1000 if done.stop_reason == "cancelled" else float("nan")


def _conversation(engine: EngineClient) -> list[TurnResult]:
    sampling = SamplingParams(temperature=0.0, max_tokens=48, seed=1)
    messages: list[ChatMessage] = []
    seen = 0  # tokens the model has already seen: previous prompt + its reply
    turns = []
    for question in TURN_QUESTIONS:
        messages.append(ChatMessage("user", question))
        done = _finish(engine, Generate(tuple(messages), sampling=sampling))
        turns.append(
            TurnResult(done.usage.prompt_tokens - seen, done.usage.evaluated_prompt_tokens, done.timings.ttft_s)
        )
        seen = done.usage.prompt_tokens + done.usage.completion_tokens
        messages.append(ChatMessage("assistant", done.text))
    return turns


@dataclass
class RemoteBenchResult:
    endpoint: str
    model: str
    replies: int
    tokens: int  # streamed, all replies
    ttft_s: float  # median
    decode_tok_s: float  # median: the server's own timings where it sends them (llama-server), else as received
    client_cpu_ms_per_token: float  # this process's CPU time reading and parsing the stream, per token
    client_share_of_decode: float  # that CPU time over the decode time per token (goal ≤ 2%)


def run_remote_bench(backend: RemoteBackend, repetitions: int = 3) -> RemoteBenchResult:
    """Greedy fixed-length replies through an OpenAI-compatible server; what this side costs per token."""
    sampling = SamplingParams(temperature=0.0, max_tokens=DECODE_TOKENS)
    dones, cpu_s, tokens = [], 0.0, 0
    for rep in range(repetitions):
        request = Generate(
            (ChatMessage("user", f"Story {rep}: write a long story about a lighthouse."),), sampling=sampling
        )
        started_cpu = time.thread_time()  # the stream is read on this thread: its CPU time is the client's
        for event in backend.generate(request):
            if isinstance(event, Done):
                dones.append(event)
        cpu_s += time.thread_time() - started_cpu
        tokens += dones[-1].usage.completion_tokens
    decode = statistics.median(d.timings.decode_tok_s for d in dones)
    return RemoteBenchResult(
        endpoint=backend.endpoint.url,
        model=backend.model_name,
        replies=len(dones),
        tokens=tokens,
        ttft_s=statistics.median(d.timings.ttft_s for d in dones),
        decode_tok_s=decode,
        client_cpu_ms_per_token=cpu_s / tokens * 1000 if tokens else 0.0,
        client_share_of_decode=(cpu_s / tokens) * decode if tokens else 0.0,
    )
