"""Which model the chat talks to: the picker and the catalog, a local model loaded or a server's model connected
in a worker, and what the picker shows (the model in use, files opened by path, the named servers' models).

A widget of its own that draws nothing: its workers post ModelLoading / ModelLoaded, which it reads first (what
is in use, what to say) and which then bubble up to the app (the chat view shows them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.widget import Widget

from localchat.backends.remote import Endpoint
from localchat.chat.session import ChatSession
from localchat.errors import LoadCancelled, LocalchatError
from localchat.models.library import Library, LocalModel
from localchat.models.manager import find_local, looks_like_path
from localchat.store.db import Store
from localchat.text import inert
from localchat.tui.messages import ModelLoaded, ModelLoading, ServersListed
from localchat.tui.screens.models import CatalogScreen, Choice, ModelPicker, RemoteChoice


class ModelSwitcher(Widget):
    DEFAULT_CSS = "ModelSwitcher { display: none; }"

    def __init__(
        self, library: Library, store: Store, session: ChatSession, chat_n_ctx: Callable[[], int | None]
    ) -> None:
        super().__init__()
        self.library = library
        self.store = store
        self.session = session
        self.chat_n_ctx = chat_n_ctx  # the open chat's context size: a model is loaded with it
        # What the picker shows as in use: a local model (also one opened by path) or a server's.
        self.loaded_model: Choice | RemoteChoice | None = None
        self.served: dict[str, tuple[list[str], str | None]] = {}  # the named servers' models, as last asked
        self.opened_files: list[LocalModel] = []  # models opened by path: the picker keeps them, to come back to

    def pick(self) -> None:
        from localchat.backends.endpoints import named_endpoints

        try:
            servers = named_endpoints()
        except LocalchatError as exc:  # config.toml was edited since the start and is wrong now: say so, go on
            self.notify(inert(exc.message), severity="error", timeout=10, markup=False)
            servers = []
        picker = ModelPicker(self.library, self.loaded_model, self.opened_files, servers, self.served)
        self.app.push_screen(picker, self.picked)

    def catalog(self, welcome: str | None = None) -> None:
        self.app.push_screen(CatalogScreen(self.library, welcome), self.picked)

    def picked(self, choice: Choice | RemoteChoice | None) -> None:
        self.list_servers()  # for the next time: a server may have come up, or gone
        if isinstance(choice, RemoteChoice):
            self.connect_remote(choice)
        elif choice is not None:
            self.load_model(choice.name, choice.model)

    @work(thread=True, exclusive=True, group="servers", exit_on_error=False)
    def list_servers(self) -> None:
        from localchat.backends.endpoints import named_endpoints, served_models

        try:
            servers = named_endpoints()
        except LocalchatError:
            return  # a wrong config.toml is said when the picker opens
        self.post_message(ServersListed({named.name: served_models(named) for named in servers}))

    def on_servers_listed(self, message: ServersListed) -> None:
        self.served = message.served

    def connect_remote(self, choice: RemoteChoice) -> None:
        """A server's model for this chat's next replies (and the chats opened after): asked in a worker."""
        self.post_message(ModelLoading(choice.name))
        self._connect_remote(choice)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def _connect_remote(self, choice: RemoteChoice) -> None:
        from localchat.backends.endpoints import open_remote

        try:
            backend = open_remote(choice.endpoint, choice.model)
        except LocalchatError as exc:
            # What was in use stays in use (a local model stays loaded).
            self.post_message(ModelLoaded(self.session.model, self.session.model_name or "", exc.message))
            return
        self.session.use_remote(backend, choice.name)
        self.store.set_setting("last_remote", {"endpoint": choice.endpoint, "model": choice.model})
        self.post_message(ModelLoaded(backend.model, choice.name, remote=choice, ignored=backend.ignored))

    def load_model(self, ref: str, model: LocalModel | None = None) -> None:
        self.post_message(ModelLoading(Path(ref).name if looks_like_path(ref) else ref))
        self.session.prepare_load()
        self._load_model(ref, model)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def _load_model(self, ref: str, model: LocalModel | None = None) -> None:
        try:
            if model is None and not looks_like_path(ref):
                model = find_local(ref, self.library)
                if model is None:
                    raise LocalchatError(
                        f"{ref} is not downloaded: pull it from the catalog (ctrl+o) or with `localchat pull {ref}`"
                    )
            path = model.path if model else Path(ref).expanduser()
            if model is None:
                model = self.library.local_file(path)
            name = model.alias or model.name
            info = self.session.load_model(
                path, name, self.chat_n_ctx(), lambda fraction: self.post_message(ModelLoading(name, fraction))
            )
        except LoadCancelled:
            self.post_message(ModelLoaded(None, ref, stopped=True))
            return
        except LocalchatError as exc:
            self.post_message(ModelLoaded(None, ref, exc.message))
            return
        self.library.touch(model)
        self.store.set_setting("last_model", ref if looks_like_path(ref) else name)
        self.store.set_setting("last_remote", None)
        self.post_message(ModelLoaded(info, name, model=model))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        """What is in use now, and what to say about it (the message goes on to the app and the chat view)."""
        if message.stopped:
            self.loaded_model = None
            self.notify(f"Stopped loading {inert(message.name)}.", timeout=6, markup=False)
        elif message.error and message.info is not None:  # a server's model failed; what was in use still is
            self.notify(f"Could not use it: {inert(message.error)}", severity="error", timeout=10, markup=False)
        elif message.remote is not None:
            self.loaded_model = message.remote
            if message.info.path.startswith("http://") and not Endpoint(message.info.path).loopback:
                self.notify(
                    f"{inert(message.info.path)} is plain http: the chat and the key travel unencrypted.",
                    severity="warning",
                    timeout=10,
                    markup=False,
                )
            if message.ignored:  # said once, when chosen: the chat's settings for them change nothing there
                self.notify(
                    f"{inert(message.remote.endpoint)} gets OpenAI's sampling fields only: "
                    f"{', '.join(message.ignored)} are not sent to it.",
                    timeout=10,
                    markup=False,
                )
        elif message.info is None:
            self.loaded_model = None
            self.notify(
                f"Could not load {message.name}: {inert(message.error)}", severity="error", timeout=10, markup=False
            )
        else:
            self.loaded_model = Choice(message.name, message.model)
            if message.model is not None and message.model.source == "file":
                known = {m.files[0] for m in self.opened_files}
                self.opened_files += [message.model] if message.model.files[0] not in known else []
            note = message.info.build_note
            if note and self.store.setting("build_note_shown") != note:  # once per build: doctor has it too
                self.store.set_setting("build_note_shown", note)
                self.notify(note[0].upper() + note[1:] + ".", severity="warning", timeout=20, markup=False)
            if message.info.draft_note:  # the settings' draft model does not fit this model
                self.notify(inert(message.info.draft_note), severity="warning", timeout=10, markup=False)
