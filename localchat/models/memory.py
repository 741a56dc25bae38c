"""Memory arithmetic for a model (pure): weights + KV cache + compute buffers, and whether that fits.

KV cache = n_ctx × Σlayers n_kv_heads × (head_dim_k + head_dim_v) × bytes per element (f16: 2).
Buffers = the activations of one n_ubatch batch (llama.cpp reserves more for a worst case with every row's
logits, but on the CPU those pages are never touched when one row is wanted) plus the tokenizer's tables.
Checked against the RSS of the engine after filling 1k and 4k contexts (tests/models/test_memory.py).

GPU offload of N layers (llama.cpp's n_gpu_layers) puts the output layer on the GPU first, then the last N-1
blocks with their KV cache; the token embeddings stay in RAM. On the GPU the compute buffer is allocated in
full (cudaMalloc, not lazily touched pages): a worst-case batch of logits plus a little, even with few layers
(llama.cpp runs big batches' matmuls on the GPU wherever the weights are). Checked against the VRAM the
engine held on an H100 (bench/results/cuda-*.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from localchat.models.gguf import ArrayInfo, GgufInfo, TensorBytes

DEFAULT_CONTEXT_CAP = 4096  # what Ollama and LM Studio default to; users raise it with --ctx
MIN_CONTEXT = 512
KV_BYTES_PER_ELEMENT = 2  # llama.cpp's default KV cache type is f16
N_UBATCH = 512
GPU_MARGIN_BYTES = 1 << 30  # left free on the GPU, as llama.cpp's --fit does by default...
# ...but no more than this share of a small GPU's free memory. The estimates are within 0.5% of what the process
# holds (H100, H200), so the margin is for other programs and fragmentation: at 0.15, `auto` took 12 of the 15
# layers of a 7B that load in 3.7 GB (0.80); at 0.08 the same estimates give 14 (0.93). A load that still runs
# out is retried with fewer layers (engine/offload.py).
GPU_MARGIN_FRACTION = 0.08
# The engine process's own CUDA runtime, measured on an H100 (CUDA 13, driver 580): the context, there as soon
# as the backend looks at the device, and what comes with the first batches (cuBLAS workspace, CUDA graphs).
GPU_CONTEXT_BYTES = 525 << 20
GPU_LATE_BYTES = 75 << 20
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
    block_bytes: int = 0  # tensor data of all repeating layers (0: unknown, spread the weights evenly)
    output_bytes: int = 0  # the output matrix as placed on a GPU (the embeddings' copy when they are tied)
    layer_bytes: tuple[int, ...] = ()  # per repeating layer, when the tensor table was read

    @property
    def kv_bytes_per_token(self) -> int:
        return self.kv_heads_total * (self.head_dim_k + self.head_dim_v) * KV_BYTES_PER_ELEMENT

    @property
    def offloadable(self) -> int:
        """Offload steps: every repeating layer, then the output layer (llama.cpp's n_gpu_layers range)."""
        return self.layers + 1


def shape_of(info: GgufInfo, weights_bytes: int | None = None, tensor_bytes: TensorBytes | None = None) -> ModelShape:
    """The numbers that size a model in memory, from its GGUF metadata (`weights_bytes`, `tensor_bytes`: all
    split parts; the first part's header has the metadata)."""
    layers = info.layer_count or 0
    heads = _number(info.arch_get("attention.head_count"), layers)
    kv_heads = info.arch_get("attention.head_count_kv", info.arch_get("attention.head_count", 0))
    kv_total = sum(kv_heads) if isinstance(kv_heads, list) else int(kv_heads or 0) * layers
    embedding = int(info.arch_get("embedding_length") or 0)
    head_k = int(info.arch_get("attention.key_length") or (embedding // heads if heads else 0))
    head_v = int(info.arch_get("attention.value_length") or head_k)
    tokens = info.get("tokenizer.ggml.tokens")
    vocab = tokens.length if isinstance(tokens, ArrayInfo) else int(info.arch_get("vocab_size") or 0)
    tensors = tensor_bytes or info.tensor_bytes
    return ModelShape(
        weights_bytes=weights_bytes or info.file_size,
        layers=layers,
        kv_heads_total=kv_total,
        head_dim_k=head_k,
        head_dim_v=head_v,
        embedding=embedding,
        feed_forward=_number(info.arch_get("feed_forward_length"), layers),
        vocab=vocab,
        block_bytes=tensors.blocks,
        output_bytes=tensors.output or tensors.embedding,
        layer_bytes=tensors.per_block if len(tensors.per_block) == layers else (),
    )


def size_only_shape(weights_bytes: int, layers: int = 32) -> ModelShape:
    """A rough shape before the header can be read (a pull's plan): a typical layer count, and a KV cache of
    a tenth of the weights at 4k tokens."""
    kv_heads = max(1, weights_bytes // 10 // 4096 // (2 * 64 * KV_BYTES_PER_ELEMENT))
    return ModelShape(weights_bytes, layers, kv_heads, 64, 64, 0, 0, 0)


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


SAMPLED_LOGIT_BYTES = 4  # a float per vocabulary entry and batch position, for sampling in the graph


def gpu_bytes(
    shape: ModelShape, n_ctx: int, gpu_layers: int, n_ubatch: int = N_UBATCH, context_started: bool = False
) -> int:
    """VRAM that offloading `gpu_layers` takes: the output layer, the last gpu_layers-1 blocks and their KV
    cache, the compute buffer and the CUDA runtime (without its context when `context_started`: the engine
    reads the free memory after its backend created the context)."""
    if gpu_layers <= 0 or shape.layers <= 0:
        return 0
    blocks_on_gpu = min(gpu_layers - 1, shape.layers)
    if shape.layer_bytes:
        blocks = sum(shape.layer_bytes[shape.layers - blocks_on_gpu :])
        output = shape.output_bytes
    elif shape.block_bytes:
        blocks = shape.block_bytes * blocks_on_gpu // shape.layers
        output = shape.output_bytes
    else:  # no tensor table (a size-only estimate): the weights spread over every offload step
        blocks = shape.weights_bytes * blocks_on_gpu // shape.offloadable
        output = shape.weights_bytes // shape.offloadable
    kv = shape.kv_bytes_per_token * n_ctx * blocks_on_gpu // shape.layers
    compute = ACTIVATION_BYTES * n_ubatch * (shape.vocab + 2 * shape.embedding)
    runtime = GPU_LATE_BYTES + (0 if context_started else GPU_CONTEXT_BYTES)
    # With every layer on the GPU the engine samples in llama.cpp's graph, which keeps a batch of logits there:
    # measured on an H200, full offload took 102 MB (1B) and 105 MB (7B) more than without, 4 × 512 × 49,152.
    sampling = SAMPLED_LOGIT_BYTES * n_ubatch * shape.vocab if gpu_layers > shape.layers else 0
    return blocks + output + kv + compute + runtime + sampling


def gpu_budget(free_vram: int) -> int:
    """What may be used of `free_vram`, after a safety margin for the driver, other programs and fragmentation."""
    return free_vram - min(GPU_MARGIN_BYTES, int(free_vram * GPU_MARGIN_FRACTION))


def choose_gpu_layers(shape: ModelShape, n_ctx: int, free_vram: int, context_started: bool = False) -> int:
    """The most layers whose estimate fits the GPU's budget (0 when not even one does). Seen from inside the
    engine (`context_started`) the free memory lacks the context already made: adding it back gives the same
    answer as `show` reading nvidia-smi from outside."""
    free_before = free_vram + (GPU_CONTEXT_BYTES if context_started else 0)
    budget = gpu_budget(free_before)
    for layers in range(shape.offloadable, 0, -1):
        if gpu_bytes(shape, n_ctx, layers) <= budget:
            return layers
    return 0


@dataclass(frozen=True)
class Offload:
    """How many layers go to the GPU for a --gpu-layers setting, and why."""

    gpu_layers: int
    vram_bytes: int  # the estimate for those layers
    note: str | None  # set when the setting was lowered to fit


def plan_offload(
    setting: int | str,
    shape: ModelShape,
    n_ctx: int,
    free_vram: int | None,
    can_offload: bool = True,
    context_started: bool = False,
) -> Offload:
    """auto: as many layers as fit; all/N: as asked, lowered to what fits when the estimate says it would not
    (a failed cudaMalloc mid-load is worse than a slower model). free_vram None: unknown, trust the setting.
    The estimate returned is what the process will hold on the GPU, its runtime included."""
    if not can_offload:
        return Offload(0, 0, None if setting in ("auto", 0) else "this build cannot offload to a GPU")
    wanted = shape.offloadable if setting in ("auto", "all") else min(int(setting), shape.offloadable)
    if free_vram is None:
        layers = wanted if setting != "auto" else 0
        return Offload(layers, gpu_bytes(shape, n_ctx, layers), None)
    fitting = choose_gpu_layers(shape, n_ctx, free_vram, context_started)
    if wanted <= fitting:
        return Offload(wanted, gpu_bytes(shape, n_ctx, wanted), None)
    note = (
        f"{wanted} GPU layers would need {_gb(gpu_bytes(shape, n_ctx, wanted))} of {_gb(free_vram)} free VRAM: "
        f"using {fitting}"
        if setting != "auto"
        else None
    )
    return Offload(fitting, gpu_bytes(shape, n_ctx, fitting), note)


def offload_report(
    setting: int | str, gpu_layers: int, offloadable: int, vram_bytes: int, free_vram: int | None, note: str | None
) -> dict[str, object]:
    """The offload as `show --json` plans it and `run --json` reports it: one shape for scripts."""
    return {
        "setting": str(setting),
        "gpu_layers": gpu_layers,
        "layers": offloadable,  # llama.cpp's count: every block and the output layer
        "vram_estimate_bytes": vram_bytes,
        "free_vram_bytes": free_vram,
        "note": note,
    }


def fewer_layers(gpu_layers: int) -> int:
    """The next try after a load failed for memory: a quarter fewer layers (0 = CPU only, which always loads)."""
    return gpu_layers * 3 // 4 if gpu_layers > 3 else 0


def fit_memory(estimate: MemoryEstimate, shape: ModelShape, free_ram: int | None, free_vram: int | None = None) -> Fit:
    """Fits (all on the GPU if there is one, else in RAM) / fits with partial offload (N layers) / does not fit."""
    need = estimate.total
    if free_vram:
        on_gpu = choose_gpu_layers(shape, estimate.n_ctx, free_vram)
        if on_gpu == shape.offloadable:
            vram = gpu_bytes(shape, estimate.n_ctx, on_gpu)
            return Fit("fits", on_gpu, f"fits in GPU memory ({_gb(vram)} of {_gb(free_vram)} free)")
        share = max(on_gpu - 1, 0) / max(shape.layers, 1)
        in_ram = need - int(((shape.block_bytes or estimate.weights) + estimate.kv_cache) * share)
        if free_ram is None or in_ram <= free_ram * (1 - RAM_MARGIN):
            return Fit(
                "partial",
                on_gpu,
                f"fits with partial offload: {on_gpu} of {shape.offloadable} layers on the GPU, the rest in RAM",
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
