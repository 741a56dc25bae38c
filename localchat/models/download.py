"""A download that survives Ctrl-C, crashes and dropped connections, and is verified before it counts.

huggingface_hub 2.x deletes its .incomplete file on failure and checks only the size. Here bytes go to a
persistent partial file named after the expected sha256; the next attempt hashes what is there and asks the
server for the rest with a Range request. Only a file whose sha256 matches the hub's LFS hash is moved (one
atomic rename) to its final place: a partial or corrupt file never shows up as a model. A lock on the partial
file keeps two pulls of one file (two terminals, the app and the CLI) from appending to it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localchat.errors import LocalchatError
from localchat.models.hub import is_timeout, is_transport_error, session, silence_limit

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


def bytes_still_needed(transfers: list[Transfer], partial_dir: Path) -> int:
    """What the files not yet downloaded will take, less what their partial files hold already."""
    needed = 0
    for transfer in transfers:
        part = partial_path(partial_dir, transfer)
        have = part.stat().st_size if part.exists() else 0
        needed += max(transfer.size - have, 0)
    return needed


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


@contextmanager
def exclusive(part: Path, name: str) -> Iterator[None]:
    """Hold the partial file's lock (released by the OS if the process dies) or say who has it."""
    with open(part.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalchatError(
                f"{name} is being downloaded by another localchat right now: wait for it to finish, or stop it "
                "and pull again (it resumes)"
            ) from None
        yield


def download(transfer: Transfer, partial_dir: Path, progress: Progress | None = None) -> Path:
    """Fetch `transfer` into its destination, resuming a previous partial file; verify; rename into place."""
    part = partial_path(partial_dir, transfer)
    partial_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(part, transfer.destination.name):
        path = _download(transfer, part, partial_dir, progress)
        part.with_suffix(".lock").unlink(missing_ok=True)
        return path


def _download(transfer: Transfer, part: Path, partial_dir: Path, progress: Progress | None) -> Path:
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
        with session().stream("GET", transfer.url, headers=headers, follow_redirects=True) as response:
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
        if is_timeout(exc):
            raise DownloadInterrupted(
                f"the hub sent nothing for {silence_limit():g} s while downloading {transfer.destination.name} "
                f"({have} of {transfer.size} bytes kept): run the same pull again to resume "
                "(HF_HUB_DOWNLOAD_TIMEOUT sets the wait)"
            ) from None
        if is_transport_error(exc):
            raise DownloadInterrupted(_interrupted(transfer, have)) from None
        raise
    return have, digest


def _interrupted(transfer: Transfer, have: int) -> str:
    return (
        f"download of {transfer.destination.name} was cut off at {have} of {transfer.size} bytes: "
        "run the same pull again to resume"
    )
