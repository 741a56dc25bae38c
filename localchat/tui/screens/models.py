"""Choosing a model: the picker (local models with their fit, then the models of the servers named in
config.toml) and the catalog (pull, remove)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, ProgressBar
from textual.widgets.option_list import Option

from localchat.backends.endpoints import NamedEndpoint, Served, served_models
from localchat.errors import LocalchatError
from localchat.models.catalog import CATALOG, CatalogEntry
from localchat.models.gguf import shown_parameters
from localchat.models.library import Library, LocalModel
from localchat.models.manager import machine_fit, plan_pull, run_pull
from localchat.text import inert


@dataclass(frozen=True)
class Choice:
    name: str
    model: LocalModel


@dataclass(frozen=True)
class RemoteChoice:
    endpoint: str  # its name in config.toml
    model: str  # the server's name for it

    @property
    def name(self) -> str:
        return f"{self.model} @ {self.endpoint}"


def describe(library: Library, model: LocalModel) -> str:
    try:
        summary = library.summary(model)
    except LocalchatError as exc:
        return f"{model.alias or model.name}  —  {exc.message}"
    fit = machine_fit(summary, min(summary.context_length or 4096, 4096)).fit
    params = summary.parameters
    size = model.size_bytes
    return (
        f"{model.alias or model.name}  ·  {shown_parameters(params)}  ·  {summary.quantization}  ·  "
        f"{size / 1e9:.2f} GB  ·  ctx {summary.context_length}  ·  {fit.verdict}"
    )


class ModelPicker(ModalScreen[Choice | RemoteChoice | None]):
    """Local models: name, parameters, quant, size, context and whether it fits in memory; then each named
    server's models (asked in a worker: a server that is slow or down never holds the picker up)."""

    # Enter as a priority binding too, so that it closes the picker in key order (see screens/dialogs.py).
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", priority=True),
        Binding("enter", "choose", "Choose", priority=True),
    ]

    def __init__(
        self,
        library: Library,
        loaded: Choice | RemoteChoice | None = None,
        opened: Sequence[LocalModel] = (),
        servers: Sequence[NamedEndpoint] = (),
        known: Mapping[str, Served] | None = None,
    ) -> None:
        """`opened`: models opened by path this session, listed first so one can come back to them. `known`: the
        servers' models as last asked (listed at once, so keys typed at once find them); the rest are asked."""
        super().__init__()
        self.library = library
        self.servers = servers
        self.known = dict(known or {})
        self.remote: list[RemoteChoice] = []
        self.loaded_remote = loaded if isinstance(loaded, RemoteChoice) else None
        loaded = loaded if isinstance(loaded, Choice) else None
        self.loaded = loaded
        files = [*opened, *([loaded.model] if loaded is not None and loaded.model.source == "file" else [])]
        unique = list({m.files[0]: m for m in files}.values())
        self.models = unique + library.models()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Choose a model (Enter)  ·  the catalog has more: ctrl+o", markup=False)
            options = [Option(self._line(m), id=str(i)) for i, m in enumerate(self.models)]
            for named in self.servers:
                if named.name in self.known:
                    options += self._server_options(named, *self.known[named.name])
            yield OptionList(*options, id="models")
            if not self.models and not self.servers:
                yield Label("No models yet: open the catalog with ctrl+o.")

    def on_mount(self) -> None:
        if any(named.name not in self.known for named in self.servers):
            self.list_servers()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def list_servers(self) -> None:
        for named in self.servers:
            if named.name not in self.known:
                names, problem = served_models(named)
                self.app.call_from_thread(self.add_server, named, names, problem)

    def add_server(self, named: NamedEndpoint, names: list[str], problem: str | None) -> None:
        self.query_one("#models", OptionList).add_options(self._server_options(named, names, problem))

    def _server_options(self, named: NamedEndpoint, names: list[str], problem: str | None) -> list[Option]:
        # Names and errors come from a server: literal, inert.
        options = [Option(Text(inert(f"  {named.name}: {problem}")), disabled=True)] if problem is not None else []
        for name in names:
            choice = RemoteChoice(named.name, name)
            mark = "● " if choice == self.loaded_remote else "  "
            line = f"{mark}{name}  ·  server {named.name} ({named.endpoint.url})"
            line += "  (in use)" if choice == self.loaded_remote else ""
            options.append(Option(Text(inert(line)), id=f"r{len(self.remote)}"))
            self.remote.append(choice)
        return options

    def _line(self, model: LocalModel) -> Text:
        loaded = self.loaded is not None and self.loaded.model.files[0] == model.files[0]
        line = ("● " if loaded else "  ") + describe(self.library, model) + ("  (loaded)" if loaded else "")
        return Text(inert(line))  # names and errors come from files and manifests: literal, inert

    def action_choose(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.choose_option(options.get_option_at_index(options.highlighted))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.choose_option(event.option)

    def choose_option(self, option: Option) -> None:
        if option.disabled or option.id is None:
            return
        if option.id.startswith("r"):
            self.dismiss(self.remote[int(option.id[1:])])
        else:
            self.choose(self.models[int(option.id)])

    def choose(self, model: LocalModel) -> None:
        name = str(model.path) if model.source == "file" else (model.alias or model.name)
        self.dismiss(Choice(name, model))


class CatalogScreen(ModalScreen[Choice | None]):
    """The curated catalog: pull one with a progress bar (Enter), remove a pulled one (Delete)."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", priority=True),
        Binding("delete", "remove", "Remove", id="catalog.remove"),
    ]

    def __init__(self, library: Library, intro: str = "") -> None:
        super().__init__()
        self.library = library
        self.intro = intro

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            if self.intro:
                yield Label(self.intro, classes="intro")
            yield Label("Pull a model (Enter) · remove (Delete) · close (Esc)")
            yield OptionList(*[Option(self._line(e), id=e.alias) for e in CATALOG], id="catalog")
            bar = ProgressBar(id="pull-progress", show_eta=True)
            bar.display = False  # shown once a pull starts (an idle bar would animate for nothing)
            yield bar
            yield Label("", id="pull-status", markup=False)

    def _line(self, entry: CatalogEntry) -> str:
        here = " (downloaded)" if self.library.find(entry.alias) else ""
        thinks = "thinks" if entry.thinks else ""
        return f"{entry.alias:<15} {entry.parameters:>5} {entry.context // 1024:>4}k {thinks:<6}  {entry.why}{here}"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        local = self.library.find(event.option.id)
        if local is not None:
            self.dismiss(Choice(event.option.id, local))
            return
        self.pull(event.option.id)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def pull(self, alias: str) -> None:
        status = self.query_one("#pull-status", Label)
        bar = self.query_one("#pull-progress", ProgressBar)
        try:
            plan = plan_pull(alias, self.library)
            self.app.call_from_thread(status.update, inert(f"pulling {plan.name}: {plan.fit().message}"))
            self.app.call_from_thread(setattr, bar, "display", True)

            def progress(_name: str):
                return lambda done, total: self.app.call_from_thread(bar.update, total=total, progress=done)

            model = run_pull(plan, self.library, progress)
        except LocalchatError as exc:
            self.app.call_from_thread(status.update, f"error: {inert(exc.message)}")
            return
        self.app.call_from_thread(self.dismiss, Choice(alias, model))

    def action_remove(self) -> None:
        option_list = self.query_one("#catalog", OptionList)
        if option_list.highlighted is None:
            return
        alias = option_list.get_option_at_index(option_list.highlighted).id
        model = self.library.find(alias)
        if model is None:
            return
        try:
            self.library.remove(model)
        except LocalchatError as exc:
            self.query_one("#pull-status", Label).update(inert(exc.message))
            return
        self.query_one("#pull-status", Label).update(f"removed {alias}")
        option_list.replace_option_prompt(alias, self._line(next(e for e in CATALOG if e.alias == alias)))
