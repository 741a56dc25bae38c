"""Model references and quant choice (pure).

A reference is one of: a path to a .gguf file; a catalog alias (`smollm2:135m`); or a Hugging Face repo with an
optional quant, `user/repo[:QUANT]` (llama.cpp's `-hf` form; `hf.co/user/repo:QUANT` as Ollama writes it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from localchat.errors import LocalchatError

DEFAULT_QUANT = "Q4_K_M"
# The 4-bit quants we pick when Q4_K_M is absent, best first (k-quants, then i-quants, then legacy).
FOUR_BIT_PREFERENCE = ("Q4_K_M", "Q4_K_S", "Q4_K_L", "IQ4_XS", "IQ4_NL", "Q4_0", "Q4_1", "Q4_K")
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?|TQ\d_\d)(?=[-.]|$)", re.IGNORECASE
)
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# The hub's own rules for a repo id (huggingface_hub's validate_repo_id), checked here so that a bad reference
# is one line naming it, not that library's traceback.
_REPO_PART = re.compile(r"^(?![-.])[\w.-]{1,96}(?<![-.])$")
_REPO = re.compile(r"^(?:(?:https?://)?(?:hf\.co|huggingface\.co)/)?([\w.-]+/[\w.-]+?)(?::([\w.-]+))?$")


@dataclass(frozen=True)
class HubRef:
    repo: str
    quant: str | None = None  # None: choose (Q4_K_M, else the best 4-bit)

    def __str__(self) -> str:
        return f"{self.repo}:{self.quant}" if self.quant else self.repo


def parse_hub_ref(text: str) -> HubRef | None:
    """`user/repo[:QUANT]`, `hf.co/user/repo[:QUANT]`; None when `text` is not of that form."""
    match = _REPO.match(text.strip())
    if not match:
        return None
    check_repo_id(match.group(1))
    return HubRef(match.group(1), match.group(2).upper() if match.group(2) else None)


def check_repo_id(repo: str) -> None:
    """Refuse what the hub would refuse, in one line that names the reference and the rule."""
    rule = (
        "each of its two parts is 1–96 letters, digits, '-', '_' or '.', not starting or ending with '-' or '.', "
        "without '--' or '..', and the name does not end in '.git'"
    )
    parts = repo.split("/")
    valid = len(parts) == 2 and all(_REPO_PART.match(p) for p in parts)
    if not valid or "--" in repo or ".." in repo or repo.endswith(".git"):
        raise LocalchatError(f"{repo!r} is not a valid hub repo id: {rule}")


@dataclass(frozen=True)
class GgufFileSet:
    """One model in a repo: a single .gguf, or every part of a split one (first part first)."""

    quant: str
    files: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.files[0]


def quant_of(filename: str) -> str | None:
    name = filename.rsplit("/", 1)[-1]
    name = _SPLIT.sub(".gguf", name)
    matches = _QUANT.findall(name.removesuffix(".gguf"))
    return matches[-1].upper() if matches else None


def group_gguf_files(filenames: Iterable[str]) -> dict[str, GgufFileSet]:
    """The repo's .gguf files by quant, split parts joined; projector files (mmproj) left out."""
    groups: dict[str, list[str]] = {}
    for name in sorted(filenames):
        base = name.rsplit("/", 1)[-1].lower()
        if not base.endswith(".gguf") or "mmproj" in base:
            continue
        quant = quant_of(name)
        if quant:
            groups.setdefault(quant, []).append(name)
    result = {}
    for quant, names in groups.items():
        split = [n for n in names if _SPLIT.search(n)]
        whole = [n for n in names if not _SPLIT.search(n)]
        # A repo may hold one quant as a single file and as parts; prefer the single file.
        chosen = whole[:1] if whole else split
        result[quant] = GgufFileSet(quant, tuple(chosen))
    return result


@dataclass(frozen=True)
class QuantChoice:
    files: GgufFileSet
    note: str | None  # said to the user when we picked something other than what they asked for


def choose_quant(ref: HubRef, filenames: Iterable[str]) -> QuantChoice:
    groups = group_gguf_files(filenames)
    available = ", ".join(sorted(groups)) or "none"
    if not groups:
        raise LocalchatError(f"{ref.repo} has no GGUF files: localchat runs GGUF models (search: localchat search)")
    if ref.quant:
        if ref.quant in groups:
            return QuantChoice(groups[ref.quant], None)
        raise LocalchatError(f"{ref.repo} has no {ref.quant} file; it has: {available}")
    if DEFAULT_QUANT in groups:
        return QuantChoice(groups[DEFAULT_QUANT], None)
    for quant in FOUR_BIT_PREFERENCE:
        if quant in groups:
            return QuantChoice(groups[quant], f"{ref.repo} has no {DEFAULT_QUANT}; using {quant}, its best 4-bit file")
    raise LocalchatError(f"{ref.repo} has no 4-bit GGUF; it has: {available} — name one with {ref.repo}:QUANT")


def safe_hub_filename(name: str) -> str:
    """Refuse hub file names that could escape the models folder (absolute, '..', backslashes)."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or ":" in name:
        raise LocalchatError(f"refusing the hub file name {name!r}: it is not a plain relative path")
    return name
