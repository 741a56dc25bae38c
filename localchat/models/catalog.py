"""A small curated catalog of good chat models, so `localchat run qwen2.5:1.5b` just works.

Each entry: the alias, the Hub repo and 4-bit quant, its size class, and why it is here. Repos are the GGUF
builds their makers (or bartowski/ggml-org, the community's usual sources) publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from localchat.models.refs import HubRef


@dataclass(frozen=True)
class CatalogEntry:
    alias: str
    repo: str
    quant: str
    parameters: str
    why: str

    @property
    def ref(self) -> HubRef:
        return HubRef(self.repo, self.quant)


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "smollm2:135m",
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "Q4_K_M",
        "135M",
        "tiny and instant; for trying localchat out, not for real questions",
    ),
    CatalogEntry(
        "qwen2.5:0.5b",
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        "Q4_K_M",
        "0.5B",
        "the best chat model this small; runs on anything",
    ),
    CatalogEntry(
        "smollm2:1.7b",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
        "Q4_K_M",
        "1.7B",
        "fully open data and training; good small English assistant",
    ),
    CatalogEntry(
        "qwen2.5:1.5b",
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "Q4_K_M",
        "1.5B",
        "strong multilingual chat and code for its size; fast on laptops",
    ),
    CatalogEntry(
        "gemma3:1b",
        "ggml-org/gemma-3-1b-it-GGUF",
        "Q4_K_M",
        "1B",
        "Google's small Gemma 3; fluent, 32k context",
    ),
    CatalogEntry(
        "llama3.2:3b",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        "Q4_K_M",
        "3B",
        "Meta's Llama 3.2 3B; a dependable all-rounder with 128k context",
    ),
    CatalogEntry(
        "phi3.5:3.8b",
        "bartowski/Phi-3.5-mini-instruct-GGUF",
        "Q4_K_M",
        "3.8B",
        "Microsoft's Phi-3.5 mini; good at reasoning and maths for its size",
    ),
    CatalogEntry(
        "qwen2.5:7b",
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "Q4_K_M",
        "7B",
        "the strongest general model here; wants ~6 GB of memory",
    ),
    CatalogEntry(
        "llama3.1:8b",
        "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
        "Q4_K_M",
        "8B",
        "Meta's Llama 3.1 8B; broad knowledge, long context, ~6 GB",
    ),
)
_BY_ALIAS = {entry.alias: entry for entry in CATALOG}


def lookup(alias: str) -> CatalogEntry | None:
    return _BY_ALIAS.get(alias.strip().lower())
