"""Sampling parameters: one validated value type, and named presets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from localchat.errors import InvalidSetting

# field -> (lowest, highest) allowed, inclusive. Bounds are llama.cpp's meaningful ranges, with headroom.
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 1000),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.5, 2.0),
    "max_tokens": (1, 1_000_000),
    "seed": (0, 2**32 - 2),  # 2**32 - 1 is llama.cpp's "random seed" marker
}
INTEGER_FIELDS = {"top_k", "max_tokens", "seed"}
PENALTY_LAST_N = 64  # the repeat penalty looks back on this many tokens (llama.cpp's chain and chat/distribution)


def shown_number(value: float) -> str:
    """A bound as people write it: 1,000,000 (not 1e+06), 0.5, 5."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def parse_number(text: str) -> int | float:
    """A setting typed as text: a whole number where it is one, else a decimal (ValueError for neither)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _range(name: str) -> str:
    low, high = RANGES[name]
    return f"{shown_number(low)} and {shown_number(high)}"


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. temperature 0 means greedy; seed None means a fresh random seed."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if value is None and name == "seed":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidSetting(f"{name} must be a number between {_range(name)} (got {value!r})")
            if name in INTEGER_FIELDS and not float(value).is_integer():
                raise InvalidSetting(f"{name} must be a whole number between {_range(name)} (got {value!r})")
            if math.isnan(value) or not low <= value <= high:
                raise InvalidSetting(f"{name} must be between {_range(name)} (got {value!r})")

    @property
    def greedy(self) -> bool:
        """Always the likeliest token: llama.cpp's convention for a temperature of 0 (or below)."""
        return self.temperature <= 0

    def with_overrides(self, **overrides: Any) -> SamplingParams:
        """A copy with the given fields replaced; None values mean "keep" (so unset CLI flags pass through)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise InvalidSetting(f"unknown sampling setting {sorted(unknown)[0]!r} (known: {', '.join(sorted(known))})")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One short line: "greedy" or "temp 0.7, top-p 0.95, top-k 40, min-p 0.05" (+ penalty, seed when set)."""
        if self.greedy:
            parts = ["greedy"]
        else:
            parts = [f"temp {self.temperature:g}", f"top-p {self.top_p:g}", f"top-k {self.top_k}"]
            parts.append(f"min-p {self.min_p:g}")
        if self.repeat_penalty != 1.0:
            parts.append(f"repeat {self.repeat_penalty:g}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return ", ".join(parts)


PRESETS: dict[str, SamplingParams] = {
    # Deterministic-leaning: facts, code, extraction.
    "precise": SamplingParams(temperature=0.2, top_p=0.9, top_k=20, min_p=0.1, repeat_penalty=1.05),
    # llama.cpp / Ollama-like defaults for everyday chat.
    "balanced": SamplingParams(),
    # More varied wording for brainstorming and fiction.
    "creative": SamplingParams(temperature=1.0, top_p=0.98, top_k=100, min_p=0.02, repeat_penalty=1.1),
}
DEFAULT_PRESET = "balanced"


def preset(name: str) -> SamplingParams:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidSetting(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def from_settings(section: Mapping[str, Any]) -> SamplingParams:
    """The configured default: a preset (balanced unless named), then the settings file's [sampling] values."""
    values = dict(section)
    base = preset(str(values.pop("preset", DEFAULT_PRESET)))
    try:
        return base.with_overrides(**values)
    except InvalidSetting as exc:
        raise InvalidSetting(f"settings: sampling.{exc.message}") from None
