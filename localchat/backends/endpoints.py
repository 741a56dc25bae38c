"""Servers the user named: `[endpoints.NAME]` in config.toml (url, api_key_env, models), or a URL given as is."""

from __future__ import annotations

import os
from dataclasses import dataclass

from localchat.backends.remote import Endpoint, RemoteBackend, RemoteError, endpoint_from
from localchat.config import load_settings

LIST_TIMEOUT_S = 3.0  # `localchat list` asks every named server: one that is down must not hold it up


@dataclass(frozen=True)
class NamedEndpoint:
    name: str
    endpoint: Endpoint
    models: tuple[str, ...] = ()  # from the file: listed without asking the server
    ctx: int = 0  # the server's context size, from the file (for servers that do not say it)


def named_endpoints() -> list[NamedEndpoint]:
    found = []
    for name, table in load_settings().get("endpoints", {}).items():
        key = os.environ.get(str(table.get("api_key_env", "OPENAI_API_KEY"))) or None
        url = str(table["url"]).rstrip("/")
        models = tuple(table.get("models", ()))
        found.append(NamedEndpoint(name, Endpoint(url, key), models, int(table.get("ctx", 0))))
    return found


def resolve_endpoint(name_or_url: str) -> Endpoint:
    """A configured endpoint by its name, else the URL itself (its key from $OPENAI_API_KEY)."""
    for named in named_endpoints():
        if named.name == name_or_url:
            return named.endpoint
    if "://" not in name_or_url:
        names = ", ".join(n.name for n in named_endpoints()) or "none in config.toml"
        raise RemoteError(f"no endpoint named {name_or_url!r} (named: {names}): give its URL, e.g. http://host:8080/v1")
    return endpoint_from(name_or_url)


Served = tuple[list[str], str | None]  # a server's models, and why they could not be read (None: they could)


def served_models(named: NamedEndpoint) -> Served:
    """The endpoint's models (the file's list, else the server's) and why they could not be read, if so."""
    if named.models:
        return list(named.models), None
    try:
        return RemoteBackend(named.endpoint, "", timeout=LIST_TIMEOUT_S).models(), None
    except RemoteError as exc:
        return [], exc.message


def open_remote(name_or_url: str, model: str) -> RemoteBackend:
    """A server's model, opened (RemoteBackend.open): reachable, served, its context size known where said."""
    named = next((n for n in named_endpoints() if n.name == name_or_url), None)
    endpoint = named.endpoint if named is not None else resolve_endpoint(name_or_url)
    backend = RemoteBackend(endpoint, model, label=name_or_url)
    backend.open(named.ctx if named is not None else 0)
    return backend
