"""Read and validate a GGUF file's header without llama.cpp.

The `gguf` package's reader parses every vocabulary entry into numpy objects (seconds for a 152k vocabulary);
this reader walks the header with struct on an mmap, keeps scalars, strings and short arrays, and only counts
long arrays. It also checks that every tensor's bytes lie inside the file, so a truncated download is caught
here with a clear message instead of crashing llama.cpp.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from localchat.errors import ModelFileError


class GGUFValueType(IntEnum):
    """The value types of GGUF metadata (the GGUF spec; the same as the `gguf` package's, which is not imported
    here: it brings numpy, ~60 ms of every command's start)."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


MAGIC = b"GGUF"
SHORT_ARRAY = 64  # arrays up to this length are kept (per-layer head counts); longer ones only counted
DEFAULT_ALIGNMENT = 32
_SCALARS: dict[int, str] = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}


@dataclass(frozen=True)
class ArrayInfo:
    """A long metadata array, summarised (a vocabulary, merges, token types)."""

    element_type: str
    length: int


@dataclass(frozen=True)
class TensorBytes:
    """Tensor data by where llama.cpp places it when offloading: the repeating blocks go to the GPU layer by
    layer, the output matrix with the last "layer", the token embeddings stay in RAM."""

    blocks: int  # blk.N.* (all layers)
    embedding: int  # token_embd
    output: int  # output.weight; 0 when tied to the embeddings (llama.cpp then copies them for the GPU)
    other: int  # norms and the like
    per_block: tuple[int, ...] = ()  # blk.0, blk.1, ...: quant mixes such as Q4_K_M give layers more bits

    def __add__(self, other: TensorBytes) -> TensorBytes:  # split models: the parts' tensors together
        layers = max(len(self.per_block), len(other.per_block))
        padded = [p + (0,) * (layers - len(p)) for p in (self.per_block, other.per_block)]
        return TensorBytes(
            self.blocks + other.blocks,
            self.embedding + other.embedding,
            self.output + other.output,
            self.other + other.other,
            tuple(a + b for a, b in zip(*padded, strict=True)),
        )


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    file_size: int
    version: int
    tensor_count: int
    parameter_count: int
    metadata: dict[str, Any] = field(repr=False)
    tensor_bytes: TensorBytes = field(default_factory=lambda: TensorBytes(0, 0, 0, 0))

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def arch_get(self, suffix: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}", default)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def context_length(self) -> int | None:
        value = self.arch_get("context_length")
        return int(value) if value is not None else None

    @property
    def layer_count(self) -> int | None:
        value = self.arch_get("block_count")
        return int(value) if value is not None else None

    @property
    def quantization(self) -> str:
        file_type = self.metadata.get("general.file_type")
        if file_type is None:
            return "unknown"
        try:
            from gguf.constants import LlamaFileType  # only when a name is asked for (see GGUFValueType)

            return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            return f"type {file_type}"

    @property
    def chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) and template.strip() else None

    @property
    def license(self) -> str | None:
        value = self.metadata.get("general.license")
        return str(value) if value is not None else None


class _Cursor:
    def __init__(self, buffer: mmap.mmap | bytes, path: Path) -> None:
        self.buffer = buffer
        self.pos = 0
        self.path = path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buffer):
            raise _Truncated()
        (value,) = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("<Q")
        end = self.pos + length
        if end > len(self.buffer):
            raise _Truncated()
        raw = self.buffer[self.pos : end]
        self.pos = end
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.take("<Q")
        self.pos += length
        if self.pos > len(self.buffer):
            raise _Truncated()

    def value(self, value_type: int) -> Any:
        if value_type in _SCALARS:
            return self.take(_SCALARS[value_type])
        if value_type == GGUFValueType.STRING:
            return self.string()
        if value_type == GGUFValueType.ARRAY:
            element_type = self.take("<I")
            length = self.take("<Q")
            if length <= SHORT_ARRAY:
                return [self.value(element_type) for _ in range(length)]
            self.skip_array(element_type, length)
            return ArrayInfo(_type_name(element_type), length)
        raise _Invalid(f"unknown metadata value type {value_type}")

    def skip_array(self, element_type: int, length: int) -> None:
        if element_type in _SCALARS:
            self.pos += struct.calcsize(_SCALARS[element_type]) * length
            if self.pos > len(self.buffer):
                raise _Truncated()
        elif element_type == GGUFValueType.STRING:
            for _ in range(length):
                self.skip_string()
        else:
            for _ in range(length):
                self.value(element_type)


class _Truncated(Exception):
    pass


class _Invalid(Exception):
    pass


def _type_name(value_type: int) -> str:
    try:
        return GGUFValueType(value_type).name
    except ValueError:
        return str(value_type)


def _unreadable(path: Path) -> ModelFileError:
    return ModelFileError(f"cannot read {path}: permission denied — check the file's permissions")


def _check_path(path: Path) -> int:
    """The file's size, or a ModelFileError that names the problem and the fix."""
    try:
        status = path.stat()
    except PermissionError:
        raise _unreadable(path) from None
    except OSError:
        raise ModelFileError(
            f"model file not found: {path} — check the path (localchat run takes a .gguf file)"
        ) from None
    if stat.S_ISDIR(status.st_mode):
        raise ModelFileError(f"{path} is a directory, not a model file: give the path of a .gguf file inside it")
    if not os.access(path, os.R_OK):
        raise _unreadable(path)
    if status.st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes): download or copy the model again")
    return status.st_size


def read_gguf(path: str | os.PathLike[str]) -> GgufInfo:
    """Validate `path` as a GGUF file and return its metadata; raise ModelFileError otherwise."""
    path = Path(path)
    size = _check_path(path)
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            return _parse(buffer, path, size)
    except PermissionError:
        raise _unreadable(path) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _parse(buffer: mmap.mmap, path: Path, size: int) -> GgufInfo:
    head = bytes(buffer[:4])
    if head != MAGIC:
        if head[::-1] == MAGIC:
            raise ModelFileError(f"{path} is a big-endian GGUF, which llama.cpp cannot run on this machine")
        shown = head.decode("ascii", errors="replace")
        raise ModelFileError(
            f"{path} is not a GGUF model file (it starts with {shown!r}): download the .gguf file again"
        )
    cursor = _Cursor(buffer, path)
    cursor.pos = 4
    try:
        version = cursor.take("<I")
        if version not in (2, 3):
            raise _Invalid(f"GGUF version {version} is not supported (only 2 and 3)")
        tensor_count = cursor.take("<Q")
        kv_count = cursor.take("<Q")
        # Each entry takes at least 8 bytes: counts beyond that are corruption, not a real model.
        if tensor_count > size // 8 or kv_count > size // 8:
            raise _Invalid("its header counts are impossible")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            metadata[key] = cursor.value(cursor.take("<I"))
        alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
        # Block sizes of ggml's tensor types, imported only here (see GGUFValueType for why).
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        data_end = 0
        parameters = 0
        groups = {"blk": 0, "token_embd": 0, "output": 0, "other": 0}
        per_block: dict[int, int] = {}
        for _ in range(tensor_count):
            name = cursor.string()
            n_dims = cursor.take("<I")
            if n_dims > 8:
                raise _Invalid("a tensor has an impossible shape")
            elements = 1
            for _ in range(n_dims):
                elements *= cursor.take("<Q")
            tensor_type = cursor.take("<I")
            offset = cursor.take("<Q")
            try:
                block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(tensor_type)]
            except (ValueError, KeyError):
                raise _Invalid(f"a tensor has unknown type {tensor_type}") from None
            parameters += elements
            data_end = max(data_end, offset + elements // block * block_bytes)
            group = _tensor_group(name)
            groups[group] += elements // block * block_bytes
            if group == "blk":
                index = int(name.split(".", 2)[1]) if name.split(".", 2)[1].isdigit() else 0
                per_block[index] = per_block.get(index, 0) + elements // block * block_bytes
        data_start = -(-cursor.pos // alignment) * alignment
    except _Truncated:
        raise ModelFileError(
            f"{path} is truncated ({size} bytes, its header is cut off): download the model again"
        ) from None
    except _Invalid as exc:
        raise ModelFileError(f"{path} is not a valid GGUF file: {exc} — download the model again") from None
    if data_start + data_end > size:
        raise ModelFileError(
            f"{path} is truncated: {size} of {data_start + data_end} bytes present — download the model again"
        )
    layers = max(per_block, default=-1) + 1
    tensor_bytes = TensorBytes(
        groups["blk"],
        groups["token_embd"],
        groups["output"],
        groups["other"],
        tuple(per_block.get(i, 0) for i in range(layers)),
    )
    return GgufInfo(path, size, version, tensor_count, parameters, metadata, tensor_bytes)


def _tensor_group(name: str) -> str:
    if name.startswith("blk."):
        return "blk"
    if name.startswith("token_embd."):
        return "token_embd"
    return "output" if name == "output.weight" else "other"


def split_tensor_bytes(info: GgufInfo) -> TensorBytes:
    """Tensor bytes over all parts of a split model (`name-00001-of-00003.gguf`), from its first part."""
    count = int(info.get("split.count", 1) or 1)
    match = re.search(r"-00001-of-(\d{5})\.gguf$", info.path.name, re.IGNORECASE)
    total = info.tensor_bytes
    if count > 1 and match:
        for index in range(2, count + 1):
            part = info.path.with_name(info.path.name[: match.start()] + f"-{index:05d}-of-{match.group(1)}.gguf")
            total = total + read_gguf(part).tensor_bytes
    return total


# The model families whose own chat format is used for a file with no chat template (engine/templates.py holds
# the formats); ChatML for the rest, as llama.cpp does.
TEMPLATE_FAMILIES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma"}


def fallback_family(architecture: str) -> str:
    """The chat format a model without its own template is prompted in."""
    return TEMPLATE_FAMILIES.get(architecture, "chatml")


def shown_parameters(count: int) -> str:
    """A parameter count as model cards give it: 135M, 1.24B."""
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
