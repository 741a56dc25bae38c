"""Memory arithmetic for a model (pure): KV cache size and a default context that fits."""

from __future__ import annotations

DEFAULT_CONTEXT_CAP = 4096  # what Ollama and LM Studio default to; users raise it with --ctx
MIN_CONTEXT = 512
KV_BYTES_PER_ELEMENT = 2  # llama.cpp's default KV cache type is f16


def kv_cache_bytes(
    n_ctx: int, layers: int, kv_heads: int, head_dim_k: int, head_dim_v: int, bytes_per_element: int = 2
) -> int:
    """n_ctx × Σlayers n_kv_heads × (head_dim_k + head_dim_v) × bytes per element."""
    return n_ctx * layers * kv_heads * (head_dim_k + head_dim_v) * bytes_per_element


def default_context(n_ctx_train: int, kv_bytes_per_token: int, available_bytes: int | None) -> int:
    """min(trained length, 4096), halved while the KV cache would take more than half the free memory."""
    n_ctx = min(n_ctx_train, DEFAULT_CONTEXT_CAP) if n_ctx_train > 0 else DEFAULT_CONTEXT_CAP
    if available_bytes is not None and kv_bytes_per_token > 0:
        while n_ctx > MIN_CONTEXT and n_ctx * kv_bytes_per_token > available_bytes // 2:
            n_ctx //= 2
    return max(min(n_ctx, n_ctx_train) if n_ctx_train > 0 else n_ctx, 1)
