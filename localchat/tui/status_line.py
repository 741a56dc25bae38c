"""The line under the composer: the model (loading, loaded, and whether the open chat's replies think) and the
context counter."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from localchat.engine.protocol import ModelInfo
from localchat.text import inert
from localchat.tui.widgets import ContextCounter


def model_line(info: ModelInfo, name: str, thinking_on: bool) -> str:
    if info.architecture == "remote":  # a server's model (backends/remote.py): its name says which server
        return f"{inert(name)} · on the server · ctx {f'{info.n_ctx:,}' if info.n_ctx else 'unknown'}"
    line = f"{inert(name)} · {inert(info.quantization)} · ctx {info.n_ctx:,} · {info.threads} threads"
    if info.gpu_layers or info.offload_note:
        line += f" · {inert(info.offload_text)}"
    if info.draft:
        line += f" · draft {inert(info.draft)}"
    switched = "on" if thinking_on else "off"
    thinking = {"switch": switched, "soft": switched, "always": "always"}.get(info.thinking)
    return line + (f" · thinking {thinking}" if thinking else "")


class StatusLine(Horizontal):
    def compose(self) -> ComposeResult:
        yield Label("no model", id="model-name", markup=False)
        yield ContextCounter("", id="counter", markup=False)

    @property
    def counter(self) -> ContextCounter:
        return self.query_one(ContextCounter)

    def show_loading(self, name: str, fraction: float | None) -> None:
        """While a model loads (Esc stops it), with how far it has come once the engine says."""
        done = f" {fraction:.0%}" if fraction is not None else ""
        self.query_one("#model-name", Label).update(f"loading {inert(name)}…{done} (esc: stop)")

    def show_model(self, info: ModelInfo | None, name: str, thinking_on: bool = False) -> None:
        self.query_one("#model-name", Label).update(model_line(info, name, thinking_on) if info else "no model")
