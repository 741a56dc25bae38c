"""llama.cpp through llama-cpp-python's low-level API: load, tokenize, render, evaluate, and the cache's tokens
(prefix reuse, saved chat states); the decode loop itself is engine/generation.py. Runs only inside the engine
process."""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import llama_cpp as ll

from localchat import hardware
from localchat.chat.sampling import SamplingParams
from localchat.doctor import slow_build_note
from localchat.engine.batch import BatchRows
from localchat.engine.devices import free_gpu_bytes, list_devices
from localchat.engine.draft import DraftModel, load_draft
from localchat.engine.generation import GenerationResult, generate
from localchat.engine.measure import ConversationCounter
from localchat.engine.offload import (
    OutOfMemory,
    decode_threads,
    is_memory_failure,
    load_with_fallback,
    maps_model_file,
)
from localchat.engine.protocol import (
    ChatMessage,
    ConversationTokens,
    LoadOptions,
    ModelInfo,
    TokenLogprob,
)
from localchat.engine.sampler import SamplerSlot
from localchat.engine.saved_states import SavedStates, common_prefix
from localchat.engine.templates import (
    TemplateTooCostly,
    TemplateTraits,
    compile_template,
    fallback_template,
    prepare,
    read_traits,
)
from localchat.engine.vocabulary import Vocabulary
from localchat.errors import ContextOverflow, DraftRefused, EngineError, LoadCancelled, TemplateRefused
from localchat.models.gguf import GgufInfo, split_tensor_bytes
from localchat.models.memory import default_context, gpu_bytes, plan_offload, shape_of
from localchat.reasoning import MARKERS

N_BATCH = 512

_libc = ctypes.CDLL(None)
# llama.cpp's recent warnings and errors (the worker's log callback appends): why a load failed.
LLAMA_ERRORS: deque[str] = deque(maxlen=50)


def abort_callback() -> ll.ggml_abort_callback:
    """llama.cpp polls its abort callback before every graph node. A Python callback there costs a GIL round
    trip per node (hundreds per token); C's strlen on our flag bytes answers the same question in C: the flag
    buffer is b"\\0\\0" normally (length 0 → false) and b"\\1\\0" once cancelled (length 1 → true)."""
    return ll.ggml_abort_callback(ctypes.cast(_libc.strlen, ctypes.c_void_p).value)


class LlamaRunner:
    """One loaded model and its context; remembers which tokens sit in the KV cache to reuse prefixes."""

    def __init__(
        self,
        gguf: GgufInfo,
        options: LoadOptions,
        abort_flag: ctypes.Array,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        started = time.perf_counter()
        self.gguf = gguf
        self._abort_flag = abort_flag
        self._progress = progress
        self._progress_callback = ll.llama_progress_callback(self._on_load_progress)  # llama.cpp holds it
        self._abort_callback = abort_callback()  # keep a reference: llama.cpp holds the pointer
        ll.llama_backend_init()
        self._system_info = ll.llama_print_system_info().decode(errors="replace")  # what this build compiled in
        shape = shape_of(gguf, tensor_bytes=split_tensor_bytes(gguf))
        threads = options.threads or hardware.physical_cores()
        n_ctx = options.n_ctx or default_context(
            gguf.context_length or 0, shape.kv_bytes_per_token, hardware.available_memory_bytes()
        )
        free_vram = free_gpu_bytes(list_devices())
        # The backend created its CUDA context to answer how much is free: that part is spent already.
        offload = plan_offload(
            options.gpu_layers, shape, n_ctx, free_vram, ll.llama_supports_gpu_offload(), context_started=True
        )
        fallback, template = fallback_template(gguf.architecture)
        # Compiled before the weights and the context take memory: a broken one costs nothing.
        self.template = compile_template(gguf.chat_template or template, gguf.path.name)
        self.traits = TemplateTraits()
        (self.model, self.ctx), gpu_layers = load_with_fallback(
            offload.gpu_layers,
            options.gpu_layers == "auto",
            lambda layers: self._load(
                gguf, layers, n_ctx, threads, maps_model_file(options.mmap, layers, shape.layers)
            ),
        )
        self.batch = None
        self.samplers: SamplerSlot | None = None
        self.draft_model: DraftModel | None = None  # a small model that guesses tokens (engine/draft.py)
        try:
            self.vocab = ll.llama_model_get_vocab(self.model)
            n_ctx_train = ll.llama_model_n_ctx_train(self.model)
            ll.llama_set_abort_callback(self.ctx, self._abort_callback, ctypes.addressof(abort_flag))
            self.n_ctx = ll.llama_n_ctx(self.ctx)
            self.n_batch = ll.llama_n_batch(self.ctx)  # llama.cpp lowers it for small contexts
            self.batch = ll.llama_batch_init(self.n_batch, 0, 1)
            self.batch_rows = BatchRows(self.batch, self.n_batch)
            self.cached: list[int] = []  # tokens whose KV entries are in the cache, positions 0..len-1
            self.words = Vocabulary(self.vocab)
            self.piece, self.tokenize, self.split = self.words.piece, self.words.tokenize, self.words.split
            self.bos = self.words.special_piece(ll.llama_vocab_bos(self.vocab))
            self.eos = self.words.special_piece(ll.llama_vocab_eos(self.vocab))
            self.traits = read_traits(
                self.template, gguf.chat_template or template, bos_token=self.bos, eos_token=self.eos
            )
            layers = ll.llama_model_n_layer(self.model)
            # The sampler chain runs in the graph where the output layer is on a GPU (None: decided so).
            self.backend_sampling = (
                gpu_layers > layers if options.backend_sampling is None else options.backend_sampling
            )
            self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
            self.samplers = SamplerSlot(self.ctx, self.n_vocab, self.backend_sampling)
            # On a GPU llama_decode only queues the work and the next sample waits for it: launching the next
            # decode before a token's text is made and sent hides that Python work behind the GPU's. On the CPU a
            # decode runs to its end, so the text goes first (it reaches the screen a token sooner).
            self.overlap_decode = gpu_layers > 0
            # A draft's rejected tail is dropped from the cache by position: a recurrent state cannot do that.
            self.can_draft = not (ll.llama_model_is_recurrent(self.model) or ll.llama_model_is_hybrid(self.model))
            self.batch_seconds: dict[tuple[int, int], deque[float]] = {}  # recent decodes here (DraftPolicy)
            self.saved = None
            if options.saved_states:
                self.saved = SavedStates(Path(options.saved_states), gguf.path, self.n_ctx, options.saved_states_bytes)
            self.counters: dict[bool | None, ConversationCounter] = {}  # one per thinking switch: prompts differ
            # Reasoning markers that are control tokens (Gemma 4's `<|channel>`) are printed, so they can be split.
            self.marker_tokens = self.words.single_special_tokens([m for pair in MARKERS for m in pair])
            self.info = ModelInfo(
                path=str(gguf.path),
                name=gguf.name,
                architecture=gguf.architecture,
                quantization=gguf.quantization,
                parameters=ll.llama_model_n_params(self.model),
                layers=layers,
                gpu_layers=gpu_layers,
                gpu_layers_setting=str(options.gpu_layers),
                vram_estimate=gpu_bytes(shape, self.n_ctx, gpu_layers),
                free_vram=free_vram,
                offload_note=offload.note
                if gpu_layers == offload.gpu_layers
                else f"{offload.gpu_layers} GPU layers ran out of memory while loading: using {gpu_layers}",
                n_ctx=self.n_ctx,
                n_ctx_train=n_ctx_train,
                threads=threads,
                chat_template="model" if gguf.chat_template else f"{fallback} (fallback)",
                load_s=time.perf_counter() - started,
                build_note=slow_build_note(self._system_info, hardware.cpu_flags()),
                thinking=self.traits.thinking,
                thinks_by_default=self.traits.thinks_by_default,
                backend_sampling=self.backend_sampling,
                mmap=maps_model_file(options.mmap, gpu_layers, shape.layers),
            )
            if options.draft:
                self._load_draft(options)
        except BaseException:  # a failed load frees what it took (VRAM on a GPU), whatever went wrong
            self.close()
            raise

    def _load_draft(self, options: LoadOptions) -> None:
        """The draft model asked for; one of another vocabulary fails the load, or with a draft from the
        settings (for every model, not this one), is left out with a note."""
        assert options.draft is not None
        try:
            self.draft_model = load_draft(self, options.draft, options)
        except DraftRefused as exc:
            if options.draft_required:
                raise
            self.info = replace(self.info, draft_note=f"{exc.message}: drafting is off")
            return
        self.info = replace(
            self.info, draft=self.draft_model.name, load_s=self.info.load_s + self.draft_model.runner.info.load_s
        )

    def _load(
        self, gguf: GgufInfo, gpu_layers: int, n_ctx: int, threads: int, mmap: bool
    ) -> tuple[ctypes.c_void_p, ...]:
        """The model and a context for it; OutOfMemory when a buffer could not be allocated."""
        LLAMA_ERRORS.clear()
        model_params = ll.llama_model_default_params()
        model_params.n_gpu_layers = gpu_layers
        if not mmap:  # read into memory: with a GPU, the CPU's layers then sit in its pinned host memory
            model_params.load_mode = ll.LLAMA_LOAD_MODE_NONE
        model_params.progress_callback = self._progress_callback
        if hardware.has_amx() and "AMX_INT8 = 1" in self._system_info:
            # This build's AMX matmul segfaults on the first decode on AMX CPUs (README, "CPU builds").
            # Without extra buffer types it runs (no weight repacking, so slower); reinstall to get both.
            model_params.use_extra_bufts = False
        model = ll.llama_model_load_from_file(str(gguf.path).encode(), model_params)
        if not model and self._aborted():
            raise LoadCancelled(f"loading {gguf.path.name} was stopped")
        if not model:
            if is_memory_failure(LLAMA_ERRORS):
                raise OutOfMemory()
            raise EngineError(f"llama.cpp could not load {gguf.path}: see the engine log for why")
        context_params = ll.llama_context_default_params()
        context_params.n_ctx = n_ctx
        context_params.n_batch = N_BATCH
        context_params.n_ubatch = N_BATCH
        context_params.n_threads = decode_threads(gpu_layers, ll.llama_model_n_layer(model), threads)
        context_params.n_threads_batch = threads
        ctx = ll.llama_init_from_model(model, context_params)
        if not ctx:
            ll.llama_model_free(model)
            if is_memory_failure(LLAMA_ERRORS) and gpu_layers > 0:
                raise OutOfMemory()
            raise EngineError(
                f"llama.cpp could not create a {n_ctx}-token context for {gguf.path}: try a smaller --ctx"
            )
        return model, ctx

    def _on_load_progress(self, fraction: float, _user_data: ctypes.c_void_p) -> bool:
        """llama.cpp's load progress; returning False stops the load (a cancel)."""
        if self._aborted():
            return False
        if self._progress is not None:
            self._progress(fraction)
        return True

    def close(self) -> None:
        if self.draft_model is not None:
            self.draft_model.close()
        if self.samplers is not None:
            self.samplers.close()
        if self.batch is not None:
            ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)

    # --- tokens -------------------------------------------------------------------------------------------

    def render(
        self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True, thinking: bool | None = None
    ) -> str:
        """The prompt for `messages`; `thinking` turns a thinking model's reasoning on or off where its template
        has a switch (None: the template's default)."""
        try:
            messages_data, switches = prepare([m.as_dict() for m in messages], self.traits, thinking)
            return self.template.render(
                messages_data, add_generation_prompt, bos_token=self.bos, eos_token=self.eos, **switches
            )
        except TemplateTooCostly as exc:
            raise EngineError(
                f"the chat template of {self.gguf.path.name} was stopped: {exc} (a template should take "
                "milliseconds): use another build of this model"
            ) from None
        except Exception as exc:  # the template is the model's code: any error is the model's, say so
            raise TemplateRefused(
                f"the chat template of {self.gguf.path.name} failed on this conversation: {exc}"
            ) from None

    def prompt_tokens(self, text: str) -> list[int]:
        """Tokens of a rendered prompt; BOS added only when the template did not write it already."""
        templated_bos = bool(self.bos) and text.startswith(self.bos)
        return self.tokenize(text, add_special=not templated_bos, parse_special=True)

    def chat_tokens(self, messages: Sequence[ChatMessage], thinking: bool | None = None) -> list[int]:
        return self.prompt_tokens(self.render(messages, True, thinking))

    def measure(self, messages: Sequence[ChatMessage], thinking: bool | None = None) -> ConversationTokens:
        """Each message's share of the rendered prompt, counted again only where the conversation changed."""
        counter = self.counters.get(thinking)
        if counter is None:
            counter = self.counters[thinking] = ConversationCounter(
                lambda messages, add: self.render(messages, add, thinking),
                lambda text: len(self.prompt_tokens(text)),
                self.words.continuation_tokens,
            )
        return counter.measure(messages)

    # --- decoding -----------------------------------------------------------------------------------------

    def graphs_reused(self) -> int:
        """How many evaluations reused llama.cpp's graph from the one before (its perf counter)."""
        return ll.llama_perf_context(self.ctx).n_reused

    def _aborted(self) -> bool:
        return self._abort_flag[0] != b"\0"

    def _decode(
        self,
        tokens: Sequence[int],
        start: int,
        want_logits: bool,
        logits_from: int | None = None,
        read: Callable[[int, int], None] | None = None,
    ) -> bool:
        """Evaluate `tokens` at positions start.. in batches; False if cancelled. Keeps `self.cached` exact.
        Logits for the last token (want_logits), or for every position from `logits_from` on, each handed to
        `read(position, index in its batch)` before the next batch overwrites them."""
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            self.batch_rows.fill(chunk, start + offset, logits_from, want_logits and offset + len(chunk) == len(tokens))
            status = ll.llama_decode(self.ctx, self.batch)
            if status != 0:
                self._forget_from(len(self.cached))
                if status == 2 or self._aborted():
                    return False
                raise EngineError(f"llama.cpp failed to evaluate the prompt (status {status})")
            self.cached.extend(chunk)
            if read is not None and logits_from is not None:
                for i in range(max(0, logits_from - start - offset), len(chunk)):
                    read(start + offset + i, i)
        return True

    def _forget_from(self, position: int) -> None:
        del self.cached[position:]
        ll.llama_memory_seq_rm(ll.llama_get_memory(self.ctx), 0, position, -1)

    def score(self, prompt: list[int], reply: list[int], top_n: int) -> list[TokenLogprob]:
        """The candidates at each token of `reply` after `prompt`: the logits the model computes there, read from
        one evaluation of what the cache lacks (the prompt's last token at least: its logits predict reply[0])."""
        from localchat.engine.logprobs import LogprobReader

        full = prompt + reply
        sequence = full[:-1]  # the logits after token i predict token i + 1
        if not reply:
            return []
        if len(sequence) >= self.n_ctx:
            raise ContextOverflow(len(sequence) + 1, self.n_ctx)
        reused = self._reuse(sequence, len(prompt) - 1)
        reader = LogprobReader(self.n_vocab, top_n, lambda t: self.piece(t, True))

        def read(position: int, batch_index: int) -> None:
            reader.read(ll.llama_get_logits_ith(self.ctx, batch_index), full[position + 1])

        if not self._decode(sequence[reused:], reused, want_logits=True, logits_from=len(prompt) - 1, read=read):
            raise EngineError("scoring the reply was cancelled")
        return reader.entries

    def _restore(self, tokens: Sequence[int]) -> None:
        """Where a saved state (engine/saved_states.py) shares more of `tokens` than the cache does, load it."""
        if self.saved is None:
            return
        found = self.saved.best(tokens, self._shared(tokens, len(tokens)))
        if found is None:
            return
        self._forget_from(0)
        restored = self.saved.restore(self.ctx, found[0])
        if restored is None:  # refused (damaged, another build): what it may have loaded goes, as if none was saved
            self._forget_from(0)
            return
        self.cached = restored

    def save_state(self) -> None:
        """Keep the cache's state for the next time this chat is opened (after a reply; never fatal); the draft
        model's too, or reopening the chat would wait for it to read the history again."""
        if self.draft_model is not None:
            self.draft_model.runner.save_state()
        if self.saved is None:
            return
        try:
            self.saved.save(self.ctx, self.cached)
        except OSError as exc:  # a full disk, a folder gone: the chat just re-reads its history next time
            LLAMA_ERRORS.append(f"saving the chat's state failed: {exc}")

    def _reuse(self, tokens: Sequence[int], limit: int) -> int:
        """Keep the cached prefix `tokens` shares (at most `limit` tokens), forget the rest; its length."""
        reused = self._shared(tokens, limit)
        self._forget_from(reused)
        return reused

    def _shared(self, tokens: Sequence[int], limit: int) -> int:
        """How many of `tokens` the cache holds from the start (at most `limit`)."""
        return min(common_prefix(self.cached, tokens), limit)

    def generate(
        self,
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
        max_tokens, a full context or cancel (engine/generation.py)."""
        if cache_prompt:
            self._restore(prompt[:-1])
        return generate(self, prompt, sampling, emit, ignore_eos, logprobs, lookup, draft, cache_prompt, format)
