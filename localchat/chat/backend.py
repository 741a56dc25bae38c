"""What the chat layer needs from whatever runs the model: the local engine's client (engine/client.py) or a
server (backends/remote.py). Both stream a reply as `Delta`s then one `Done`, stop at once, and count tokens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from localchat.engine.protocol import ChatMessage, ConversationTokens, Delta, Done, Generate, ModelInfo


class ChatBackend(Protocol):
    model: ModelInfo | None  # None until a model is loaded (or a server's model opened)
    exact_counts: bool  # False: `measure` estimates (the counter says "≈")

    def generate(self, request: Generate, *, reset_cancel: bool = True) -> Iterator[Delta | Done]: ...

    def measure(self, messages: Sequence[ChatMessage], thinking: bool | None = None) -> ConversationTokens: ...

    def cancel(self) -> None: ...

    def reset_cancel(self) -> None: ...
