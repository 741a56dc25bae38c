"""Memory arithmetic for a model (pure): weights + KV cache + compute buffers, and whether that fits.

KV cache = n_ctx × Σlayers n_kv_heads × (head_dim_k + head_dim_v) × bytes per element (f16: 2).
Buffers = the activations of one n_ubatch batch (llama.cpp reserves more for a worst case with every row's
logits, but on the CPU those pages are never touched when one row is wanted) plus the tokenizer's tables.
Checked against the RSS of the engine after filling 1k and 4k contexts (tests/models/test_memory.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from localchat.models.gguf import ArrayInfo, GgufInfo

DEFAULT_CONTEXT_CAP = 4096  # what Ollama and LM Studio default to; users raise it with --ctx
MIN_CONTEXT = 512
KV_BYTES_PER_ELEMENT = 2  # llama.cpp's default KV cache type is f16
N_UBATCH = 512
GPU_MARGIN = 0.10  # keep 10% of free VRAM for the driver, other apps and fragmentation
RAM_MARGIN = 0.05


@dataclass(frozen=True)
class ModelShape:
    weights_bytes: int
    layers: int
    kv_heads_total: int  # Σ over layers of the KV head count
    head_dim_k: int
    head_dim_v: int
    embedding: int
    feed_forward: int
    vocab: int

    @property
    def kv_bytes_per_token(self) -> int:
        return self.kv_heads_total * (self.head_dim_k + self.head_dim_v) * KV_BYTES_PER_ELEMENT


def shape_of(info: GgufInfo, weights_bytes: int | None = None) -> ModelShape:
    """The numbers that size a model in memory, from its GGUF metadata (`weights_bytes`: all split parts)."""
    layers = info.layer_count or 0
    heads = _number(info.arch_get("attention.head_count"), layers)
    kv_heads = info.arch_get("attention.head_count_kv", info.arch_get("attention.head_count", 0))
    kv_total = sum(kv_heads) if isinstance(kv_heads, list) else int(kv_heads or 0) * layers
    embedding = int(info.arch_get("embedding_length") or 0)
    head_k = int(info.arch_get("attention.key_length") or (embedding // heads if heads else 0))
    head_v = int(info.arch_get("attention.value_length") or head_k)
    tokens = info.get("tokenizer.ggml.tokens")
    vocab = tokens.length if isinstance(tokens, ArrayInfo) else int(info.arch_get("vocab_size") or 0)
    return ModelShape(
        weights_bytes=weights_bytes or info.file_size,
        layers=layers,
        kv_heads_total=kv_total,
        head_dim_k=head_k,
        head_dim_v=head_v,
        embedding=embedding,
        feed_forward=_number(info.arch_get("feed_forward_length"), layers),
        vocab=vocab,
    )


def _number(value: object, layers: int) -> int:
    """Per-layer lists (some architectures vary heads by layer) reduce to their maximum."""
    if isinstance(value, list):
        return int(max(value)) if value else 0
    return int(value or 0)


@dataclass(frozen=True)
class MemoryEstimate:
    n_ctx: int
    weights: int
    kv_cache: int
    compute: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute


ACTIVATION_BYTES = 4  # f32 activations
TOKENIZER_BYTES_PER_TOKEN = 320  # llama.cpp's vocabulary tables: token text, scores, merge and lookup maps


def estimate_memory(shape: ModelShape, n_ctx: int, n_ubatch: int = N_UBATCH) -> MemoryEstimate:
    activations = ACTIVATION_BYTES * n_ubatch * (6 * shape.embedding + 3 * shape.feed_forward)
    compute = activations + TOKENIZER_BYTES_PER_TOKEN * shape.vocab
    return MemoryEstimate(n_ctx, shape.weights_bytes, n_ctx * shape.kv_bytes_per_token, compute)


Verdict = Literal["fits", "partial", "no"]


@dataclass(frozen=True)
class Fit:
    verdict: Verdict
    gpu_layers: int  # layers to offload (0 without a GPU)
    message: str


def fit_memory(estimate: MemoryEstimate, layers: int, free_ram: int | None, free_vram: int | None = None) -> Fit:
    """Fits (all on the GPU if there is one, else in RAM) / fits with partial offload (N layers) / does not fit."""
    need = estimate.total
    if free_vram:
        budget = free_vram * (1 - GPU_MARGIN) - estimate.compute
        per_layer = (estimate.weights + estimate.kv_cache) / max(layers + 1, 1)  # +1: output layer
        on_gpu = max(0, min(layers + 1, int(budget // per_layer))) if budget > 0 else 0
        if on_gpu == layers + 1:
            return Fit("fits", on_gpu, f"fits in GPU memory ({_gb(need)} of {_gb(free_vram)} free)")
        in_ram = need - on_gpu * per_layer
        if free_ram is None or in_ram <= free_ram * (1 - RAM_MARGIN):
            return Fit(
                "partial",
                on_gpu,
                f"fits with partial offload: {on_gpu} of {layers + 1} layers on the GPU, the rest in RAM",
            )
        return Fit("no", 0, f"does not fit: needs {_gb(need)}, {_gb(free_vram)} VRAM + {_gb(free_ram)} RAM free")
    if free_ram is None:
        return Fit("fits", 0, f"needs {_gb(need)} (free memory unknown)")
    if need <= free_ram * (1 - RAM_MARGIN):
        return Fit("fits", 0, f"fits in memory ({_gb(need)} of {_gb(free_ram)} free)")
    return Fit("no", 0, f"does not fit: needs {_gb(need)}, {_gb(free_ram)} free — try a smaller quant or --ctx")


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def default_context(n_ctx_train: int, kv_bytes_per_token: int, available_bytes: int | None) -> int:
    """min(trained length, 4096), halved while the KV cache would take more than half the free memory."""
    n_ctx = min(n_ctx_train, DEFAULT_CONTEXT_CAP) if n_ctx_train > 0 else DEFAULT_CONTEXT_CAP
    if available_bytes is not None and kv_bytes_per_token > 0:
        while n_ctx > MIN_CONTEXT and n_ctx * kv_bytes_per_token > available_bytes // 2:
            n_ctx //= 2
    return max(min(n_ctx, n_ctx_train) if n_ctx_train > 0 else n_ctx, 1)
