"""Sampling settings and context size for a conversation, and the system prompt library."""

from __future__ import annotations

from dataclasses import asdict

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, TextArea
from textual.widgets.option_list import Option

from localchat.chat.sampling import PRESETS, RANGES, SamplingParams, shown_number
from localchat.errors import InvalidSetting
from localchat.store.db import Store
from localchat.text import inert

FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed")


class SettingsScreen(ModalScreen[tuple[SamplingParams, int | None, bool] | None]):
    """Values are checked on save; a bad one names the field and its range, and nothing is saved.
    Ctrl+S saves for this chat; Ctrl+D also makes them the default for new chats."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", priority=True),
        Binding("ctrl+s", "save", "Save", id="settings.save"),
        Binding("ctrl+d", "save(True)", "Save as default", id="settings.save_default"),
    ]

    def __init__(self, sampling: SamplingParams, n_ctx: int | None) -> None:
        super().__init__()
        self.sampling = sampling
        self.n_ctx = n_ctx

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label("Sampling for this chat, from the next reply on. Ctrl+S saves, Ctrl+D saves as the default.")
            yield Select([(name, name) for name in PRESETS], prompt="preset…", id="preset")
            for name in FIELDS:
                low, high = RANGES[name]
                value = getattr(self.sampling, name)
                with Horizontal(classes="field"):
                    yield Label(f"{name} [{shown_number(low)}–{shown_number(high)}]")
                    yield Input("" if value is None else str(value), id=name)
            with Horizontal(classes="field"):
                yield Label("context size (tokens; empty = model default)")
                yield Input("" if self.n_ctx is None else str(self.n_ctx), id="n_ctx")
            yield Label("", id="settings-error", classes="error", markup=False)
            yield Button("Save", variant="primary", id="save")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value in PRESETS:
            for name, value in asdict(PRESETS[event.value]).items():
                self.query_one(f"#{name}", Input).value = "" if value is None else str(value)

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.action_save()

    def action_save(self, as_default: bool = False) -> None:
        values: dict[str, float | int | None] = {}
        try:
            for name in FIELDS:
                text = self.query_one(f"#{name}", Input).value.strip()
                if not text:
                    values[name] = None
                    continue
                number = float(text)
                values[name] = (
                    int(number) if name in ("top_k", "max_tokens", "seed") and number.is_integer() else number
                )
            sampling = SamplingParams(**values)
            ctx_text = self.query_one("#n_ctx", Input).value.strip()
            n_ctx = int(ctx_text) if ctx_text else None
            if n_ctx is not None and not 256 <= n_ctx <= 1_048_576:
                raise InvalidSetting(f"context size must be between 256 and 1048576 (got {n_ctx})")
        except ValueError as exc:
            self.query_one("#settings-error", Label).update(f"not a number: {exc}")
            return
        except InvalidSetting as exc:
            self.query_one("#settings-error", Label).update(exc.message)
            return
        self.dismiss((sampling, n_ctx, as_default))


class PromptsScreen(ModalScreen[str | None]):
    """Named system prompts: pick one for this conversation (Enter), save (ctrl+s), delete, make default."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", priority=True),
        Binding("ctrl+s", "save", "Save prompt", id="prompts.save"),
        Binding("ctrl+d", "delete", "Delete prompt", id="prompts.delete"),
        Binding("ctrl+t", "make_default", "Default for new chats", id="prompts.default"),
    ]

    def __init__(self, store: Store, current: str | None) -> None:
        super().__init__()
        self.store = store
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("System prompts · Enter: use for this chat · ctrl+s save · ctrl+d delete · ctrl+t default")
            yield OptionList(id="prompt-list")
            yield Input(placeholder="name", id="prompt-name")
            yield TextArea(self.current or "", id="prompt-text")
            yield Label("", id="prompt-status", markup=False)

    def on_mount(self) -> None:
        self.refresh_list()

    def refresh_list(self) -> None:
        default = self.store.setting("default_prompt")
        options = [
            Option(Text(inert(name) + ("  (default)" if name == default else "")), id=name)
            for name, _ in self.store.prompts()
        ]
        option_list = self.query_one("#prompt-list", OptionList)
        option_list.clear_options()
        option_list.add_options([Option("(none)", id=""), *options])

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        prompts = dict(self.store.prompts())
        name = event.option.id or ""
        self.query_one("#prompt-name", Input).value = name
        self.query_one("#prompt-text", TextArea).text = prompts.get(name, "")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(dict(self.store.prompts()).get(event.option.id or "", ""))

    def action_save(self, as_default: bool = False) -> None:
        name = self.query_one("#prompt-name", Input).value.strip()
        if not name:
            self.query_one("#prompt-status", Label).update("give the prompt a name first")
            return
        self.store.save_prompt(name, self.query_one("#prompt-text", TextArea).text)
        self.query_one("#prompt-status", Label).update(f"saved {inert(name)}")
        self.refresh_list()

    def action_delete(self) -> None:
        name = self.query_one("#prompt-name", Input).value.strip()
        self.store.delete_prompt(name)
        self.refresh_list()

    def action_make_default(self) -> None:
        name = self.query_one("#prompt-name", Input).value.strip()
        self.store.set_setting("default_prompt", name or None)
        self.refresh_list()
