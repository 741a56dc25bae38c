"""A small curated catalog of the chat models people run locally in late 2026, so `localchat run qwen3.5:4b`
just works.

Each entry: the alias (Ollama's style), the Hub repo, its 4-bit file, its size class, the context it was trained
for, whether it thinks (writes its reasoning first, see localchat/reasoning.py), and why it is here. Repos and
file names are the GGUF builds their makers or the community's usual quantizers (bartowski, ggml-org, unsloth)
publish, as llama.cpp's own docs name them (its OpenVINO validation table and presets, late 2026) or their
model pages list them.
"""

from __future__ import annotations

from dataclasses import dataclass

from localchat.models.refs import HubRef


@dataclass(frozen=True)
class CatalogEntry:
    alias: str
    repo: str
    file: str  # the 4-bit file in `repo` (its quant is `quant`)
    quant: str
    parameters: str
    context: int  # tokens the model was trained for
    thinks: bool  # a thinking model: reasons before it answers (most can be switched off per chat)
    why: str

    @property
    def ref(self) -> HubRef:
        return HubRef(self.repo, self.quant)


def _entry(alias: str, repo: str, file: str, parameters: str, context: int, thinks: bool, why: str) -> CatalogEntry:
    return CatalogEntry(alias, repo, file, "Q4_K_M", parameters, context, thinks, why)


CATALOG: tuple[CatalogEntry, ...] = (
    _entry(
        "smollm2:135m",
        "unsloth/SmolLM2-135M-Instruct-GGUF",
        "SmolLM2-135M-Instruct-Q4_K_M.gguf",
        "135M",
        8192,
        False,
        "tiny and instant: for trying localchat out",
    ),
    _entry(
        "qwen3.5:0.8b",
        "bartowski/Qwen_Qwen3.5-0.8B-GGUF",
        "Qwen_Qwen3.5-0.8B-Q4_K_M.gguf",
        "0.8B",
        262144,
        True,
        "the best this small; runs on anything",
    ),
    _entry(
        "gemma3:1b",
        "ggml-org/gemma-3-1b-it-GGUF",
        "gemma-3-1b-it-Q4_K_M.gguf",
        "1B",
        32768,
        False,
        "Google's small Gemma 3; fluent and quick",
    ),
    _entry(
        "llama3.2:1b",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        "1B",
        131072,
        False,
        "Meta's smallest Llama; plain, dependable answers",
    ),
    _entry(
        "qwen3:1.7b",
        "bartowski/Qwen_Qwen3-1.7B-GGUF",
        "Qwen_Qwen3-1.7B-Q4_K_M.gguf",
        "1.7B",
        32768,
        True,
        "good at maths for its size",
    ),
    _entry(
        "qwen3.5:2b",
        "bartowski/Qwen_Qwen3.5-2B-GGUF",
        "Qwen_Qwen3.5-2B-Q4_K_M.gguf",
        "2B",
        262144,
        True,
        "strong multilingual chat and code on a laptop",
    ),
    _entry(
        "gemma4:e2b",
        "bartowski/google_gemma-4-E2B-it-GGUF",
        "google_gemma-4-E2B-it-Q4_K_M.gguf",
        "E2B",
        131072,
        True,
        "Google's on-device Gemma 4; thinks when asked",
    ),
    _entry(
        "llama3.2:3b",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        "3B",
        131072,
        False,
        "a dependable all-rounder",
    ),
    _entry(
        "smollm3:3b",
        "bartowski/HuggingFaceTB_SmolLM3-3B-GGUF",
        "SmolLM3-3B-Q4_K_M.gguf",
        "3B",
        65536,
        True,
        "fully open data and training; 6 languages",
    ),
    _entry(
        "phi4-mini:3.8b",
        "bartowski/microsoft_Phi-4-mini-instruct-GGUF",
        "microsoft_Phi-4-mini-instruct-Q4_K_M.gguf",
        "3.8B",
        131072,
        False,
        "Microsoft's Phi-4 mini; quick, good at maths",
    ),
    _entry(
        "qwen3:4b",
        "Qwen/Qwen3-4B-GGUF",
        "Qwen3-4B-Q4_K_M.gguf",
        "4B",
        32768,
        True,
        "Qwen's own build of Qwen3 4B",
    ),
    _entry(
        "qwen3.5:4b",
        "unsloth/Qwen3.5-4B-GGUF",
        "Qwen3.5-4B-Q4_K_M.gguf",
        "4B",
        262144,
        True,
        "the strongest under 5B here; thinks by default",
    ),
    _entry(
        "gemma3:4b",
        "ggml-org/gemma-3-4b-it-GGUF",
        "gemma-3-4b-it-Q4_K_M.gguf",
        "4B",
        131072,
        False,
        "natural writing, sees long documents",
    ),
    _entry(
        "gemma4:e4b",
        "bartowski/google_gemma-4-E4B-it-GGUF",
        "google_gemma-4-E4B-it-Q4_K_M.gguf",
        "E4B",
        131072,
        True,
        "Gemma 4's larger on-device model; ~6 GB",
    ),
    _entry(
        "deepseek-r1:7b",
        "bartowski/DeepSeek-R1-Distill-Qwen-7B-GGUF",
        "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf",
        "7B",
        131072,
        True,
        "DeepSeek-R1 in Qwen 7B: always reasons first",
    ),
    _entry(
        "qwen3:8b",
        "ggml-org/Qwen3-8B-GGUF",
        "Qwen3-8B-Q4_K_M.gguf",
        "8B",
        32768,
        True,
        "the strongest general model here; ~6 GB",
    ),
    _entry(
        "llama3.1:8b",
        "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
        "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
        "8B",
        131072,
        False,
        "broad knowledge, long context; ~6 GB",
    ),
)
_BY_ALIAS = {entry.alias: entry for entry in CATALOG}


def lookup(alias: str) -> CatalogEntry | None:
    return _BY_ALIAS.get(alias.strip().lower())
