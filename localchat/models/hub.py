"""The Hugging Face Hub through huggingface_hub: repo listings with LFS hashes, search, URLs and auth headers.

Every hub failure becomes a one-line LocalchatError that says what to do. The endpoint comes from HF_ENDPOINT
(tests point it at a fake hub on 127.0.0.1); tokens from HF_TOKEN or `hf auth login`, as for every HF tool.
huggingface_hub's shared HTTP client has no timeout: a hub that goes silent with the connection open would hang
us for ever, so every call here gives up after HF_HUB_DOWNLOAD_TIMEOUT seconds of silence (default 30).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from localchat.errors import LocalchatError
from localchat.models.refs import group_gguf_files

T = TypeVar("T")


class HubUnreachable(LocalchatError):
    """Offline (HF_HUB_OFFLINE) or no network: callers add what is available locally."""


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int
    sha256: str | None  # the LFS object's sha256; None for small non-LFS files


@dataclass(frozen=True)
class SearchResult:
    repo: str
    downloads: int
    four_bit: tuple[str, ...]  # 4-bit quants the repo offers


DEFAULT_SILENCE_S = 30.0


def silence_limit() -> float:
    """Seconds without a byte from the hub before a call or a download gives up (HF_HUB_DOWNLOAD_TIMEOUT)."""
    text = os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_SILENCE_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise LocalchatError(f"HF_HUB_DOWNLOAD_TIMEOUT={text!r} is not a number of seconds between 0 and 3600")
    return seconds


def session():  # -> huggingface_hub's shared httpx client, with our timeouts
    from huggingface_hub.utils import get_session

    client = get_session()
    limit = silence_limit()
    client.timeout = type(client.timeout)(limit, connect=min(limit, 10.0))  # httpx's Timeout, by its own class
    return client


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def hub_errors(repo: str) -> Iterator[None]:
    if offline():
        raise HubUnreachable(f"offline (HF_HUB_OFFLINE is set): cannot reach the hub for {repo}")
    # Imported when the hub is used: huggingface_hub takes ~0.13 s to import, more than `localchat list` may.
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    session()  # timeouts on the shared client before any call
    try:
        yield
    except GatedRepoError:
        raise LocalchatError(
            f"{repo} is gated: accept its terms on its hub page, then log in (hf auth login) or set HF_TOKEN"
        ) from None
    except RepositoryNotFoundError:
        raise LocalchatError(
            f"no repo {repo} on the hub (or it is private): check the name, or search with localchat search"
        ) from None
    except RevisionNotFoundError:
        raise LocalchatError(f"{repo}: no such revision on the hub") from None
    except EntryNotFoundError:
        raise LocalchatError(f"{repo}: the file is not on the hub (any more): try the pull again") from None
    except OfflineModeIsEnabled:
        raise HubUnreachable(f"offline (HF_HUB_OFFLINE is set): cannot reach the hub for {repo}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise LocalchatError(f"the hub answered {status} for {repo}: try again later") from None
    except OSError as exc:  # connection refused, DNS, timeouts (httpx errors derive from neither: see below)
        raise HubUnreachable(f"cannot reach the hub ({exc.__class__.__name__}) for {repo}") from None
    except Exception as exc:
        if is_transport_error(exc):
            raise HubUnreachable(f"cannot reach the hub ({exc.__class__.__name__}) for {repo}") from None
        raise


def is_transport_error(exc: BaseException) -> bool:
    """Connection, timeout and broken-stream errors of huggingface_hub's HTTP client (an httpx fork), matched by
    class name so that we need not import that library by its changing name."""
    return bool(_class_names(exc) & {"TransportError", "TimeoutException", "NetworkError", "StreamError", "HTTPError"})


def is_timeout(exc: BaseException) -> bool:
    """The hub went silent for longer than `silence_limit()` (a connect, read or pool timeout)."""
    return "TimeoutException" in _class_names(exc)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _call(repo: str, fn: Callable[[], T]) -> T:
    with hub_errors(repo):
        return fn()


def repo_files(repo: str) -> list[HubFile]:
    from huggingface_hub import HfApi

    info = _call(repo, lambda: HfApi().model_info(repo, files_metadata=True))
    files = []
    for sibling in info.siblings or []:
        sha = sibling.lfs.sha256 if sibling.lfs else None
        size = sibling.lfs.size if sibling.lfs else (sibling.size or 0)
        files.append(HubFile(sibling.rfilename, size, sha))
    return files


def file_url(repo: str, filename: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, filename)


def auth_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers()


def search(query: str, limit: int = 20) -> list[SearchResult]:
    from huggingface_hub import HfApi

    def run() -> list[SearchResult]:
        results = []
        models = HfApi().list_models(search=query, filter="gguf", sort="downloads", limit=limit, full=True)
        for model in models:
            names = [s.rfilename for s in model.siblings or []]
            four_bit = tuple(q for q in sorted(group_gguf_files(names)) if "4" in q.split("_")[0])
            results.append(SearchResult(model.id, model.downloads or 0, four_bit))
        return results

    return _call(f"search {query!r}", run)
