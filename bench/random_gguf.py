#!/usr/bin/env python3
"""Write a llama-architecture GGUF with random F16 weights and a real tokenizer, for speed and memory figures.

A GPU needs a model of a real size to mean something (1B, 7B), and none can be downloaded where the GPU is.
Random weights run at exactly the speed of trained ones (the same matmuls on the same shapes); the tokenizer
is copied from a real GGUF (SmolLM2's, 49,152 tokens) so prompts tokenize as they would. Quantize the result
with llama.cpp's own tool: `llama-quantize OUT.gguf OUT-Q4_K_M.gguf Q4_K_M`.

Usage: bench/random_gguf.py --tokenizer SOURCE.gguf --shape 135m|1b|7b|tiny OUT.gguf
       bench/random_gguf.py --tokenizer SOURCE.gguf --shape none OUT.gguf   (the tokenizer alone, ~2 MB,
       small enough to carry to a GPU machine)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter


@dataclass(frozen=True)
class Shape:
    layers: int
    embedding: int
    feed_forward: int
    heads: int
    kv_heads: int
    context: int = 4096


SHAPES = {
    "tiny": Shape(layers=2, embedding=256, feed_forward=512, heads=4, kv_heads=2),  # for tests of this script
    "135m": Shape(layers=30, embedding=576, feed_forward=1536, heads=9, kv_heads=3),  # SmolLM2-135M's shape
    "1b": Shape(layers=22, embedding=2048, feed_forward=5632, heads=32, kv_heads=4),  # TinyLlama-1.1B's shape
    "7b": Shape(layers=32, embedding=4096, feed_forward=11008, heads=32, kv_heads=32),  # Llama-2-7B's shape
}
POOL_VALUES = 1 << 26  # random values drawn once and sliced at random offsets: drawing 7B of them takes minutes


def copy_tokenizer(source: str, writer: GGUFWriter) -> int:
    """Every tokenizer.* key of `source`; returns the vocabulary size."""
    reader = GGUFReader(source)
    vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == GGUFValueType.ARRAY:
            sub = field.types[1]
            if sub == GGUFValueType.STRING:
                values = [bytes(field.parts[i]).decode("utf-8", errors="surrogateescape") for i in field.data]
            else:
                values = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_key_value(key, values, kind, sub)
            if key == "tokenizer.ggml.tokens":
                vocab = len(values)
        elif kind == GGUFValueType.STRING:
            writer.add_key_value(key, bytes(field.parts[-1]).decode("utf-8", errors="surrogateescape"), kind)
        else:
            writer.add_key_value(key, field.parts[-1].tolist()[0], kind)
    return vocab


def tensors(shape: Shape, vocab: int) -> list[tuple[str, tuple[int, ...], bool]]:
    """(name, numpy shape, is a norm) in llama.cpp's llama layout (numpy shapes are ggml's reversed)."""
    head_dim = shape.embedding // shape.heads
    kv = shape.kv_heads * head_dim
    e, f = shape.embedding, shape.feed_forward
    out = [("token_embd.weight", (vocab, e), False)]
    for i in range(shape.layers):
        out += [
            (f"blk.{i}.attn_norm.weight", (e,), True),
            (f"blk.{i}.attn_q.weight", (e, e), False),
            (f"blk.{i}.attn_k.weight", (kv, e), False),
            (f"blk.{i}.attn_v.weight", (kv, e), False),
            (f"blk.{i}.attn_output.weight", (e, e), False),
            (f"blk.{i}.ffn_norm.weight", (e,), True),
            (f"blk.{i}.ffn_gate.weight", (f, e), False),
            (f"blk.{i}.ffn_up.weight", (f, e), False),
            (f"blk.{i}.ffn_down.weight", (e, f), False),
        ]
    return [*out, ("output_norm.weight", (e,), True), ("output.weight", (vocab, e), False)]


def write(path: str, tokenizer: str, shape_name: str, seed: int = 0) -> None:
    writer = GGUFWriter(path, "llama")
    vocab = copy_tokenizer(tokenizer, writer)
    if shape_name == "none":
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.close()
        return
    shape = SHAPES[shape_name]
    writer.add_name(f"random-llama-{shape_name}")
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.embedding)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.feed_forward)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_dimension_count(shape.embedding // shape.heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(1)  # mostly F16
    layout = tensors(shape, vocab)
    for name, dims, norm in layout:
        dtype = np.float32 if norm else np.float16
        writer.add_tensor_info(name, dims, np.dtype(dtype), int(np.prod(dims)) * np.dtype(dtype).itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    pool = (rng.standard_normal(POOL_VALUES, dtype=np.float32) * 0.02).astype(np.float16)
    for _name, dims, norm in layout:
        if norm:
            writer.write_tensor_data(np.ones(dims, dtype=np.float32))
            continue
        count = int(np.prod(dims))
        start = int(rng.integers(0, POOL_VALUES))
        values = np.resize(np.roll(pool, -start), count) if count > POOL_VALUES - start else pool[start : start + count]
        writer.write_tensor_data(values.reshape(dims))
    writer.close()
    print(f"wrote {path}: {shape_name}, {sum(int(np.prod(d)) for _, d, _ in layout) / 1e9:.2f}B parameters")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="a GGUF whose tokenizer.* keys are copied")
    parser.add_argument("--shape", choices=[*SHAPES, "none"], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("out")
    args = parser.parse_args()
    write(args.out, args.tokenizer, args.shape, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
