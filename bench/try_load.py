#!/usr/bin/env python3
"""Whether llama.cpp itself can load MODEL with N GPU layers and run a 512-token prompt (exit 0) or not (1).

Plain llama-cpp-python, none of localchat's planning, in its own process so a failed allocation ends only
this attempt. bench/cuda_compare.py uses it to find the largest layer count that really loads.
Usage: bench/try_load.py MODEL GPU_LAYERS [N_CTX]
"""

from __future__ import annotations

import sys

import llama_cpp as ll


def main() -> int:
    model_path, gpu_layers = sys.argv[1], int(sys.argv[2])
    n_ctx = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    ll.llama_backend_init()
    model_params = ll.llama_model_default_params()
    model_params.n_gpu_layers = gpu_layers
    model = ll.llama_model_load_from_file(model_path.encode(), model_params)
    if not model:
        return 1
    context_params = ll.llama_context_default_params()
    context_params.n_ctx = n_ctx
    context_params.n_batch = context_params.n_ubatch = 512
    ctx = ll.llama_init_from_model(model, context_params)
    if not ctx:
        return 1
    batch = ll.llama_batch_init(512, 0, 1)
    for i in range(512):
        batch.token[i] = 1 + i % 1000
        batch.pos[i] = i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = i == 511
    batch.n_tokens = 512
    status = ll.llama_decode(ctx, batch)
    ll.llama_batch_free(batch)
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
