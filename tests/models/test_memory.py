"""The memory estimate: pure arithmetic, and checked against the engine's real RSS on the test model."""

from dataclasses import replace
from pathlib import Path

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import Generate, LoadOptions
from localchat.hardware import parse_nvidia_smi
from localchat.models.gguf import read_gguf
from localchat.models.memory import (
    GPU_CONTEXT_BYTES,
    GPU_LATE_BYTES,
    ModelShape,
    choose_gpu_layers,
    estimate_memory,
    fewer_layers,
    fit_memory,
    gpu_budget,
    gpu_bytes,
    plan_offload,
    shape_of,
    size_only_shape,
)
from tests.conftest import collect

GB = 10**9


def test_kv_cache_formula(model_path: Path) -> None:
    shape = shape_of(read_gguf(model_path))
    # SmolLM2-135M: 30 layers × 3 KV heads × (64 + 64) × 2 bytes per token
    assert shape.kv_bytes_per_token == 30 * 3 * (64 + 64) * 2
    assert estimate_memory(shape, 1000).kv_cache == 1000 * shape.kv_bytes_per_token


@pytest.mark.parametrize("n_ctx", [1024, 4096])
def test_estimate_is_within_15_percent_of_measured_rss(n_ctx: int, model_path: Path, tmp_path: Path) -> None:
    estimate = estimate_memory(shape_of(read_gguf(model_path)), n_ctx)
    with EngineClient(tmp_path / "log") as client:
        baseline = client.stats().rss_bytes  # the engine process before any model
        client.load(model_path, LoadOptions(n_ctx=n_ctx))
        words = client.count_tokens("hello " * 100)
        collect(
            client, Generate(prompt="hello " * (100 * (n_ctx - 64) // words), sampling=SamplingParams(max_tokens=8))
        )
        measured = client.stats().rss_bytes - baseline
    assert abs(estimate.total - measured) / measured < 0.15, (estimate, measured)


# A 7B llama in Q4_K_M: 32 layers of ~115 MB, a 280 MB output matrix, 32k vocabulary, no GQA.
SEVEN_B = ModelShape(
    weights_bytes=4_080_000_000,
    layers=32,
    kv_heads_total=32 * 32,
    head_dim_k=128,
    head_dim_v=128,
    embedding=4096,
    feed_forward=11008,
    vocab=32000,
    block_bytes=3_680_000_000,
    output_bytes=280_000_000,
)
GIB = 2**30


def test_fit_verdicts() -> None:
    estimate = estimate_memory(SEVEN_B, 4096)
    assert fit_memory(estimate, SEVEN_B, free_ram=16 * GB).verdict == "fits"
    assert fit_memory(estimate, SEVEN_B, free_ram=4 * GB).verdict == "no"
    on_gpu = fit_memory(estimate, SEVEN_B, free_ram=16 * GB, free_vram=24 * GB)
    assert on_gpu.verdict == "fits" and on_gpu.gpu_layers == 33
    partial = fit_memory(estimate, SEVEN_B, free_ram=16 * GB, free_vram=4 * GB)
    assert partial.verdict == "partial" and 0 < partial.gpu_layers < 33 and "layers on the GPU" in partial.message
    assert fit_memory(estimate, SEVEN_B, free_ram=1 * GB, free_vram=2 * GB).verdict == "no"


def test_gpu_bytes_adds_blocks_kv_output_and_buffers() -> None:
    half = gpu_bytes(SEVEN_B, 4096, 16)
    full = gpu_bytes(SEVEN_B, 4096, 33)
    kv_per_layer = SEVEN_B.kv_bytes_per_token * 4096 // 32  # 64 MiB per layer at 4k, f16
    assert kv_per_layer == 64 * 2**20
    # One more repeating layer costs its weights and its KV cache, nothing else.
    assert gpu_bytes(SEVEN_B, 4096, 17) - half == 3_680_000_000 // 32 + kv_per_layer
    # The first offloaded "layer" is llama.cpp's output layer: its matrix, the compute buffer, the CUDA runtime.
    output_layer = 280_000_000 + 4 * 512 * (32000 + 2 * 4096) + GPU_CONTEXT_BYTES + GPU_LATE_BYTES
    assert gpu_bytes(SEVEN_B, 4096, 1) == output_layer
    assert gpu_bytes(SEVEN_B, 4096, 1, context_started=True) == output_layer - GPU_CONTEXT_BYTES
    assert gpu_bytes(SEVEN_B, 4096, 99) == full  # more than there are: all of them
    assert gpu_bytes(SEVEN_B, 4096, 0) == 0
    assert gpu_bytes(SEVEN_B, 8192, 33) - full == 32 * kv_per_layer  # context doubles the KV cache
    # Every layer on the GPU: the tokens are picked in llama.cpp's graph, which keeps a batch of logits there.
    assert full - gpu_bytes(SEVEN_B, 4096, 32) == 3_680_000_000 // 32 + kv_per_layer + 4 * 512 * 32000


def test_offload_follows_the_per_layer_sizes() -> None:
    # Q4_K_M gives some layers more bits; llama.cpp offloads the last layers first.
    uneven = replace(SEVEN_B, layer_bytes=(100,) * 28 + (200,) * 4)
    kv_per_layer = SEVEN_B.kv_bytes_per_token * 4096 // 32
    assert gpu_bytes(uneven, 4096, 3) - gpu_bytes(uneven, 4096, 1) == 2 * 200 + 2 * kv_per_layer
    assert gpu_bytes(uneven, 4096, 32) - gpu_bytes(uneven, 4096, 28) == 4 * 100 + 4 * kv_per_layer


def test_margin_is_llama_cpp_s_gib_but_at_most_8_percent() -> None:
    assert gpu_budget(80 * GIB) == 79 * GIB
    assert gpu_budget(4 * GIB) == 4 * GIB - int(4 * GIB * 0.08)


@pytest.mark.parametrize("free_gib", [0.2, 1, 2, 3, 4, 5, 6, 8, 80])
def test_chosen_layers_are_the_most_that_fit(free_gib: float) -> None:
    free = int(free_gib * GIB)
    chosen = choose_gpu_layers(SEVEN_B, 4096, free)
    assert 0 <= chosen <= 33
    if chosen:
        assert gpu_bytes(SEVEN_B, 4096, chosen) <= gpu_budget(free)
    if chosen < 33:
        assert gpu_bytes(SEVEN_B, 4096, chosen + 1) > gpu_budget(free)


def test_offload_settings() -> None:
    assert plan_offload("auto", SEVEN_B, 4096, 80 * GIB).gpu_layers == 33
    assert plan_offload("all", SEVEN_B, 4096, 80 * GIB).gpu_layers == 33
    assert plan_offload(10, SEVEN_B, 4096, 80 * GIB).gpu_layers == 10
    assert plan_offload(0, SEVEN_B, 4096, 80 * GIB).gpu_layers == 0
    assert plan_offload(500, SEVEN_B, 4096, 80 * GIB).gpu_layers == 33
    squeezed = plan_offload("auto", SEVEN_B, 4096, 4 * GIB)
    assert 0 < squeezed.gpu_layers < 33 and squeezed.note is None  # auto lowers silently: that is its job
    forced = plan_offload("all", SEVEN_B, 4096, 4 * GIB)  # would not fit: falls back, and says so
    assert forced.gpu_layers == squeezed.gpu_layers and "33 GPU layers would need" in (forced.note or "")
    assert plan_offload("auto", SEVEN_B, 4096, None).gpu_layers == 0  # no GPU seen
    assert plan_offload(20, SEVEN_B, 4096, None).gpu_layers == 20  # unknown free memory: trust the user
    cpu_build = plan_offload(20, SEVEN_B, 4096, 80 * GIB, can_offload=False)
    assert cpu_build.gpu_layers == 0 and "cannot offload" in (cpu_build.note or "")
    assert plan_offload("auto", SEVEN_B, 4096, 80 * GIB, can_offload=False).note is None


def test_fewer_layers_reaches_cpu_only() -> None:
    steps = [33]
    while steps[-1]:
        steps.append(fewer_layers(steps[-1]))
    assert steps == [33, 24, 18, 13, 9, 6, 4, 3, 0]


def test_size_only_shape_for_a_pull_plan() -> None:
    shape = size_only_shape(4 * GB)
    assert shape.layers == 32 and 0.08 < 4096 * shape.kv_bytes_per_token / (4 * GB) < 0.12
    assert gpu_bytes(shape, 4096, 33) > 4 * GB


def test_tensor_bytes_of_the_test_model(model_path: Path) -> None:
    info = read_gguf(model_path)
    tensors = info.tensor_bytes
    assert tensors.output == 0  # SmolLM2 ties its output to the embeddings...
    shape = shape_of(info)
    assert shape.output_bytes == tensors.embedding  # ...which llama.cpp copies to the GPU as the output layer
    data = tensors.blocks + tensors.embedding + tensors.other
    assert len(tensors.per_block) == 30 and sum(tensors.per_block) == tensors.blocks == sum(shape.layer_bytes)
    assert 0.98 < data / info.file_size < 1.0  # the rest is the header (vocabulary) and padding


def test_nvidia_smi_parsing() -> None:
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559, 80000\nbad line\n")
    assert len(gpus) == 1 and gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].free_bytes == 80000 << 20


def test_metadata_is_read_once_and_cached(model_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localchat import config
    from localchat.models import library as library_module

    lib = library_module.Library(config.paths().ensure())
    model = lib.import_file(model_path, "smol")
    first = lib.summary(model)
    assert lib.metadata_cache.exists()

    def no_reading(*_args: object) -> None:
        raise AssertionError("the GGUF header was parsed again")

    monkeypatch.setattr(library_module, "read_gguf", no_reading)
    assert lib.summary(model) == first  # from the cache: same (path, size, mtime)


def test_inside_and_outside_the_engine_agree() -> None:
    """`show` reads free VRAM before any CUDA context; the engine reads it after its own was made."""
    for free_gib in (2, 3.5, 5, 9):
        outside = int(free_gib * GIB)
        inside = outside - GPU_CONTEXT_BYTES
        assert choose_gpu_layers(SEVEN_B, 4096, inside, context_started=True) == choose_gpu_layers(
            SEVEN_B, 4096, outside
        )
