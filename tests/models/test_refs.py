import re

import pytest

from localchat.errors import LocalchatError
from localchat.models.catalog import CATALOG, lookup
from localchat.models.refs import (
    HubRef,
    check_repo_id,
    choose_quant,
    group_gguf_files,
    parse_hub_ref,
    quant_of,
    safe_hub_filename,
)


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"),
        ("Llama-3.2-3B-Instruct-IQ4_XS.gguf", "IQ4_XS"),
        ("model.Q4_0.gguf", "Q4_0"),
        ("SmolLM2-135M-Instruct-Q4_1.gguf", "Q4_1"),
        ("gemma-3-1b-it-BF16.gguf", "BF16"),
        ("sub/dir/model-Q8_0.gguf", "Q8_0"),
        ("README.md.gguf", None),
    ],
)
def test_quant_of(name: str, quant: str | None) -> None:
    assert quant_of(name) == quant


def test_parse_hub_refs() -> None:
    assert parse_hub_ref("bartowski/Qwen2.5-7B-Instruct-GGUF:q4_k_s") == HubRef(
        "bartowski/Qwen2.5-7B-Instruct-GGUF", "Q4_K_S"
    )
    assert parse_hub_ref("hf.co/ggml-org/gemma-3-1b-it-GGUF") == HubRef("ggml-org/gemma-3-1b-it-GGUF", None)
    assert parse_hub_ref("model.gguf") is None and parse_hub_ref("a/b/c") is None


def test_split_files_are_one_model_and_mmproj_is_ignored() -> None:
    groups = group_gguf_files(
        ["m-Q4_K_M-00002-of-00002.gguf", "m-Q4_K_M-00001-of-00002.gguf", "mmproj-m-F16.gguf", "m-Q8_0.gguf"]
    )
    assert set(groups) == {"Q4_K_M", "Q8_0"}
    assert groups["Q4_K_M"].files == ("m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf")


def test_choose_quant_default_fallback_and_errors() -> None:
    ref = HubRef("a/b")
    assert choose_quant(ref, ["x-Q4_K_M.gguf", "x-Q4_0.gguf"]).files.quant == "Q4_K_M"
    picked = choose_quant(ref, ["x-Q4_0.gguf", "x-IQ4_XS.gguf", "x-Q8_0.gguf"])
    assert picked.files.quant == "IQ4_XS" and "using IQ4_XS" in picked.note
    with pytest.raises(LocalchatError, match="no 4-bit GGUF; it has: F16, Q8_0"):
        choose_quant(ref, ["x-Q8_0.gguf", "x-F16.gguf"])
    with pytest.raises(LocalchatError, match="no Q5_K_M file; it has: Q4_0"):
        choose_quant(HubRef("a/b", "Q5_K_M"), ["x-Q4_0.gguf"])


@pytest.mark.parametrize("name", ["../x.gguf", "/etc/x.gguf", "a/../../x.gguf", "a\\x.gguf", "C:x.gguf", ""])
def test_unsafe_hub_filenames_are_refused(name: str) -> None:
    with pytest.raises(LocalchatError, match="refusing"):
        safe_hub_filename(name)


def test_catalog_covers_sizes_and_families() -> None:
    assert 10 <= len(CATALOG) <= 20
    families = {e.alias.split(":")[0].rstrip("0123456789.") for e in CATALOG}
    assert families >= {"qwen", "llama", "gemma", "phi4-mini", "smollm", "deepseek-r"}
    assert lookup("QWEN3.5:4B").repo == "unsloth/Qwen3.5-4B-GGUF"
    assert len({e.alias for e in CATALOG}) == len({e.repo for e in CATALOG}) == len(CATALOG)


def test_every_catalog_entry_names_a_real_looking_4_bit_file_and_says_what_it_is() -> None:
    thinking_families = {"qwen3", "qwen3.5", "smollm3", "gemma4", "deepseek-r1"}  # tests/data/templates
    for entry in CATALOG:
        assert re.fullmatch(r"[a-z0-9.-]+:[a-z0-9.]+", entry.alias) and len(entry.alias) <= 15, entry
        check_repo_id(entry.repo)
        assert entry.file.endswith(".gguf") and quant_of(entry.file) == entry.quant == "Q4_K_M", entry
        assert choose_quant(entry.ref, [entry.file, "x-Q8_0.gguf"]).files.files == (entry.file,)
        assert entry.why and len(entry.why) <= 50 and entry.context >= 8192  # one line in the catalog
        assert entry.thinks == (entry.alias.split(":")[0] in thinking_families), entry
