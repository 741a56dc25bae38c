"""Typed messages that workers post to the UI (they never touch widgets themselves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from localchat.chat.session import Budget
from localchat.engine.protocol import Done, ModelInfo
from localchat.models.library import LocalModel

if TYPE_CHECKING:
    from localchat.tui.screens.models import RemoteChoice


@dataclass
class ReplyStarted(Message):
    message_id: int
    prompt_tokens: int  # the prompt as sent: the counter's base while the reply streams


class ReplyPending(Message):
    """Reply text is waiting in the app's ReplyBuffer (posted once per frame, not once per delta)."""


@dataclass
class ReplyFinished(Message):
    done: Done | None
    error: str | None = None


@dataclass
class ModelLoading(Message):
    name: str
    fraction: float | None = None  # how far, once the engine says


@dataclass
class BudgetCounted(Message):
    budget: Budget
    draft: str
    serial: int  # ChatView.count_serial when the count began


@dataclass
class ModelLoaded(Message):
    info: ModelInfo | None
    name: str
    error: str | None = None
    model: LocalModel | None = None  # the library's entry (or an unregistered file) that was loaded
    stopped: bool = False  # the load was stopped (Esc) rather than failed
    remote: RemoteChoice | None = None  # a server's model was opened (info is its ModelInfo)
    ignored: tuple[str, ...] = ()  # sampling fields that server is not sent


@dataclass
class ServersListed(Message):
    """The named servers' models, asked in the background so the picker lists them at once."""

    served: dict[str, tuple[list[str], str | None]]
