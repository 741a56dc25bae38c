"""The open conversation's messages: a long chat opens with its last messages, older ones mount when the view is
scrolled to the top (keeping the reading position), and the view stays at the bottom while a reply streams."""

from __future__ import annotations

from textual.containers import VerticalScroll

from localchat.store.db import Store
from localchat.tui.widgets import MessageView

MOUNTED_MESSAGES = 200  # a long chat opens with its last 200 messages; older ones mount when scrolled to
MOUNT_MORE = 100


class MessageList(VerticalScroll):
    def __init__(self, store: Store, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.conversation_id: int | None = None
        self.loading_older = False

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def views(self) -> list[MessageView]:
        return list(self.query(MessageView))

    async def show(self, conversation_id: int) -> None:
        self.conversation_id = conversation_id
        await self.remove_children()
        branch = self.store.branch(conversation_id)
        await self.mount_all([MessageView(m) for m in branch[-MOUNTED_MESSAGES:]])
        self.anchor()  # stay at the bottom while replies stream, unless the user scrolls up

    async def sync(self, streaming: MessageView | None = None) -> None:
        """Show the stored branch: mount new messages, refresh changed ones (not `streaming`, which is being
        drawn), drop ones from another branch."""
        branch = self.store.branch(self.conversation_id)
        views = self.views()
        ids = [m.id for m in branch]
        mounted = [v.message.id for v in views if v.message.id in ids]
        # Keep what is shown from its first message on (older ones stay unmounted until scrolled to).
        branch = branch[ids.index(mounted[0]) if mounted else max(0, len(branch) - MOUNTED_MESSAGES) :]
        wanted = {m.id for m in branch}
        for view in views:
            if view.message.id not in wanted:
                await view.remove()
        have = {v.message.id: v for v in views if v.message.id in wanted}
        for message in branch:
            view = have.get(message.id)
            if view is None:
                await self.mount(MessageView(message))
            elif view is not streaming and (view.message.content, view.message.status, view.message.reasoning) != (
                message.content,
                message.status,
                message.reasoning,
            ):
                view.finish(message)

    def _scrolled(self, scroll_y: float) -> None:
        if scroll_y <= 0 and not self.loading_older and self.conversation_id is not None:
            self.loading_older = True
            self.call_later(self.load_older)

    async def load_older(self) -> None:
        views = self.views()
        branch = self.store.branch(self.conversation_id) if views else []
        ids = [m.id for m in branch]
        first = ids.index(views[0].message.id) if views and views[0].message.id in ids else 0
        older = branch[max(0, first - MOUNT_MORE) : first]
        if not older:
            self.loading_older = False
            return
        await self.mount_all([MessageView(m) for m in older], before=views[0])

        def keep_place() -> None:  # once laid out: back to the message that was on top
            self.scroll_to_widget(views[0], top=True, animate=False)
            self.loading_older = False

        self.call_after_refresh(keep_place)
