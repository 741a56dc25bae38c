"""The sidebar: the chats, newest first, filtered by the search box; picking one (Enter or a click in the list,
Enter in the search box for the chat highlighted) asks the app to open it."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView

from localchat.store.db import Store
from localchat.text import inert


class ChatList(Vertical):
    class Picked(Message):
        """A chat was chosen in the list (Enter or a click)."""

        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def __init__(self, store: Store, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.current: int | None = None  # the open chat, highlighted in the list

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search chats", id="search")
        yield ListView(id="conversations")

    def show(self, current: int | None = None) -> None:
        """List the chats the search matches (all without one), the open one highlighted, else the first found."""
        if current is not None:
            self.current = current
        view = self.query_one("#conversations", ListView)
        view.clear()
        chats = self.store.conversations(self.query_one("#search", Input).value.strip() or None)
        for chat in chats:
            view.append(ListItem(Label(inert(chat.title), markup=False), name=str(chat.id)))
        highlighted = [i for i, chat in enumerate(chats) if chat.id == self.current]
        view.index = highlighted[0] if highlighted else (0 if chats else None)

    def focus_search(self) -> None:
        self.add_class("-open")  # in a narrow window the list is hidden until asked for (app.tcss)
        self.query_one("#search", Input).focus()

    def on_descendant_blur(self, _event: events.DescendantBlur) -> None:
        # Focus may be moving between the search box and the list: look once it has landed.
        self.call_after_refresh(self._close_unless_focused)

    def _close_unless_focused(self) -> None:
        if not self.has_focus_within:
            self.remove_class("-open")

    @on(Input.Changed, "#search")
    def _search_changed(self, _event: Input.Changed) -> None:
        self.show()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        highlighted = self.query_one("#conversations", ListView).highlighted_child
        if highlighted is not None and highlighted.name is not None:
            self.post_message(self.Picked(int(highlighted.name)))

    @on(ListView.Selected, "#conversations")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        self.post_message(self.Picked(int(event.item.name)))
