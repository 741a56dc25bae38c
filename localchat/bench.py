"""`localchat bench`: the engine's speed on a model, measured the way llama-bench measures llama.cpp.

prompt: a fresh prompt of exactly 512 tokens evaluated in full (llama-bench pp512); decode: 128 tokens generated
past any end-of-text (tg128); both the median of `repetitions` (each repetition's rate kept beside it). turns: a 10-turn
greedy conversation, where each turn should evaluate only its new tokens (prefix reuse). cancel: how long a
cancel takes to stop a long prompt. count: the live counter on a 300-message chat: its first count, then one per
keystroke (a changed draft), beside a keystroke in a 2-message chat; it should not grow with the chat's length.
speculative: prompt lookup's effective decode rate against plain decoding, side by side, on an edit (a
~1,600-token file returned with a function renamed: mostly a copy) and on prose, greedy and sampled (little to
copy: the worst case), with the acceptance rate.
Prompt and decode are measured without lookup, as llama-bench measures llama.cpp.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field, replace
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
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # each prompt's first letter (_prompt_of)
FILLER = "The quick brown fox jumps over the lazy dog while the river runs past old stone bridges. "


@dataclass(frozen=True)
class TurnResult:
    new_tokens: int
    evaluated_tokens: int
    ttft_s: float


@dataclass(frozen=True)
class LookupCase:
    plain_tok_s: float  # median decode rate, one token a step
    lookup_tok_s: float  # median effective rate with prompt lookup (generated tokens ÷ decode time)
    acceptance: float  # drafted tokens the model's samples matched
    tokens: int  # generated per reply
    speedup: float  # median of each lookup reply's rate over the plain one's just before it
    same_text: bool  # every reply with lookup had the text of the one without (see README, "Prompt lookup")
    source: str = "lookup"  # who drafted: "lookup", or "lookup + draft model" (bench --draft)


LOOKUP_TOKENS = 400


@dataclass
class BenchResult:
    model: str
    threads: int
    n_ctx: int
    load_s: float
    prompt_tokens: int = 0  # the fewest a measured prompt evaluated (each should evaluate PROMPT_TOKENS)
    ttft_s: float = 0.0
    prompt_tok_s: float = 0.0
    decode_tok_s: float = 0.0
    # each repetition's rate, in the order measured (the medians above hide a first one slower than the rest)
    prompt_runs_tok_s: list[float] = field(default_factory=list)
    decode_runs_tok_s: list[float] = field(default_factory=list)
    # measured prompts that reused llama.cpp's graph from the prompt before, as llama-bench's pp512 runs do
    prompt_graphs_reused: int = 0
    sampler: str = "cpu"  # where decode picked its tokens: "cpu", or "graph" (in llama.cpp's graph, on the GPU)
    decode_logprobs_tok_s: float | None = None  # the same decode reading each token's top-5 log-probabilities
    cancel_ms: float | None = None
    turns: list[TurnResult] = field(default_factory=list)
    count_long_first_ms: float | None = None  # LONG_CHAT messages, counted for the first time
    count_long_key_ms: float | None = None  # the same chat, the draft one character longer (median)
    count_short_key_ms: float | None = None  # a 2-message chat, the same keystroke (median)
    speculative: dict[str, LookupCase] = field(default_factory=dict)  # "edit", "prose", "prose_sampled"
    reopen: ReopenResult | None = None  # where saved chat states are on ([engine] state_cache_mb)

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
    """Text of exactly `tokens` tokens (a BOS the model adds not counted), where the tokenizer allows it (else as
    many as fit). It opens with a letter that the prompts of salt - 1 and salt + 1 do not: no two prompts in a
    row are the same text, as llama-bench's random tokens are not (and with the cache on, only a BOS is shared).

    Exact, as llama-bench's pp512 is: llama.cpp reuses its graph, and replays a CUDA graph, only for a batch of
    the shape of the one before. Prompts of 510-512 tokens in turn kept the measured ones from replays that
    llama-bench's got (H100, 1B at 12 of 23 layers, 2026-12-07)."""
    words = f"{LETTERS[salt % len(LETTERS)]}. {FILLER * (tokens // 10)}".split(" ")
    low, high = 1, len(words)
    while low < high:  # the longest word prefix that stays within `tokens`
        middle = (low + high + 1) // 2
        if engine.count_tokens(" ".join(words[:middle])) <= tokens:
            low = middle
        else:
            high = middle - 1
    text = " ".join(words[:low])
    count = engine.count_tokens(text)
    while count < tokens:  # the next word had two tokens and one was room left: words of one token fill it
        longer = engine.count_tokens(text + " the")
        if longer > tokens:
            break
        text, count = text + " the", longer
    return text


def _prompt_run(engine: EngineClient, text: str, sampling: SamplingParams) -> Done:
    """One prompt evaluated whole into an empty cache, as llama-bench's pp512 evaluates its 512 tokens."""
    return _finish(
        engine, Generate(prompt=text, sampling=sampling, ignore_eos=True, lookup=False, draft=False, cache_prompt=False)
    )


def _warm_up(engine: EngineClient, greedy: SamplingParams) -> int:
    """Warmed up as llama-bench warms up its pp512: a prompt of the measured size, which the measured ones follow
    with nothing decoded in between. Returns how many tokens of text make a prompt of PROMPT_TOKENS (the model
    may add a BOS: then the first warm-up had one token too many, and a second one has the measured size).

    On a GPU the first batches pay for CUDA's buffers. After that, a prompt that follows one of the same shape
    reuses llama.cpp's graph, and CUDA's: llama.cpp captures a CUDA graph the second time in a row a batch has
    the same shape and replays it after. So llama-bench's first measured run is the capture and the other two
    replays, and so are localchat's."""
    first = _prompt_run(engine, _prompt_of(engine, PROMPT_TOKENS, -2), greedy)
    text_tokens = PROMPT_TOKENS - (first.usage.evaluated_prompt_tokens - PROMPT_TOKENS)
    if text_tokens != PROMPT_TOKENS:
        _prompt_run(engine, _prompt_of(engine, text_tokens, -1), greedy)
    return text_tokens


def run_bench(
    model: str | Path,
    options: LoadOptions,
    repetitions: int = 3,
    log_path: Path | None = None,
    speed_only: bool = False,
) -> BenchResult:
    """Every case, or with `speed_only` the prompt and decode alone, as llama-bench measures them (what is not
    measured stays None or empty)."""
    greedy = SamplingParams(temperature=0.0, max_tokens=1, seed=1)
    states = options.saved_states is not None
    options = replace(options, saved_states=None)  # each case measures what it evaluates; reopen, below, restores
    with EngineClient(log_path) as engine:
        info = engine.load(model, options)
        result = BenchResult(str(model), info.threads, info.n_ctx, info.load_s)
        text_tokens = _warm_up(engine, greedy)
        prompt_runs, decode_runs, logprob_runs = [], [], []
        decode = SamplingParams(temperature=0.0, max_tokens=DECODE_TOKENS)
        reused_before = engine.stats().graphs_reused
        for rep in range(repetitions):
            prompt_runs.append(_prompt_run(engine, _prompt_of(engine, text_tokens, rep), greedy))
        result.prompt_graphs_reused = engine.stats().graphs_reused - reused_before
        # Prompts first: a reply with log-probabilities samples on the CPU, and the chain attached again after it
        # (where sampling runs in the graph) makes llama.cpp plan its graph anew, once, in the next prompt. Then
        # decode with and without log-probabilities in turn, so that the two see the same machine.
        for rep in range(repetitions):
            # Greedy, like llama-bench's tg (which samples nothing); sampling chains add ~2% per token here.
            story = Generate(prompt=f"Story {rep}:", sampling=decode, ignore_eos=True, lookup=False, draft=False)
            decode_runs.append(_finish(engine, story))
            if speed_only:
                continue
            request = Generate(prompt=f"Story {rep}:", sampling=decode, ignore_eos=True, logprobs=5, draft=False)
            logprob_runs.append(_finish(engine, request))
        result.prompt_tokens = min(d.usage.evaluated_prompt_tokens for d in prompt_runs)
        result.prompt_runs_tok_s = [d.timings.prompt_tok_s for d in prompt_runs]
        result.decode_runs_tok_s = [d.timings.decode_tok_s for d in decode_runs]
        result.prompt_tok_s = statistics.median(result.prompt_runs_tok_s)
        result.ttft_s = statistics.median(d.timings.ttft_s for d in prompt_runs)
        result.decode_tok_s = statistics.median(result.decode_runs_tok_s)
        result.sampler = decode_runs[-1].sampler
        if speed_only:
            return result
        result.decode_logprobs_tok_s = statistics.median(d.timings.decode_tok_s for d in logprob_runs)
        result.cancel_ms = _cancel_latency_ms(engine)
        result.turns = _conversation(engine)
        result.count_long_first_ms, result.count_long_key_ms, result.count_short_key_ms = _count_times(engine)
        result.speculative = _lookup_cases(engine, repetitions)
    if states:
        result.reopen = _reopen(model, options, log_path)
    return result


@dataclass(frozen=True)
class ReopenResult:
    history_tokens: int
    cold_ttft_s: float  # the next turn of a reopened chat, its history evaluated again
    restored_ttft_s: float  # the same, its saved state restored
    same_text: bool  # the restored reply is the one the chat would have had without the restart


REOPEN_CHARACTERS = 7_000  # a chat of ~2,000 tokens with the test model's tokenizer


def _reopen(model: str | Path, options: LoadOptions, log_path: Path | None) -> ReopenResult:
    """Turn N of a long chat, then a restart and turn N+1: with the saved state, and with the history evaluated
    again; against turn N+1 asked without a restart (the reply the restored one must equal)."""
    import tempfile

    greedy = SamplingParams(temperature=0.0, max_tokens=32, seed=1)
    history: list[ChatMessage] = []
    while sum(len(m.content) for m in history) < REOPEN_CHARACTERS:
        number = len(history) // 2
        history += [
            ChatMessage("user", f"Question {number}: what do you make of this? " + FILLER * 3),
            ChatMessage("assistant", f"Answer {number}. " + FILLER * 3),
        ]
    history.append(ChatMessage("user", "Sum it all up in one sentence."))

    def turn(engine: EngineClient, messages: list[ChatMessage]) -> Done:
        return _finish(engine, Generate(tuple(messages), sampling=greedy))

    with EngineClient(log_path) as engine:  # the chat without a restart: turn N, then N+1 (the reference)
        engine.load(model, options)
        first = turn(engine, history)
        following = [*history, ChatMessage("assistant", first.text), ChatMessage("user", "And in one word?")]
        unbroken = turn(engine, following)
    with tempfile.TemporaryDirectory(prefix="localchat-reopen-") as folder:
        saving = replace(options, saved_states=folder)
        with EngineClient(log_path) as engine:  # turn N, its state saved after the reply; then the app closes
            engine.load(model, saving)
            turn(engine, history)
        with EngineClient(log_path) as engine:  # restarted: turn N+1 from the saved state
            engine.load(model, saving)
            restored = turn(engine, following)
    with EngineClient(log_path) as engine:  # restarted with nothing saved: the history evaluated again
        engine.load(model, options)
        cold = turn(engine, following)
    return ReopenResult(
        history_tokens=cold.usage.prompt_tokens,
        cold_ttft_s=cold.timings.ttft_s,
        restored_ttft_s=restored.timings.ttft_s,
        same_text=restored.text == unbroken.text,
    )


def _lookup_cases(engine: EngineClient, repetitions: int) -> dict[str, LookupCase]:
    """Each case with and without prompt lookup, in turn (so both see the same machine); medians."""
    from localchat.bench_cases import EDIT_REQUEST, PROSE_REQUEST, edit_source

    greedy = SamplingParams(temperature=0.0, max_tokens=LOOKUP_TOKENS)
    sampled = SamplingParams(temperature=0.8, max_tokens=LOOKUP_TOKENS, seed=3)  # copies least: the worst case
    cases = {
        "edit": (f"```python\n{edit_source()}```\n\n{EDIT_REQUEST}", greedy),
        "prose": (PROSE_REQUEST, greedy),
        "prose_sampled": (PROSE_REQUEST, sampled),
    }
    results = {}
    for name, (text, sampling) in cases.items():
        messages = (ChatMessage("user", text),)
        runs: dict[bool, list[Done]] = {False: [], True: []}
        # First the prompt alone, so that every reply then reuses it alike (a prompt evaluated in one batch and
        # its last token evaluated alone round differently: README, "Prompt lookup")
        _finish(engine, Generate(messages, sampling=replace(sampling, max_tokens=1), lookup=False, draft=False))
        for _ in range(2 * repetitions + 1):  # one reply varies by ±5% on this shared machine: more pairs
            for lookup in (False, True):
                # with: prompt lookup, and the draft model where one was loaded (bench --draft)
                request = Generate(messages, sampling=sampling, lookup=lookup, draft=lookup)
                runs[lookup].append(_finish(engine, request))
        drafted = sum(d.speculative.drafted for d in runs[True] if d.speculative)
        accepted = sum(d.speculative.accepted for d in runs[True] if d.speculative)
        pairs = zip(runs[False], runs[True], strict=True)
        results[name] = LookupCase(
            plain_tok_s=statistics.median(d.timings.decode_tok_s for d in runs[False]),
            lookup_tok_s=statistics.median(d.timings.decode_tok_s for d in runs[True]),
            # each lookup reply over the plain one just before it: the machine's drift cancels out
            speedup=statistics.median(b.timings.decode_tok_s / a.timings.decode_tok_s for a, b in pairs),
            acceptance=accepted / drafted if drafted else 0.0,
            tokens=runs[True][-1].usage.completion_tokens,
            same_text=all(a.text == b.text for a, b in zip(runs[False], runs[True], strict=True)),
            source=next((d.speculative.source for d in runs[True] if d.speculative), "lookup"),
        )
    return results


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
