"""The localchat app: conversations on the left, the chat on the right, the context counter at the bottom."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, ListItem, ListView

from localchat.backends.remote import Endpoint
from localchat.chat.export import export_chat
from localchat.chat.sampling import SamplingParams
from localchat.chat.session import ChatSession
from localchat.config import Paths
from localchat.engine.client import EngineClient
from localchat.engine.protocol import LoadOptions
from localchat.errors import LoadCancelled, LocalchatError
from localchat.models.library import Library, LocalModel
from localchat.models.manager import find_local, looks_like_path
from localchat.store.db import Conversation, Store, open_database
from localchat.text import inert
from localchat.tui.chat_view import ChatView
from localchat.tui.key_hold import KeyHold
from localchat.tui.messages import ModelLoaded, ModelLoading, ServersListed
from localchat.tui.sampling_panel import SamplingPanel
from localchat.tui.screens.arena import ArenaScreen, ArenaSetup
from localchat.tui.screens.dialogs import AskText, Confirm
from localchat.tui.screens.models import CatalogScreen, Choice, ModelPicker, RemoteChoice
from localchat.tui.screens.settings import PromptsScreen, SettingsScreen
from localchat.tui.themes import load_themes
from localchat.tui.widgets import KeyBar, MessageView

DEFAULT_THEME = "localchat-dusk"


class LocalchatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "localchat"
    BINDINGS = [
        Binding("ctrl+n", "new_chat", "New chat", id="chat.new"),
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+g", "edit_last", "Edit last", id="chat.edit"),
        Binding("ctrl+b", "copy_message", "Copy reply", id="chat.copy", show=False),
        Binding("ctrl+l", "pick_model", "Model", id="model.pick"),
        Binding("ctrl+o", "catalog", "Catalog", id="model.catalog"),
        Binding("ctrl+s", "settings", "Settings", id="chat.settings"),
        Binding("ctrl+t", "prompts", "Prompts", id="chat.prompts"),
        Binding("f4", "toggle_thinking", "Thinking", id="chat.thinking"),
        Binding("f3", "tokens", "Tokens", id="chat.tokens", show=False),  # (F6 selects a line in the composer)
        Binding("f5", "sampling_lab", "Sampling", id="chat.lab"),
        Binding("f10", "arena", "Arena", id="arena.open"),
        Binding("f9", "leaderboard", "Leaderboard", id="arena.leaderboard", show=False),
        Binding("f2", "rename_chat", "Rename", id="chat.rename", show=False),
        Binding("ctrl+delete,f8", "delete_chat", "Delete chat", id="chat.delete", show=False),
        Binding("ctrl+f", "search", "Search", id="chat.search", show=False),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),  # in dialogs too (modals cut app keys)
    ]

    def __init__(
        self,
        paths: Paths,
        model_ref: str | None = None,
        keymap: dict[str, str] | None = None,
        default_sampling: SamplingParams | None = None,  # from the settings file, as for `localchat run`
        load_options: LoadOptions | None = None,  # the settings file's [engine]: GPU layers, threads, ctx
        lookup: bool = True,  # [engine] lookup: prompt lookup drafts tokens for the local engine
    ) -> None:
        super().__init__()
        self.paths = paths
        self.default_sampling = default_sampling
        self.load_options = load_options or LoadOptions()
        self.model_ref = model_ref
        self.keymap = keymap or {}
        self.library = Library(paths)
        # Opened here, not on mount, so the chat view can be composed with them.
        self.store: Store = open_database(paths.database)
        self.session = ChatSession(
            self.store, EngineClient(paths.engine_log), load_options=self.load_options, lookup=lookup
        )
        # What the picker shows as in use: a local model (also one opened by path) or a server's.
        self.loaded_model: Choice | RemoteChoice | None = None
        self.served: dict[str, tuple[list[str], str | None]] = {}  # the named servers' models, as last asked
        self.opened_files: list[LocalModel] = []  # models opened by path: the picker keeps them, to come back to
        self.key_hold = KeyHold(self, super().on_event)

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def conversation(self) -> Conversation | None:
        return self.chat.conversation

    # --- layout ---------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="sidebar"):
            yield Input(placeholder="search chats", id="search")
            yield ListView(id="conversations")
        yield ChatView(self.store, self.session, id="chat")
        yield SamplingPanel(self.session, id="lab")
        yield KeyBar()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            await self.key_hold.key(event)  # it passes them on in order (key_hold.py)
        else:
            await super().on_event(event)

    async def on_mount(self) -> None:
        _log_to(self.paths.app_log)
        self.key_hold.watch_screens()
        for theme in load_themes():
            self.register_theme(theme)
        if self.keymap:
            self.set_keymap(self.keymap)
        self.store.recover_interrupted()
        saved_theme = self.store.setting("theme", DEFAULT_THEME)
        if saved_theme in self.available_themes:
            self.theme = saved_theme
        if self.default_sampling is not None:
            self.session.default_sampling = self.default_sampling
        default = self.store.setting("default_sampling")
        if default:
            self.session.default_sampling = self.session.default_sampling.with_overrides(**default)
        chats = self.store.conversations()
        await self.open_conversation(
            chats[0].id if chats else self.store.create_conversation(system_prompt=self._default_prompt()).id
        )
        ref = self.model_ref or self.store.setting("last_model")
        models = self.library.models()
        last_remote = self.store.setting("last_remote") if not self.model_ref else None
        if last_remote:
            self.connect_remote(RemoteChoice(last_remote["endpoint"], last_remote["model"]))
        elif ref:
            self.load_model(ref)
        elif models and all(m.source == "bundled" for m in models):
            # A fresh machine with the model that came with the install: chat at once, offline.
            self.load_model(models[0].alias or models[0].name, models[0])
            self.notify(STARTER_NOTICE.format(alias=models[0].alias), timeout=12, markup=False)
        elif not models:
            self.push_screen(CatalogScreen(self.library, WELCOME), self._picked)
        self.chat.composer.focus()
        self.list_servers()

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

    def watch_theme(self, theme: str) -> None:
        self.store.set_setting("theme", theme)

    async def action_quit(self) -> None:
        """Quit at once, whatever runs: the reply is stopped and stored, unsent text kept as the chat's draft (done
        here, while the chat view is still mounted), a load abandoned (engine killed)."""
        self.chat.close()
        self.session.engine.close()
        self._close_arenas()
        self.exit()

    def on_unmount(self) -> None:
        # However the app ends: the engine must go, or the reply's worker thread (which asyncio waits for on
        # exit) would run on. close() cancels first and never waits for a reply or a load to finish.
        self.session.engine.close()
        self._close_arenas()

    def _close_arenas(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ArenaScreen):
                screen.close_arena()

    # --- conversations --------------------------------------------------------------------------------------

    def _default_prompt(self) -> str | None:
        name = self.store.setting("default_prompt")
        return dict(self.store.prompts()).get(name) if name else None

    def refresh_conversations(self, search: str | None = None) -> None:
        view = self.query_one("#conversations", ListView)
        view.clear()
        chats = self.store.conversations(search)
        for chat in chats:
            view.append(ListItem(Label(inert(chat.title), markup=False), name=str(chat.id)))
        current = [i for i, chat in enumerate(chats) if self.conversation and chat.id == self.conversation.id]
        view.index = current[0] if current else None

    def _search_text(self) -> str | None:
        return self.query_one("#search", Input).value.strip() or None

    async def open_conversation(self, conversation_id: int) -> None:
        await self.chat.open(conversation_id)
        self.refresh_conversations(self._search_text())
        self.show_lab_reply()

    def on_chat_view_changed(self, _message: ChatView.Changed) -> None:
        if not self.query("#conversations"):
            return  # the app is closing (a quit mid-reply): the list went before the chat's last word
        self.refresh_conversations(self._search_text())
        self.show_lab_reply()

    # --- the sampling lab (tui/sampling_panel.py) -------------------------------------------------------------

    @property
    def lab(self) -> SamplingPanel:
        return self.query_one(SamplingPanel)

    def action_sampling_lab(self) -> None:
        """Open the panel on the focused reply (else the last), focused for its keys; from the panel, close it."""
        if self.lab.display and self.focused is self.lab:
            self.lab.display = False
            self.chat.composer.focus()
            return
        focused = self.focused
        reply = focused.message.id if isinstance(focused, MessageView) and focused.message.role == "assistant" else None
        self.lab.display = True
        self.show_lab_reply(reply)
        self.lab.focus()

    def show_lab_reply(self, message_id: int | None = None) -> None:
        """The lab follows the open chat: the given reply, else its last finished one."""
        if not self.lab.display or self.conversation is None:
            return
        if message_id is None:
            replies = [v.message for v in self.chat.views() if v.message.role == "assistant" and v.message.content]
            message_id = replies[-1].id if replies and not self.chat.busy else None
        self.lab.show_reply(self.conversation.id, message_id)

    def on_sampling_panel_changed(self, _message: SamplingPanel.Changed) -> None:
        self.chat.conversation = self.store.conversation(self.conversation.id)

    def on_sampling_panel_regenerate_from(self, message: SamplingPanel.RegenerateFrom) -> None:
        self.chat.regenerate_from(message.message_id, message.prefix)
        self.chat.composer.focus()  # F5 goes back to the lab

    def on_sampling_panel_typed_away(self, message: SamplingPanel.TypedAway) -> None:
        composer = self.chat.composer
        composer.focus()
        composer.insert(message.character)

    def on_sampling_panel_left(self, _message: SamplingPanel.Left) -> None:
        self.chat.composer.focus()

    @on(ListView.Selected, "#conversations")
    async def conversation_selected(self, event: ListView.Selected) -> None:
        if not self.chat.busy:
            await self.open_conversation(int(event.item.name))

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.refresh_conversations(event.value.strip() or None)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    async def action_new_chat(self) -> None:
        if not self.chat.busy:
            chat = self.store.create_conversation(system_prompt=self._default_prompt())
            await self.open_conversation(chat.id)

    def action_rename_chat(self) -> None:
        def rename(title: str | None) -> None:
            if title:
                self.store.update_conversation(self.conversation.id, title=title)
                self.refresh_conversations()

        self.push_screen(AskText("Rename this chat:", self.conversation.title), rename)

    def action_delete_chat(self) -> None:
        async def delete(yes: bool | None) -> None:
            if yes and not self.chat.busy:
                self.store.delete_conversation(self.conversation.id)
                self.chat.conversation = None  # gone: nothing to keep a draft for
                chats = self.store.conversations()
                await self.open_conversation(chats[0].id if chats else self.store.create_conversation().id)

        self.push_screen(Confirm(f"Delete “{self.conversation.title}” and all its messages?"), delete)

    # --- the reply (the chat view does the work) ------------------------------------------------------------

    def action_stop(self) -> None:
        self.chat.stop()

    def action_regenerate(self) -> None:
        self.chat.regenerate()

    def action_tokens(self) -> None:
        """The focused message's tokens, else the draft's, with the loaded model's tokenizer."""
        from localchat.tui.screens.tokens import TokensScreen

        if self.session.model is None or not self.session.local:
            self.notify("Load a local model first: tokens are the model's own.", severity="warning")
            return
        focused = self.focused
        if isinstance(focused, MessageView):
            text, what = focused.message.content, f"this {focused.message.role} message"
        else:
            text, what = self.chat.composer.text, "your draft"
        self.push_screen(TokensScreen(self.session.engine, text, what))

    def action_toggle_thinking(self) -> None:
        self.chat.toggle_thinking()

    def action_edit_last(self) -> None:
        focused = self.focused
        self.chat.edit(focused if focused in self.chat.views() else None)

    def action_copy_message(self) -> None:
        self.chat.copy_message(self.focused)

    # --- models ---------------------------------------------------------------------------------------------

    def action_pick_model(self) -> None:
        from localchat.backends.endpoints import named_endpoints

        try:
            servers = named_endpoints()
        except LocalchatError as exc:  # config.toml was edited since the start and is wrong now: say so, go on
            self.notify(inert(exc.message), severity="error", timeout=10, markup=False)
            servers = []
        picker = ModelPicker(self.library, self.loaded_model, self.opened_files, servers, self.served)
        self.push_screen(picker, self._picked)

    def action_catalog(self) -> None:
        self.push_screen(CatalogScreen(self.library), self._picked)

    def _picked(self, choice: Choice | RemoteChoice | None) -> None:
        self.list_servers()  # for the next time: a server may have come up, or gone
        if isinstance(choice, RemoteChoice):
            self.connect_remote(choice)
        elif choice is not None:
            self.load_model(choice.name, choice.model)

    def connect_remote(self, choice: RemoteChoice) -> None:
        """A server's model for this chat's next replies (and the chats opened after): asked in a worker."""
        self.chat.show_model_loading(choice.name)
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
        self.chat.show_model_loading(Path(ref).name if looks_like_path(ref) else ref)
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
            n_ctx = self.conversation.n_ctx if self.conversation else None
            info = self.session.load_model(
                path, name, n_ctx, lambda fraction: self.post_message(ModelLoading(name, fraction))
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

    def on_model_loading(self, message: ModelLoading) -> None:
        self.chat.show_model_loading(message.name, message.fraction)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.screen_stack and self.screen_stack[-1].id == "arena" and action in CHAT_ACTIONS:
            return False  # the chats' keys act on the chat under the arena: off (and out of the key bar) there
        if action == "toggle_thinking":  # only for a model whose template has a switch (and then in the key bar)
            model = self.session.model if self.session is not None else None
            return model is not None and model.thinking in ("switch", "soft")
        return True

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.chat.show_model_loaded(message.info, message.name)
        self.refresh_bindings()
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

    # --- the arena (tui/screens/arena.py) -----------------------------------------------------------------------

    def action_arena(self) -> None:
        models = tuple(self.library.models())
        known = {m.files[0] for m in models}
        models += tuple(m for m in self.opened_files if m.files[0] not in known)
        setup = ArenaSetup(
            self.store,
            self.library,
            self.load_options,
            self.paths.engine_log,
            self.session.default_sampling,
            models,
            self.session.lookup,
        )
        self.push_screen(ArenaScreen(setup))

    async def on_arena_screen_continue_with_winner(self, message: ArenaScreen.ContinueWithWinner) -> None:
        """A chat of its own for the arena's history, with the winner's model loaded (its settings kept)."""
        first = next((m.content for m in message.history if m.role == "user"), "Arena")
        chat = self.store.create_conversation(title=f"Arena: {' '.join(first.split())[:40]}")
        # Its settings, without the seed the arena drew for its seat (a fixed seed would repeat itself).
        self.store.update_conversation(chat.id, sampling=message.winner.sampling.to_dict() | {"seed": None})
        parent = None
        for said in message.history:
            model = message.winner.model if said.role == "assistant" else None
            parent = self.store.add_message(chat.id, said.role, said.content, parent, model=model).id
        await self.open_conversation(chat.id)
        model = self.library.local_file(message.winner.path)
        self.load_model(model.alias or model.name, model)

    def action_leaderboard(self) -> None:
        from localchat.tui.screens.leaderboard import LeaderboardScreen

        self.push_screen(LeaderboardScreen(self.store))

    # --- settings, prompts, export ---------------------------------------------------------------------------

    def action_settings(self) -> None:
        sampling = self.session.sampling_for(self.conversation)

        def saved(result: tuple | None) -> None:
            if result is None:
                return
            params, n_ctx, as_default = result
            if as_default:
                self.store.set_setting("default_sampling", params.to_dict())
                self.session.default_sampling = params
            self.store.update_conversation(self.conversation.id, sampling=params.to_dict(), n_ctx=n_ctx)
            self.chat.conversation = self.store.conversation(self.conversation.id)
            if n_ctx and self.session.model and self.session.local and n_ctx != self.session.n_ctx:
                self.load_model(self.store.setting("last_model"))
            self.chat.schedule_count()
            self.notify("Settings saved for this chat; they apply to the next reply.")

        self.push_screen(SettingsScreen(sampling, self.conversation.n_ctx), saved)

    def action_prompts(self) -> None:
        def chosen(text: str | None) -> None:
            if text is not None:
                self.store.update_conversation(self.conversation.id, system_prompt=text or None)
                self.chat.conversation = self.store.conversation(self.conversation.id)
                self.chat.schedule_count()
                self.notify("System prompt set for this chat.")

        self.push_screen(PromptsScreen(self.store, self.conversation.system_prompt), chosen)

    def export(self, kind: Literal["md", "json"]) -> None:
        branch = self.store.branch(self.conversation.id)
        try:
            path = export_chat(self.conversation, branch, self.paths.data_dir / "exports", kind)
        except LocalchatError as exc:
            self.notify(inert(exc.message), severity="error", markup=False)
            return
        self.notify(f"Exported to {inert(str(path))}", markup=False)

    def get_system_commands(self, screen: Screen) -> list[SystemCommand]:
        commands = list(super().get_system_commands(screen))
        for binding in self.BINDINGS:
            commands.append(
                SystemCommand(
                    binding.description,
                    f"{binding.description} ({binding.key})",
                    getattr(self, f"action_{binding.action}"),
                )
            )
        commands.append(SystemCommand("Export as Markdown", "Write this chat to a .md file", lambda: self.export("md")))
        commands.append(SystemCommand("Export as JSON", "OpenAI-style messages", lambda: self.export("json")))
        return commands


# The app's own keys that act on the chat under the arena (Textual's, such as Tab, stay on).
CHAT_ACTIONS = {binding.action for binding in LocalchatApp.BINDINGS} - {"quit", "leaderboard"}
STARTER_NOTICE = "Chatting with {alias}, a tiny model that came with localchat to try it: Ctrl+O for better ones."
WELCOME = (
    "Welcome to localchat! You have no models yet. Pick one below to download it from the Hugging Face Hub "
    "(smollm2:135m is tiny and quick to try; qwen3.5:2b is a good everyday start). It runs entirely on this "
    "machine. You can also run `localchat import FILE.gguf`."
)


def _log_to(path: Path) -> None:
    """The app's own log (tracebacks of unexpected failures); the screen shows one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("localchat")
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == handler.baseFilename for h in logger.handlers):
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
