"""The engine on the real SmolLM2 model: streaming, determinism, exact counts, cancel, prefix reuse."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import ChatMessage, Delta, Done, Generate, LoadOptions
from localchat.errors import LocalchatError
from tests.conftest import collect

GREEDY = SamplingParams(temperature=0.0, max_tokens=40, seed=7)
QUESTION = (ChatMessage("user", "Name three colours of the rainbow."),)


def test_loads_with_model_metadata(engine: EngineClient, model_path: Path) -> None:
    info = engine.model
    assert info.path == str(model_path.resolve())
    assert info.architecture == "llama" and info.quantization == "Q4_1"
    assert info.layers == 30 and info.n_ctx_train == 8192
    assert info.n_ctx == 4096  # default: min(trained, 4096) when memory allows
    assert info.chat_template == "model"
    assert info.gpu_layers == 0  # CPU build


def test_a_real_reply_streams(engine: EngineClient) -> None:
    events = list(engine.generate(Generate(QUESTION, sampling=GREEDY)))
    deltas, done = events[:-1], events[-1]
    assert isinstance(done, Done) and all(isinstance(d, Delta) for d in deltas)
    # The first token goes out on its own, at once; later ones are batched by time (how many: the hardware's).
    assert deltas[0].tokens == 1 and len(deltas) >= 2
    assert [d.tokens for d in deltas] == sorted(d.tokens for d in deltas)
    assert deltas[-1].tokens == done.usage.completion_tokens
    assert done.text == "".join(d.text for d in deltas) and done.text.strip()
    assert done.stop_reason in ("eos", "length")
    assert done.usage.completion_tokens <= 40
    assert done.timings.ttft_s > 0 and done.timings.decode_tok_s > 0 and done.timings.prompt_tok_s > 0


def test_same_seed_and_temperature_zero_give_the_same_text(engine: EngineClient) -> None:
    first = collect(engine, Generate(QUESTION, sampling=GREEDY))[1]
    second = collect(engine, Generate(QUESTION, sampling=GREEDY))[1]
    assert first.text == second.text
    sampled = SamplingParams(temperature=0.9, seed=1234, max_tokens=30)
    a = collect(engine, Generate(QUESTION, sampling=sampled))[1]
    b = collect(engine, Generate(QUESTION, sampling=sampled))[1]
    assert a.text == b.text


def test_max_tokens_stops_with_length(engine: EngineClient) -> None:
    done = collect(engine, Generate(prompt="Once upon a time", sampling=SamplingParams(max_tokens=5), ignore_eos=True))[
        1
    ]
    assert done.stop_reason == "length" and done.usage.completion_tokens == 5


def test_counts_equal_the_models_tokenizer(engine: EngineClient, model_path: Path) -> None:
    from llama_cpp import Llama  # the test process may use llama_cpp as an independent reference

    reference = Llama(str(model_path), vocab_only=True, verbose=False)
    for text in ["Hello, world!", "naïve café — 東京 🚀", "   spaces\n\ttabs", "<|im_start|> is plain text here", ""]:
        expected = len(reference.tokenize(text.encode(), add_bos=False, special=False))
        assert engine.count_tokens(text) == expected
    conversation = (ChatMessage("system", "Be brief."), *QUESTION)
    counted = engine.count_chat_tokens(conversation)
    done = collect(engine, Generate(conversation, sampling=GREEDY))[1]
    assert counted == done.usage.prompt_tokens
    # The same count from llama-cpp-python's own chat path: its Jinja formatter and tokenizer.
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(reference.metadata["tokenizer.chat_template"], "<|im_end|>", "<|im_start|>")
    prompt = formatter(messages=[m.as_dict() for m in conversation]).prompt
    assert counted == len(reference.tokenize(prompt.encode(), add_bos=False, special=True))


def test_measure_splits_the_prompt_exactly(engine: EngineClient) -> None:
    conversation = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!"))
    conversation += (ChatMessage("user", "How are you?"),)
    measured = engine.measure(conversation)
    assert len(measured.per_message) == 4 and all(n > 0 for n in measured.per_message)
    assert measured.total == engine.count_chat_tokens(conversation)


def test_turn_two_reuses_the_prefix(engine: EngineClient) -> None:
    first = collect(engine, Generate(QUESTION, sampling=GREEDY))[1]
    follow_up = (*QUESTION, ChatMessage("assistant", first.text), ChatMessage("user", "And two more?"))
    second = collect(engine, Generate(follow_up, sampling=GREEDY))[1]
    new_tokens = second.usage.prompt_tokens - first.usage.prompt_tokens - first.usage.completion_tokens
    assert second.usage.evaluated_prompt_tokens <= new_tokens + 1
    assert second.usage.evaluated_prompt_tokens < second.usage.prompt_tokens // 2


def test_cache_prompt_false_evaluates_the_whole_prompt(engine: EngineClient) -> None:
    """The same request twice: the second from the cache, then again without it (the bench's prompts), the
    same greedy text each time."""
    first = collect(engine, Generate(QUESTION, sampling=GREEDY))[1]
    cached = collect(engine, Generate(QUESTION, sampling=GREEDY))[1]
    whole = collect(engine, Generate(QUESTION, sampling=GREEDY, cache_prompt=False))[1]
    assert cached.usage.evaluated_prompt_tokens == 1
    assert whole.usage.evaluated_prompt_tokens == whole.usage.prompt_tokens == first.usage.prompt_tokens
    assert first.text == cached.text == whole.text


def test_prompts_in_a_row_reuse_llamas_graph_when_no_reply_token_is_decoded_between(engine: EngineClient) -> None:
    """A reply cut at max_tokens leaves its last token undecoded, so the next prompt of the same shape reuses
    llama.cpp's graph, as llama-bench's pp512 runs do (the bench's prompts: one token each). A decoded token
    between two prompts (a two-token reply) makes it build its graph again."""
    one, two = replace(GREEDY, max_tokens=1), replace(GREEDY, max_tokens=2)
    reused = [engine.stats().graphs_reused]
    for sampling in (one, one, one, two, one):
        collect(engine, Generate(QUESTION, sampling=sampling, cache_prompt=False))
        reused.append(engine.stats().graphs_reused)
    steps = [after - before for before, after in itertools.pairwise(reused)]
    # the 2nd and 3rd reuse the 1st's graph; the 4th's prompt too, then its decode cannot, nor the 5th's prompt
    assert steps == [steps[0], 1, 1, 1, 0]


def long_prompt(engine: EngineClient, tokens: int) -> str:
    text = "The river runs past old stone bridges and quiet towns. " * (tokens // 10)
    assert engine.count_tokens(text) < engine.model.n_ctx - 16
    return text


def test_cancel_reaches_into_prompt_evaluation(engine: EngineClient) -> None:
    """A cancel raised as the request goes out is met by llama.cpp's abort callback inside llama_decode (the
    engine checks nothing of its own before): the long prompt is not evaluated, nothing streams, and the KV cache
    keeps only what was evaluated before (how fast a cancel lands: `localchat bench`)."""
    before = engine.stats().cached_tokens
    engine.cancel()
    prompt = long_prompt(engine, 3500)
    events = list(engine.generate(Generate(prompt=prompt, sampling=GREEDY), reset_cancel=False))
    assert [type(e) for e in events] == [Done] and events[0].stop_reason == "cancelled"
    assert events[0].usage.completion_tokens == 0
    assert engine.stats().cached_tokens <= before + 512  # at most the batches that completed
    # The engine is still good and its cache stays consistent.
    assert collect(engine, Generate(QUESTION, sampling=GREEDY))[1].stop_reason in ("eos", "length")


def test_cancel_during_the_reply_keeps_what_streamed(engine: EngineClient) -> None:
    stream = engine.generate(
        Generate(prompt="Count: 1, 2, 3,", sampling=SamplingParams(max_tokens=2000), ignore_eos=True)
    )
    received = []
    for event in stream:
        if isinstance(event, Delta):
            received.append(event.text)
            if len(received) == 5:
                engine.cancel()
        else:
            done = event
    assert done.stop_reason == "cancelled"
    assert done.text == "".join(received)  # everything that streamed is in the result, nothing more
    assert 5 <= done.usage.completion_tokens < 200  # far from max_tokens=2000


def test_prompt_longer_than_the_context_is_refused(engine: EngineClient) -> None:
    with pytest.raises(LocalchatError, match="context window is 4096"):
        collect(engine, Generate(prompt="hello " * 5000, sampling=GREEDY))


def test_abandoned_stream_leaves_the_engine_usable(engine: EngineClient) -> None:
    stream = engine.generate(Generate(prompt="Tell me a story.", sampling=SamplingParams(max_tokens=500)))
    next(stream)
    stream.close()  # the caller stopped reading
    assert collect(engine, Generate(QUESTION, sampling=GREEDY))[1].text


def test_small_context_and_threads_options(model_path: Path, tmp_path: Path) -> None:
    with EngineClient(tmp_path / "log") as client:
        info = client.load(model_path, LoadOptions(n_ctx=300, threads=1, gpu_layers=0))
        assert 300 <= info.n_ctx < 1024 and info.threads == 1
        done = collect(client, Generate(prompt="word " * 250, sampling=SamplingParams(max_tokens=4)))[1]
        assert done.usage.evaluated_prompt_tokens > 250  # evaluated in batches smaller than the default 512


def test_a_model_whose_template_does_not_compile_is_refused_and_takes_no_memory(
    model_path: Path, tmp_path: Path
) -> None:
    """The template was compiled after the weights and the context were allocated, and the failure path freed
    neither: each try kept ~100 MB here (VRAM on a GPU). Now it is checked first and a failed load frees all."""
    data = model_path.read_bytes()
    start = data.index(b"tokenizer.chat_template")
    end = data.index(b"%}", start)
    broken = tmp_path / "broken-template.gguf"
    broken.write_bytes(data[:end] + b"}}" + data[end + 2 :])  # `{% for ... }}`: same length, a syntax error
    with EngineClient(tmp_path / "log") as client:
        client.load(model_path)
        client.unload()
        baseline = client.stats().rss_bytes
        for _ in range(3):
            with pytest.raises(LocalchatError, match=r"chat template in broken-template\.gguf does not compile"):
                client.load(broken)
        assert client.stats().rss_bytes - baseline < 30_000_000
        assert client.stats().model is None
        client.load(model_path)
        assert collect(client, Generate(QUESTION, sampling=GREEDY))[1].stop_reason in ("eos", "length")


def test_model_without_chat_template_falls_back_to_chatml(model_path: Path, tmp_path: Path) -> None:
    data = model_path.read_bytes()
    key = b"tokenizer.chat_template"
    assert data.count(key) == 1
    plain = tmp_path / "no-template.gguf"
    plain.write_bytes(data.replace(key, b"tokenizer.chat_templatX"))  # same length: the file stays valid
    with EngineClient(tmp_path / "log") as client:
        info = client.load(plain)
        assert info.chat_template == "chatml (fallback)"
        conversation = (ChatMessage("user", "Hi"),)
        # ChatML without SmolLM2's default system prompt: fewer tokens than with the model's own template.
        assert client.count_chat_tokens(conversation) < 20
        assert collect(client, Generate(conversation, sampling=GREEDY))[1].stop_reason in ("eos", "length")


def test_close_during_a_reply_cancels_it_instead_of_waiting(model_path: Path, tmp_path: Path) -> None:
    """close() from another thread (the app quitting) ends a streaming reply as cancelled and the engine with it;
    it used to wait for the whole reply behind the client's lock."""
    client = EngineClient(tmp_path / "log")
    client.load(model_path)
    events: list = []
    request = Generate(prompt="Count: 1, 2, 3,", sampling=SamplingParams(max_tokens=3000), ignore_eos=True)
    reader = threading.Thread(target=lambda: events.extend(client.generate(request)))
    reader.start()
    while not any(isinstance(e, Delta) for e in events) and reader.is_alive():
        time.sleep(0.01)
    pid = client.pid
    client.close()
    reader.join(120)
    done = events[-1]
    assert isinstance(done, Done) and done.stop_reason == "cancelled" and done.usage.completion_tokens < 3000
    assert client.pid is None and not os.path.exists(f"/proc/{pid}/status")


def test_a_load_reports_its_progress_and_can_be_stopped(model_path: Path, tmp_path: Path) -> None:
    """llama.cpp's progress callback reaches the caller; a cancel makes it stop the load (it returns False)."""
    from localchat.errors import LoadCancelled

    with EngineClient(tmp_path / "log") as client:
        seen: list[float] = []
        client.load(model_path, progress=seen.append)
        assert len(seen) >= 3 and seen == sorted(seen) and seen[0] < 0.5 and seen[-1] == 1.0
        client.cancel()  # pressed as the load starts: the first progress call stops it
        with pytest.raises(LoadCancelled, match="was stopped"):
            client.load(model_path, reset_cancel=False)
        assert client.model is None and client.stats().model is None
        client.load(model_path)  # a new load is not stopped by the old cancel
        assert collect(client, Generate(QUESTION, sampling=GREEDY))[1].stop_reason in ("eos", "length")


def test_every_preset_generates(engine: EngineClient) -> None:
    """precise and creative set a repeat penalty: llama.cpp's penalties sampler took a new first argument
    (n_vocab) and every reply with a penalty failed with a TypeError."""
    from localchat.chat.sampling import PRESETS

    for name, params in PRESETS.items():
        _, done = collect(
            engine, Generate((ChatMessage("user", "Say hello."),), sampling=replace(params, max_tokens=8))
        )
        assert done.stop_reason in ("eos", "length") and done.error is None, name
        assert done.usage.completion_tokens > 0, name


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingParams(temperature=0, max_tokens=60),
        SamplingParams(temperature=0, max_tokens=60, repeat_penalty=1.3),
        SamplingParams(temperature=0.8, top_k=40, top_p=0.9, min_p=0.05, seed=7, max_tokens=60),
    ],
    ids=["greedy", "penalty", "seeded"],
)
def test_sampling_in_the_graph_picks_what_the_cpu_samplers_pick(
    sampling: SamplingParams, model_path: Path, tmp_path: Path
) -> None:
    """The sampler chain run inside llama.cpp's graph (what a GPU uses: no logits copied back) against the same
    chain on the CPU, on this CPU backend: the same tokens, for the same seed, reply after reply. Prompt lookup is
    off on both sides: the graph's side never drafts, and whether the CPU's drafts are taken depends on how long
    decodes take (engine/lookup.py, DraftPolicy), where a batch's logits may differ from a single token's in the
    last bits (bench/batch_identity.py): a near-tie could then flip on a loaded machine."""
    texts = []
    for on_backend in (False, True):
        with EngineClient(tmp_path / f"engine-{on_backend}.log") as client:
            info = client.load(model_path, LoadOptions(n_ctx=1024, backend_sampling=on_backend))
            assert info.backend_sampling is on_backend
            replies = []
            # The same settings twice (the attached chain is reset and kept), another prompt, then other settings.
            for question, settings in (
                ("Write a short story about a lighthouse.", sampling),
                ("Write a short story about a lighthouse.", sampling),
                ("Name three rivers.", sampling),
                ("Name three rivers.", replace(sampling, temperature=0.0, repeat_penalty=1.1)),
            ):
                request = Generate((ChatMessage("user", question),), sampling=settings, lookup=False)
                done = collect(client, request)[1]
                assert done.sampler == ("graph" if on_backend else "cpu")
                replies.append(done.text)
            texts.append(replies)
    assert texts[0] == texts[1] and len(texts[0][0]) > 40
    assert texts[0][0] == texts[0][1]  # the seed and the penalty's history start again with each reply


def test_a_reply_scored_afterwards_has_the_candidates_it_was_generated_from(engine: EngineClient) -> None:
    """ScoreReply (the sampling lab, for a reply generated without log-probabilities) gives, at each token, what
    the generation saw: the same tokens, the same top candidates, the same probabilities."""
    messages = (ChatMessage("user", "Name three rivers in Europe."),)
    done = collect(engine, Generate(messages, sampling=SamplingParams(temperature=0, max_tokens=30), logprobs=5))[1]
    assert len(done.logprobs) == done.usage.completion_tokens == 30
    for entry in done.logprobs:  # at temperature 0 the chosen token is always the top raw candidate
        assert entry.id == entry.top[0].id and entry.logprob == entry.top[0].logprob
    scored = engine.score_reply(messages, done.text, top_n=5)
    assert [t.id for t in scored.tokens] == [t.id for t in done.logprobs]
    for later, live in zip(scored.tokens, done.logprobs, strict=True):
        assert [c.id for c in later.top] == [c.id for c in live.top]
        assert later.logprob == pytest.approx(live.logprob, abs=2e-3)  # one batch against token by token
        assert later.top[0].logit - later.top[0].logprob == pytest.approx(later.top[1].logit - later.top[1].logprob)
    assert len(scored.before) == min(64, engine.count_chat_tokens(messages))  # the prompt's tail, for the penalty
    assert engine.score_reply(messages, "").tokens == ()


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingParams(temperature=0.9, top_k=40, top_p=0.9, min_p=0.05, seed=3, max_tokens=40),
        SamplingParams(temperature=1.2, top_k=0, top_p=0.8, min_p=0.1, repeat_penalty=1.4, seed=4, max_tokens=40),
        SamplingParams(temperature=0, repeat_penalty=1.5, max_tokens=40),
    ],
    ids=["balanced", "penalty", "greedy-penalty"],
)
def test_each_token_has_the_distribution_of_the_chain_that_picked_it(
    engine: EngineClient, sampling: SamplingParams
) -> None:
    """Beside the raw probabilities, the chain's own over the top 20: normalised, and the token it picked is
    always one that the chain kept (where the 20 hold every survivor)."""
    done = collect(engine, Generate(QUESTION, sampling=sampling, logprobs=20))[1]
    exact = [entry for entry in done.logprobs if entry.chain_exact]
    assert len(exact) >= 10
    for entry in exact:
        assert sum(entry.chain) == pytest.approx(1.0)
        chosen = next(i for i, c in enumerate(entry.top) if c.id == entry.id)
        assert entry.chain[chosen] > 0
        if sampling.temperature == 0:
            assert entry.chain[chosen] == 1.0


def test_without_mmap_the_model_is_read_into_memory_and_answers_the_same(model_path: Path, tmp_path: Path) -> None:
    """LoadOptions.mmap=False (llama.cpp's --no-mmap): the engine process holds no mapping of the model file,
    where with True, and by default on the CPU (no layer split off to a GPU), it maps it; the greedy reply is
    the same."""
    texts, mapped = [], []
    for mmap in (None, True, False):
        with EngineClient(tmp_path / f"engine-{mmap}.log") as client:
            info = client.load(model_path, LoadOptions(n_ctx=512, mmap=mmap))
            assert info.mmap is (mmap is not False)
            maps = Path(f"/proc/{client.pid}/maps").read_text()
            mapped.append(str(model_path.resolve()) in maps)
            request = Generate((ChatMessage("user", "Name three rivers."),), sampling=SamplingParams(0, max_tokens=30))
            texts.append(collect(client, request)[1].text)
    assert mapped == [True, True, False]
    assert texts[0] == texts[1] == texts[2] and len(texts[0]) > 20


CAT = (ChatMessage("user", "Describe a cat as JSON with name and age."),)


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingParams(temperature=0, max_tokens=120),  # greedy: picked through the grammar, not by argmax
        SamplingParams(temperature=0.8, seed=3, max_tokens=120),
        SamplingParams(temperature=0, repeat_penalty=1.1, max_tokens=120),  # the CPU's own penalty, then the grammar
    ],
    ids=["greedy", "seeded", "penalty"],
)
def test_format_json_holds_the_reply_to_a_json_object(engine: EngineClient, sampling: SamplingParams) -> None:
    """Ollama's format "json": llama.cpp's JSON grammar filters every pick, so the reply is one JSON object and ends
    when it closes. Without it this model wraps its JSON in a Markdown fence and talks on."""
    held = collect(engine, Generate(CAT, sampling=sampling, format="json"))[1]
    assert held.stop_reason == "eos" and isinstance(json.loads(held.text), dict), held.text
    free = collect(engine, Generate(CAT, sampling=sampling))[1].text
    with pytest.raises(json.JSONDecodeError):
        json.loads(free)
    assert held.speculative is None  # no drafts: they would be checked without the grammar
