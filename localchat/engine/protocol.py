"""The typed messages between the engine client and the engine process.

Requests go to the worker; each is answered by one reply, except `Generate`, which is answered by a stream of
`Delta` events closed by one `Done`. Any request may instead be answered by `Failure`. Cancelling does not go
through this pipe (the worker is busy inside llama.cpp): it is a shared flag, see client.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from localchat.chat.sampling import SamplingParams
from localchat.models.memory import offload_report
from localchat.reasoning import ReasoningState, ThinkingSupport

Role = Literal["system", "user", "assistant"]
StopReason = Literal["eos", "length", "cancelled", "error"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


# GPU offload: "auto" (as many layers as the free VRAM holds), "all", or a layer count.
GpuLayers = int | Literal["auto", "all"]


@dataclass(frozen=True)
class LoadOptions:
    n_ctx: int | None = None  # None: a default bounded by the model's trained length and memory
    gpu_layers: GpuLayers = "auto"
    threads: int | None = None  # None: physical cores
    backend_sampling: bool | None = None  # sample in llama.cpp's graph; None: where the output layer is on a GPU
    saved_states: str | None = None  # a folder for recent chats' KV states (engine/saved_states.py); None: off
    saved_states_bytes: int = 1 << 30  # its budget, least recently used out
    draft: str | None = None  # a small model of the same family that guesses tokens for it (engine/draft.py)
    draft_required: bool = True  # a draft of another vocabulary fails the load; False: loads without it, noted
    # map the model file (llama.cpp's default); False reads it into memory (llama.cpp's --no-mmap); None: mapped
    # unless the model is split between a GPU and the CPU (engine/offload.py, maps_model_file)
    mmap: bool | None = None


# --- requests ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadModel:
    path: str
    options: LoadOptions = field(default_factory=LoadOptions)


@dataclass(frozen=True)
class Unload:
    pass


@dataclass(frozen=True)
class CountTokens:
    """Tokens of `text` as plain text, or of `messages` rendered with the chat template (as `Generate` would)."""

    text: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    thinking: bool | None = None  # as in Generate


@dataclass(frozen=True)
class Tokenize:
    """`text` split into the model's tokens, as inside a chat message (special tokens' text becomes them)."""

    text: str


@dataclass(frozen=True)
class MeasureConversation:
    """Each message's exact share of the rendered prompt, for context budgeting."""

    messages: tuple[ChatMessage, ...]
    thinking: bool | None = None  # as in Generate: the switch changes the rendered prompt


@dataclass(frozen=True)
class Generate:
    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None  # raw text completion instead of a chat (bench uses it)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    ignore_eos: bool = False  # keep going past end-of-generation tokens (fixed-length benchmarks)
    thinking: bool | None = None  # a thinking model's switch (ModelInfo.thinking); None: the model's default
    logprobs: int = 0  # > 0: each generated token's log-probability and the N likeliest candidates (Done.logprobs)
    prefix: str = ""  # the reply's start, already chosen ("regenerate from here"): generation goes on after it
    lookup: bool = True  # draft tokens copied from the context, verified by the model (engine/lookup.py)
    draft: bool = True  # let the draft model loaded with the model (LoadOptions.draft) guess tokens too
    # False: evaluate the whole prompt from an empty cache, as llama-server's cache_prompt=false does (the bench:
    # llama-bench's pp512 evaluates 512 tokens into an empty context)
    cache_prompt: bool = True
    format: Literal["json"] | None = None  # "json": the reply is a JSON object (a grammar, as Ollama's format)


@dataclass(frozen=True)
class ScoreReply:
    """The model's next-token candidates at each token of `reply`, an assistant reply to `messages` (computed on
    demand for a reply generated without them: only what the KV cache lacks is evaluated)."""

    messages: tuple[ChatMessage, ...]
    reply: str
    top_n: int = 20
    thinking: bool | None = None  # as in Generate


@dataclass(frozen=True)
class GetStats:
    pass


@dataclass(frozen=True)
class Shutdown:
    pass


Request = (
    LoadModel | Unload | CountTokens | Tokenize | MeasureConversation | Generate | ScoreReply | GetStats | Shutdown
)

# --- replies ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    architecture: str
    quantization: str
    parameters: int
    layers: int
    gpu_layers: int  # layers actually offloaded
    n_ctx: int
    n_ctx_train: int
    threads: int
    chat_template: str  # "model" (from the GGUF), or the family's format: "gemma (fallback)", "chatml (fallback)"
    load_s: float
    gpu_layers_setting: str = "auto"
    vram_estimate: int = 0  # bytes of GPU memory the offloaded layers take, estimated (models/memory.py)
    free_vram: int | None = None  # free GPU memory before loading; None without a GPU
    offload_note: str | None = None  # why fewer layers than asked were offloaded
    build_note: str | None = None  # this llama.cpp build runs slower here than it could, and the fix
    thinking: ThinkingSupport = "none"  # how the chat template turns thinking on and off (localchat/reasoning.py)
    thinks_by_default: bool = False  # with no switch given, the template lets the model think
    backend_sampling: bool = False  # the sampler chain runs in the model's graph (on the GPU), not on the CPU
    mmap: bool = True  # the model file is mapped, not read into memory (LoadOptions.mmap)
    draft: str | None = None  # the draft model's file (LoadOptions.draft)
    draft_note: str | None = None  # why the draft model asked for is not used

    @property
    def offload(self) -> dict[str, Any]:
        """The GPU offload as `run --json` reports it, with where the weights are: mapped from the file, or in RAM."""
        report = offload_report(
            self.gpu_layers_setting,
            self.gpu_layers,
            self.layers + 1,
            self.vram_estimate,
            self.free_vram,
            self.offload_note,
        )
        return {**report, "mmap": self.mmap}

    @property
    def offload_text(self) -> str:
        """One line for people: 'GPU 33/33 layers, ~1.2 GB VRAM' or 'CPU only'."""
        if not self.gpu_layers:
            return "CPU only" + (f" ({self.offload_note})" if self.offload_note else "")
        text = f"GPU {self.gpu_layers}/{self.layers + 1} layers, ~{self.vram_estimate / 1e9:.1f} GB VRAM"
        return text + (f" ({self.offload_note})" if self.offload_note else "")


@dataclass(frozen=True)
class Loaded:
    info: ModelInfo


@dataclass(frozen=True)
class LoadProgress:
    """How far a load has come (0..1), sent while it runs: a 7B takes many seconds on a laptop."""

    fraction: float


@dataclass(frozen=True)
class Unloaded:
    pass


@dataclass(frozen=True)
class TokenCount:
    tokens: int


@dataclass(frozen=True)
class Token:
    id: int
    piece: str  # its text; "" for a token that only starts a character the next one finishes (see `raw`)
    raw: bytes  # its bytes (a character may span tokens)
    special: bool  # a control token (<|im_start|>, <bos>...)


@dataclass(frozen=True)
class Tokens:
    tokens: tuple[Token, ...]


@dataclass(frozen=True)
class ConversationTokens:
    per_message: tuple[int, ...]  # each message's tokens as rendered, template framing included
    generation_prompt: int  # the assistant header added after the last message (and anything else fixed)

    @property
    def total(self) -> int:
        return sum(self.per_message) + self.generation_prompt


@dataclass(frozen=True)
class Delta:
    text: str  # the answer's text
    tokens: int = 0  # reply tokens generated so far, reasoning included
    reasoning: str = ""  # a thinking model's reasoning text
    reasoning_tokens: int = 0  # of `tokens`, the reasoning's so far
    thinking: bool = False  # the reply is inside its reasoning (the reasoning's last piece still says so)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    evaluated_prompt_tokens: int  # prompt tokens actually computed; the rest came from the KV cache
    completion_tokens: int  # reasoning included
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Speculative:
    """The drafts of one reply: tokens guessed, and how many of them the model's samples matched; and who
    guessed: "lookup" (copied from the context), "draft model", or "lookup + draft model"."""

    drafted: int
    accepted: int
    source: str = "lookup"


@dataclass(frozen=True)
class Timings:
    ttft_s: float
    prompt_s: float
    decode_s: float
    prompt_tok_s: float
    decode_tok_s: float
    thinking_s: float = 0.0  # from the first reasoning token to the answer's start (or the reply's end)


@dataclass(frozen=True)
class Candidate:
    token: str
    logprob: float  # natural log of its probability under the model's raw distribution (softmax of the logits)
    raw: bytes
    id: int = -1
    logit: float = 0.0  # what the sampler chain starts from (the repeat penalty is not a shift of the logprob)


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, as OpenAI's `logprobs.content[]` has it."""

    token: str
    logprob: float
    raw: bytes
    top: tuple[Candidate, ...]  # the N likeliest, most likely first
    id: int = -1
    # Each of `top`'s probability under the sampler chain that picked this token (0: filtered out), from
    # chat/distribution.py over the N; `chain_exact` False where the chain kept tokens beyond them.
    chain: tuple[float, ...] = ()
    chain_exact: bool = True


@dataclass(frozen=True)
class ReplyScores:
    """ScoreReply's answer: the reply as tokens, each with the candidates the model saw there."""

    tokens: tuple[TokenLogprob, ...]
    before: tuple[int, ...]  # the prompt's last tokens before the reply, oldest first (for the repeat penalty)


@dataclass(frozen=True)
class Done:
    stop_reason: StopReason
    text: str  # the answer
    usage: Usage
    timings: Timings
    error: str | None = None
    reasoning: str = ""
    reasoning_state: ReasoningState = "none"
    sampler: Literal["cpu", "graph"] = "cpu"  # where the tokens were picked: the CPU chain, or in llama.cpp's graph
    logprobs: tuple[TokenLogprob, ...] = ()  # when Generate.logprobs > 0: one per generated token, in order
    speculative: Speculative | None = None  # when prompt lookup drafted (Generate.lookup)


@dataclass(frozen=True)
class Stats:
    pid: int
    rss_bytes: int
    model: ModelInfo | None
    cached_tokens: int
    native_before_llama: tuple[str, ...] = ()  # extension modules loaded before llama.cpp (engine/native.py)
    # evaluations that reused llama.cpp's graph from the one before (same shape), since the model was loaded
    graphs_reused: int = 0


@dataclass(frozen=True)
class Failure:
    """The request failed in a way the user can act on (bad model file, prompt too long...)."""

    message: str
    kind: str = "error"  # "context": ContextOverflow; "model": a model that would not load; "cancelled": a load


Reply = (
    Loaded
    | LoadProgress
    | Unloaded
    | TokenCount
    | Tokens
    | ConversationTokens
    | Delta
    | Done
    | ReplyScores
    | Stats
    | Failure
)
