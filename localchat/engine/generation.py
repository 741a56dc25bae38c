"""The decode loop: evaluate what of a prompt is not cached, then sample, decode and send one token (and its
draft, engine/lookup.py) a step, all in llama.cpp's C calls. A function over the runner (engine/runner.py) that
owns the model, the context and the cache's tokens; runs only inside the engine process.

The high-level `Llama.generate` spends Python time per token (numpy logits copies, stopping criteria) and
reaches ~0.88 of native decode speed; this loop does one sample, one detokenize and one decode per token.
"""

from __future__ import annotations

import codecs
import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import llama_cpp as ll

from localchat.chat.sampling import PENALTY_LAST_N, SamplingParams
from localchat.engine.draft import ModelDrafter
from localchat.engine.lookup import DRAFT_MODEL, DraftPolicy, PromptLookup
from localchat.engine.protocol import Speculative, StopReason, Timings, TokenLogprob, Usage
from localchat.engine.sampler import json_chain, token_picker
from localchat.errors import ContextOverflow, EngineError

if TYPE_CHECKING:
    from localchat.engine.runner import LlamaRunner


@dataclass
class GenerationResult:
    stop_reason: StopReason
    text: str
    usage: Usage
    timings: Timings
    sampler: Literal["cpu", "graph"] = "cpu"
    logprobs: tuple[TokenLogprob, ...] = ()
    speculative: Speculative | None = None  # drafts tried, when prompt lookup ran


def generate(
    runner: LlamaRunner,
    prompt: list[int],
    sampling: SamplingParams,
    emit: Callable[[str, int], None],
    ignore_eos: bool = False,
    logprobs: int = 0,
    lookup: bool = True,
    draft: bool = True,
    cache_prompt: bool = True,
    format: Literal["json"] | None = None,
) -> GenerationResult:
    """Evaluate what of `prompt` is not cached (all of it without `cache_prompt`), then sample until EOS,
    max_tokens, a full context or cancel.
    With `lookup`, tokens copied from earlier in the context are decoded along with each sampled one and kept
    while the model's own samples agree with them (engine/lookup.py): the same tokens as without, sooner.
    With `draft` and a draft model loaded (engine/draft.py), its guesses are checked likewise where nothing in
    the context matched.
    With `format` "json" the reply is a JSON object: llama.cpp's JSON grammar filters every pick (on the CPU, with
    no drafts, which would be checked without it)."""
    started = time.perf_counter()
    if len(prompt) >= runner.n_ctx:
        raise ContextOverflow(len(prompt) + 1, runner.n_ctx)
    # Reuse the cached prefix; re-evaluate at least the last prompt token to get fresh logits.
    reused = runner._reuse(prompt, len(prompt) - 1 if cache_prompt else 0)
    evaluated = len(prompt) - reused
    text_parts: list[str] = []
    completion = 0
    decodes = 0  # tokens evaluated after the first was sampled (drafts that were kept included)
    first_token_at: float | None = None  # when the first token was sampled: prompt evaluation ends there
    last_step_at = started  # end of the last sample or decode

    def finish(reason: StopReason) -> GenerationResult:
        prompt_s = (first_token_at or time.perf_counter()) - started
        decode_s = last_step_at - first_token_at if first_token_at else 0.0
        text_parts.append(decoder.decode(b"", final=True))
        return GenerationResult(
            sampler="graph" if in_graph else "cpu",
            logprobs=tuple(reader.entries) if reader is not None else (),
            stop_reason=reason,
            text="".join(text_parts),
            usage=Usage(len(prompt), evaluated, completion),
            timings=Timings(
                ttft_s=prompt_s if first_token_at else 0.0,
                prompt_s=prompt_s,
                decode_s=decode_s,
                prompt_tok_s=evaluated / prompt_s if first_token_at and prompt_s > 0 else 0.0,
                decode_tok_s=decodes / decode_s if decodes and decode_s > 0 else 0.0,
            ),
            speculative=Speculative(policy.drafted, policy.accepted, source)
            if looks_up or guesser is not None
            else None,
        )

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # On a GPU the chain runs in the model's graph: the token comes back, not a vocabulary of logits to copy
    # and sort on the CPU (engine/sampler.py). Attached before the prompt's decode, which yields the first token.
    # Log-probabilities are read from the logits on the CPU: the chain runs there for such a reply.
    if format == "json":
        sampler, on_backend = json_chain(runner.vocab, sampling, runner.n_vocab), False
        runner.samplers.close()  # a chain attached in the graph would pick first
    else:
        sampler, on_backend = runner.samplers.take(sampling, prompt, allow_graph=not logprobs)
    reader = None
    if logprobs:
        from localchat.engine.logprobs import LogprobReader

        reader = LogprobReader(runner.n_vocab, logprobs, lambda t: runner.piece(t, True), sampling)
    in_graph = False  # llama.cpp did pick the tokens in the graph (it falls back to the CPU chain otherwise)
    # Drafts are checked by sampling at each of their positions with the CPU chain (the graph's samples one
    # token a batch), where the cache can drop a rejected tail (a recurrent model's state cannot), and where
    # no log-probabilities are read (they would need the history without the drafts).
    can_draft = runner.can_draft and not on_backend and reader is None and format is None
    looks_up = lookup and can_draft
    drafts: PromptLookup | None = None  # indexed once the prompt's decode is under way (below)
    guesser = None
    if draft and can_draft and runner.draft_model is not None:
        guesser = ModelDrafter(runner.draft_model, prompt, runner.n_vocab)
    source = " + ".join(name for name, on in (("lookup", looks_up), ("draft model", guesser is not None)) if on)
    policy = DraftPolicy(runner.batch_seconds)
    ahead: list[int] = []  # drafted tokens in the cache after the last sampled one, not yet verified
    drafted_from = 0  # where the draft came from: how far lookup's copy agreed (lookup.AGREEMENT), or DRAFT_MODEL
    decoded_at: float | None = None  # when the last decode began, until its logits were first sampled
    decoded_context = 0  # how many tokens that decode's batch followed
    rows = 1
    index = -1  # where in the last batch the logits for the next token are
    overlap = runner.overlap_decode
    piece_buffer = ctypes.create_string_buffer(64)
    ctx, vocab = runner.ctx, runner.vocab
    pick = token_picker(sampler, ctx, runner.n_vocab, sampling, on_backend, prompt, constrained=format is not None)
    decode, is_eog = ll.llama_decode, ll.llama_vocab_is_eog
    markers = runner.marker_tokens
    reason: StopReason = "length"

    def send(token: int) -> bool:
        """Emit the token's text; False when the reply was cancelled meanwhile."""
        text = decoder.decode(runner.piece(token, token in markers, piece_buffer))
        if text:
            text_parts.append(text)
            emit(text, completion)
        return not runner._aborted()

    try:
        if not runner._decode(prompt[reused:], reused, want_logits=True):
            return finish("cancelled")
        if looks_up:
            # Indexed here, not before the decode: on a GPU llama_decode returns while the prompt's work still
            # runs (on an H100, 1B model: 4.6-7.5 ms of it), and indexing 512 tokens took 0.35 ms of that CPU's time.
            drafts = PromptLookup(prompt)
        if guesser is not None and not guesser.catch_up():
            return finish("cancelled")
        batch = runner.batch  # each row's sequence is set once (engine/batch.py); a step decodes a token and its draft
        batch_token, batch_pos, batch_logits = batch.token, batch.pos, batch.logits
        while True:
            token = pick(index)
            last_step_at = time.perf_counter()
            if decoded_at is not None:  # what that width cost (on a GPU the decode ends at this sample)
                policy.timed(rows, last_step_at - decoded_at, decoded_context)
                decoded_at = None
            if first_token_at is None:
                first_token_at = last_step_at
                in_graph = on_backend and ll.llama_get_sampled_token_ith(ctx, -1) == token
            verified = bool(ahead) and token == ahead[0]  # the draft guessed it: it is in the cache already
            if verified:
                del ahead[0]
                index += 1
                if not ahead:
                    policy.record(drafted_from, index, index)
            elif ahead:  # a miss: the cache drops the rest of the draft
                policy.record(drafted_from, index + len(ahead), index)
                runner._forget_from(len(runner.cached) - len(ahead))
                ahead = []
            end_of_generation = is_eog(vocab, token)
            if reader is not None and not end_of_generation:
                reader.read(ll.llama_get_logits_ith(ctx, -1), token, runner.cached[-PENALTY_LAST_N:])
            if end_of_generation and not ignore_eos:
                reason = "eos"
                if verified:  # a one-token loop never decodes the end of generation: nor is it kept here
                    runner._forget_from(len(runner.cached) - len(ahead) - 1)
                    ahead = []
                break
            completion += 1
            if drafts is not None:
                drafts.append(token)
            if guesser is not None:
                guesser.append(token)
            if verified:  # never the reply's last token: drafts stop short of it (room, below)
                decodes += 1
                if not send(token):
                    reason = "cancelled"
                    break
                continue
            if not overlap and not send(token):
                reason = "cancelled"
                break
            position = len(runner.cached)
            # The last token of a reply cut at max_tokens is not decoded: the next turn's prompt evaluates it in
            # its batch for next to nothing, where a decode of its own would hold the reply's end back a step.
            # (And prompts in a row then reuse llama.cpp's graph, as llama-bench's pp512 runs do.)
            if completion >= sampling.max_tokens or position >= runner.n_ctx:  # or no room to keep it
                if overlap and not send(token):
                    reason = "cancelled"
                break
            # drafts stop short of the reply's last token, which is not decoded either way
            room = min(sampling.max_tokens - completion - 1, runner.n_ctx - position - 1, policy.most)
            if drafts is not None and room > 0:
                ahead, drafted_from = drafts.draft(room)
                ahead = ahead[: policy.length(drafted_from, len(ahead), context=position)]
            if guesser is not None and room > 0 and not ahead:  # a copy costs nothing to draft: it goes first
                guesses = policy.length(DRAFT_MODEL, room, policy.guess_cost(guesser.step_s, position), position)
                ahead, drafted_from = (guesser.draft(guesses) if guesses else []), DRAFT_MODEL
            batch_token[0] = token
            batch_pos[0] = position
            batch_logits[0] = True
            for i, guess in enumerate(ahead, 1):
                batch_token[i], batch_pos[i], batch_logits[i] = guess, position + i, True
            batch.n_tokens = rows = 1 + len(ahead)
            decoded_at = time.perf_counter() if drafts is not None or guesser is not None else None
            decoded_context = position
            status = decode(ctx, batch)
            if status != 0:
                runner._forget_from(position)
                ahead = []
                if overlap:
                    send(token)
                if status == 2 or runner._aborted():
                    reason = "cancelled"
                    break
                raise EngineError(f"llama.cpp failed while generating (status {status})")
            runner.cached.append(token)
            runner.cached.extend(ahead)
            decodes += 1
            index = 0 if ahead else -1
            if overlap and not send(token):
                reason = "cancelled"
                break
            last_step_at = time.perf_counter()
            if position + 1 >= runner.n_ctx:
                break
        if ahead:  # stopped inside a draft: the cache keeps what was verified
            policy.record(drafted_from, index + len(ahead), index)
            runner._forget_from(len(runner.cached) - len(ahead))
        if overlap:
            ll.llama_synchronize(ctx)  # the last decode's work is done before its time is read
            last_step_at = time.perf_counter()
    finally:
        runner.samplers.give_back(sampler, on_backend)
    return finish(reason)
