"""The localchat app: conversations on the left, the chat on the right, the context counter at the bottom."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from localchat.chat.arena import save_as_chat
from localchat.chat.export import export_chat
from localchat.chat.sampling import SamplingParams
from localchat.chat.session import ChatSession
from localchat.config import Paths
from localchat.engine.client import EngineClient
from localchat.engine.protocol import LoadOptions
from localchat.errors import LocalchatError
from localchat.models.library import Library, LocalModel
from localchat.store.db import Conversation, Store, open_database
from localchat.text import inert
from localchat.tui.chat_list import ChatList
from localchat.tui.chat_view import ChatView
from localchat.tui.key_hold import KeyHold
from localchat.tui.messages import ModelLoaded, ModelLoading
from localchat.tui.model_switcher import ModelSwitcher
from localchat.tui.sampling_panel import SamplingPanel
from localchat.tui.screens.arena import ArenaScreen, ArenaSetup
from localchat.tui.screens.dialogs import AskText, Confirm
from localchat.tui.screens.models import RemoteChoice
from localchat.tui.screens.settings import PromptsScreen, SettingsScreen
from localchat.tui.themes import load_themes
from localchat.tui.widgets import KeyBar, MessageView

DEFAULT_THEME = "localchat-dusk"


class LocalchatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "localchat"
    # Below 90 columns the chat list would leave the chat 60 or fewer: it hides, and Ctrl+F brings it back as a
    # drawer (app.tcss, chat_list.py).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
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
        self.key_hold = KeyHold(self, super().on_event)

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def conversation(self) -> Conversation | None:
        return self.chat.conversation

    def _chat_n_ctx(self) -> int | None:
        """The open chat's context size, which a model is loaded with (None: the model's default)."""
        return self.conversation.n_ctx if self.conversation else None

    # --- layout ---------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ChatList(self.store, id="sidebar")
        yield ChatView(self.store, self.session, id="chat")
        yield SamplingPanel(self.session, id="lab")
        yield ModelSwitcher(self.library, self.store, self.session, self._chat_n_ctx)
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
            self.models.connect_remote(RemoteChoice(last_remote["endpoint"], last_remote["model"]))
        elif ref:
            self.load_model(ref)
        elif models and all(m.source == "bundled" for m in models):
            # A fresh machine with the model that came with the install: chat at once, offline.
            self.load_model(models[0].alias or models[0].name, models[0])
            self.notify(STARTER_NOTICE.format(alias=models[0].alias), timeout=12, markup=False)
        elif not models:
            self.models.catalog(WELCOME)
        self.chat.composer.focus()
        self.models.list_servers()

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

    def refresh_conversations(self) -> None:
        self.query_one(ChatList).show(self.conversation.id if self.conversation else None)

    async def open_conversation(self, conversation_id: int) -> None:
        """Open a chat, ready for the next message (the keys typed behind ctrl+n or a pick go to it). A new chat
        left as it came is not kept (as ChatGPT keeps no empty chat)."""
        left = self.chat.conversation if self.chat.untouched(self._default_prompt()) else None
        await self.chat.open(conversation_id)
        if left is not None and left.id != conversation_id:
            self.store.delete_conversation(left.id)
        self.refresh_conversations()
        self.show_lab_reply()
        self.chat.composer.focus()

    def on_chat_view_changed(self, _message: ChatView.Changed) -> None:
        if not self.query(ChatList):
            return  # the app is closing (a quit mid-reply): the list went before the chat's last word
        self.refresh_conversations()
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

    def _between_replies(self) -> bool:
        """Chats are switched between replies (the one on its way streams into the open chat's view): say so."""
        return self.chat.after_the_reply("switch chats")

    async def on_chat_list_picked(self, message: ChatList.Picked) -> None:
        if self._between_replies():
            await self.open_conversation(message.conversation_id)

    def action_search(self) -> None:
        self.query_one(ChatList).focus_search()

    async def action_new_chat(self) -> None:
        if self.chat.untouched(self._default_prompt()):  # a new chat already: ctrl+n again makes no second one
            self.chat.composer.focus()
        elif self._between_replies():
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
            if yes and self._between_replies():
                self.store.delete_conversation(self.conversation.id)
                self.chat.conversation = None  # gone: nothing to keep a draft for
                chats = self.store.conversations()
                await self.open_conversation(chats[0].id if chats else self.store.create_conversation().id)

        self.push_screen(Confirm(f"Delete “{self.conversation.title}” and all its messages?"), delete)

    # --- the reply (the chat view does the work) ------------------------------------------------------------

    def action_stop(self) -> None:
        chats = self.query_one(ChatList)
        if chats.has_class("-open") and chats.has_focus_within and self.screen.has_class("-narrow"):
            self.chat.composer.focus()  # Escape closes the drawer first (it hides once focus leaves it)
            return
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

    # --- models (tui/model_switcher.py does the work) -------------------------------------------------------

    @property
    def models(self) -> ModelSwitcher:
        return self.query_one(ModelSwitcher)

    def action_pick_model(self) -> None:
        self.models.pick()

    def action_catalog(self) -> None:
        self.models.catalog()

    def load_model(self, ref: str, model: LocalModel | None = None) -> None:
        self.models.load_model(ref, model)

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

    # --- the arena (tui/screens/arena.py) -----------------------------------------------------------------------

    def action_arena(self) -> None:
        models = tuple(self.library.models())
        known = {m.files[0] for m in models}
        models += tuple(m for m in self.models.opened_files if m.files[0] not in known)
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
        chat = save_as_chat(self.store, message.winner, message.history)
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
