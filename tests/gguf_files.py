"""Real GGUF files for tests, written with gguf-py from the test model: split, or with other metadata."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf


def _rewrite(source: Path, writer_for: Callable[[str], gguf.GGUFWriter], strings: dict[str, str]) -> None:
    """Copy `source`'s metadata (with `strings` set) and tensors through the writer `writer_for(arch)` gives."""
    reader = gguf.GGUFReader(source)
    writer = writer_for(reader.fields["general.architecture"].contents())
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF.") or field.name in strings:
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
    for key, value in strings.items():
        writer.add_string(key, value)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def split_gguf(source: Path, destination_stem: Path, max_tensors: int) -> list[Path]:
    """Split `source` into shards of at most `max_tensors` tensors; returns the shard paths, first first."""
    first = destination_stem.with_suffix(".gguf")
    _rewrite(source, lambda arch: gguf.GGUFWriter(first, arch, split_max_tensors=max_tensors), {})
    return sorted(destination_stem.parent.glob(f"{destination_stem.name}-*-of-*.gguf"))


def with_metadata(source: Path, destination: Path, strings: dict[str, str]) -> Path:
    """A copy of `source` with the given string metadata set (added or replaced): a real model whose name,
    licence or chat template says what a test needs."""
    _rewrite(source, lambda arch: gguf.GGUFWriter(destination, arch), strings)
    return destination
