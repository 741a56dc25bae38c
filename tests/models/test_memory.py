"""The memory estimate: pure arithmetic, and checked against the engine's real RSS on the test model."""

from pathlib import Path

import pytest

from localchat.chat.sampling import SamplingParams
from localchat.engine.client import EngineClient
from localchat.engine.protocol import Generate, LoadOptions
from localchat.hardware import parse_nvidia_smi
from localchat.models.gguf import read_gguf
from localchat.models.memory import MemoryEstimate, estimate_memory, fit_memory, shape_of
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


def test_fit_verdicts() -> None:
    estimate = MemoryEstimate(4096, weights=4 * GB, kv_cache=1 * GB, compute=GB // 2)
    assert fit_memory(estimate, 32, free_ram=16 * GB).verdict == "fits"
    assert fit_memory(estimate, 32, free_ram=4 * GB).verdict == "no"
    on_gpu = fit_memory(estimate, 32, free_ram=16 * GB, free_vram=24 * GB)
    assert on_gpu.verdict == "fits" and on_gpu.gpu_layers == 33
    partial = fit_memory(estimate, 32, free_ram=16 * GB, free_vram=3 * GB)
    assert partial.verdict == "partial" and 0 < partial.gpu_layers < 33 and "layers on the GPU" in partial.message
    assert fit_memory(estimate, 32, free_ram=1 * GB, free_vram=2 * GB).verdict == "no"


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
