"""The one root of every error a user may see.

A `LocalchatError` carries a one-line message that names the thing and says what to do; the CLI prints it to
stderr and exits with code 2, never with a traceback.
"""

from __future__ import annotations


class LocalchatError(Exception):
    """A problem the user can fix; `message` is shown as is."""

    exit_code = 2

    def __init__(self, message: str, title: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.title = title


class InvalidSetting(LocalchatError):
    """A setting (flag, config key, sampling field) is outside its allowed values."""


class ModelFileError(LocalchatError):
    """A model file is missing, unreadable or not a valid GGUF."""


class ContextOverflow(LocalchatError):
    """What must be kept does not fit in the context window."""

    def __init__(self, needed: int, n_ctx: int) -> None:
        self.needed = needed
        self.n_ctx = n_ctx
        self.over_by = needed - n_ctx
        super().__init__(
            f"the prompt needs {needed} tokens but the context window is {n_ctx}: "
            f"{self.over_by} tokens too many — shorten the prompt, lower --max-tokens or raise --ctx"
        )


class EngineError(LocalchatError):
    """The inference engine failed or crashed."""


class DraftRefused(EngineError):
    """A draft model that cannot guess tokens for the loaded one (another vocabulary: engine/draft.py)."""


class TemplateRefused(EngineError):
    """The model's chat template raised on a conversation (its own `raise_exception`, or a bug in it)."""


class LoadCancelled(LocalchatError):
    """A model load was stopped (Esc, Ctrl-C) before it finished; the engine holds no model."""
