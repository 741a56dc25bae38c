"""A download that survives Ctrl-C, crashes and dropped connections, and is verified before it counts.

huggingface_hub 2.x deletes its .incomplete file on failure and checks only the size. Here bytes go to a
persistent partial file named after the expected sha256; the next attempt hashes what is there and asks the
server for the rest with a Range request. Only a file whose sha256 matches the hub's LFS hash is moved (one
atomic rename) to its final place: a partial or corrupt file never shows up as a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localchat.errors import LocalchatError
from localchat.models.hub import is_transport_error

CHUNK = 1 << 20
DISK_MARGIN = 64 << 20  # leave some room on the disk beyond the file itself


class DownloadInterrupted(LocalchatError):
    pass


@dataclass(frozen=True)
class Transfer:
    url: str
    destination: Path
    size: int
    sha256: str | None
    headers: dict[str, str]


Progress = Callable[[int, int], None]  # (bytes so far, total)


def partial_path(partial_dir: Path, transfer: Transfer) -> Path:
    key = transfer.sha256 or hashlib.sha256(transfer.url.encode()).hexdigest()
    return partial_dir / f"{key}.part"


def check_disk_space(directory: Path, needed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if needed + DISK_MARGIN > free:
        raise LocalchatError(
            f"not enough disk space in {directory}: the download needs {needed / 1e9:.2f} GB more, "
            f"{free / 1e9:.2f} GB is free — free some space, then pull again (it resumes)"
        )


def _hash_existing(path: Path, digest: hashlib._Hash) -> int:
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size


def download(transfer: Transfer, partial_dir: Path, progress: Progress | None = None) -> Path:
    """Fetch `transfer` into its destination, resuming a previous partial file; verify; rename into place."""
    part = partial_path(partial_dir, transfer)
    partial_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    have = _hash_existing(part, digest) if part.exists() else 0
    if have > transfer.size:  # not ours, or the hub's file changed: start over
        part.unlink()
        digest, have = hashlib.sha256(), 0
    check_disk_space(partial_dir, transfer.size - have)
    if progress:
        progress(have, transfer.size)
    if have < transfer.size:
        have, digest = _fetch(transfer, part, have, digest, progress)
    if have != transfer.size:
        raise DownloadInterrupted(
            f"download of {transfer.destination.name} stopped at {have} of {transfer.size} bytes: "
            "run the same pull again to resume"
        )
    if transfer.sha256 and digest.hexdigest() != transfer.sha256:
        part.unlink()
        raise LocalchatError(
            f"checksum mismatch for {transfer.destination.name}: expected sha256 {transfer.sha256[:12]}…, "
            f"got {digest.hexdigest()[:12]}… — the bad file was removed; pull again"
        )
    transfer.destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, transfer.destination)
    return transfer.destination


def _fetch(
    transfer: Transfer, part: Path, have: int, digest: hashlib._Hash, progress: Progress | None
) -> tuple[int, hashlib._Hash]:
    headers = dict(transfer.headers)
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        from huggingface_hub.utils import get_session  # imported when a download starts (0.1 s of import)

        with get_session().stream("GET", transfer.url, headers=headers, follow_redirects=True) as response:
            if response.status_code == 416 and have:  # the server says we have it all already
                return have, digest
            if response.status_code >= 400:
                raise LocalchatError(f"the hub answered {response.status_code} for {transfer.destination.name}")
            if have and response.status_code != 206:  # no range support: start over from byte 0
                digest, have = hashlib.sha256(), 0
                mode = "wb"
            else:
                mode = "ab"
            with open(part, mode) as handle:
                for block in response.iter_bytes(CHUNK):
                    handle.write(block)
                    digest.update(block)
                    have += len(block)
                    if progress:
                        progress(have, transfer.size)
                    if have > transfer.size:
                        break
    except LocalchatError:
        raise
    except OSError as exc:
        if exc.errno in (28, 122):  # ENOSPC, EDQUOT: the partial file stays for a resume
            raise LocalchatError(
                f"disk full while downloading {transfer.destination.name} ({have} of {transfer.size} bytes "
                "kept): free some space, then pull again to resume"
            ) from None
        raise DownloadInterrupted(_interrupted(transfer, have)) from None
    except Exception as exc:
        if is_transport_error(exc):
            raise DownloadInterrupted(_interrupted(transfer, have)) from None
        raise
    return have, digest


def _interrupted(transfer: Transfer, have: int) -> str:
    return (
        f"download of {transfer.destination.name} was cut off at {have} of {transfer.size} bytes: "
        "run the same pull again to resume"
    )
