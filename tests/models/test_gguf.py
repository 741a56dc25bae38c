import os
from pathlib import Path

import pytest

from localchat.errors import ModelFileError
from localchat.models.gguf import read_gguf


def test_reads_the_test_model(model_path: Path) -> None:
    info = read_gguf(model_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192 and info.layer_count == 30
    assert info.parameter_count == 134_515_008  # what llama.cpp reports for this file
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.license == "apache-2.0"
    assert info.get("tokenizer.ggml.tokens").length == 49152  # long arrays are only counted


def bad_files(tmp: Path, model: Path) -> dict[str, tuple[Path, str]]:
    data = model.read_bytes()
    files = {
        "random": (os.urandom(4096), "not a GGUF model file"),
        "html": (b"<!DOCTYPE html><html><body>Not found</body></html>", "not a GGUF model file"),
        "empty": (b"", "is empty"),
        "header-cut": (data[:100_000], "truncated"),
        "data-cut": (data[: len(data) // 2], "truncated"),
        "bad-version": (b"GGUF" + (99).to_bytes(4, "little") + data[8:4096], "version 99"),
    }
    result = {}
    for name, (content, message) in files.items():
        path = tmp / f"{name}.gguf"
        path.write_bytes(content)
        result[name] = (path, message)
    result["missing"] = (tmp / "nope.gguf", "not found")
    result["directory"] = (tmp, "is a directory")
    return result


@pytest.mark.parametrize(
    "case", ["random", "html", "empty", "header-cut", "data-cut", "bad-version", "missing", "directory"]
)
def test_bad_files_name_the_problem(case: str, tmp_path: Path, model_path: Path) -> None:
    path, message = bad_files(tmp_path, model_path)[case]
    with pytest.raises(ModelFileError) as error:
        read_gguf(path)
    assert message in error.value.message and str(path) in error.value.message
    assert "\n" not in error.value.message
