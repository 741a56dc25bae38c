"""Keys act in the order they were typed, however fast they come (a paste, a text expander, tmux send-keys).

Textual hands each key to the focused widget as soon as the App reads it, and two things then act out of order:
- A key handled by a binding (Backspace, the arrows, ctrl+u; Enter in a dialog's input) acts only when it has
  bubbled back up to the App, after the keys behind it were already typed into the widget: "abc", Backspace,
  "d" gave "abc", and Left then "Y" put the Y before the cursor moved.
- A key that opens a screen (ctrl+l) or moves the focus (F5) takes effect later, when the screen has mounted or
  the focus callback has run: the Down and Enter typed right behind ctrl+l went to the composer and were lost.
So the App hands each key to a KeyHold, which passes it on only once the key before it has finished its way
(followed up the widget tree with a callback at each step, each queued behind the key) and no change of screen
or focus is under way; until then the keys wait here, in order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

from textual import events
from textual.app import App
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Input, TextArea

POLL_S = 0.01
CHANGE_LIMIT_S = 0.5  # a change that never settles (nothing to focus) still lets the keys go on
KEY_LIMIT_S = 1.0  # nor does a key whose way was cut some other way (a callback never run): the rest go on


class KeyHold:
    def __init__(self, app: App, forward: Callable[[events.Event], Awaitable[None]]) -> None:
        """`forward`: how the App dispatches a key it does not hold (Textual's own App.on_event)."""
        self._app = app
        self._forward = forward
        self._held: deque[events.Event] = deque()
        self._ready: Callable[[], bool] | None = None  # a change under way: the keys wait until ready()
        self._change_deadline = 0.0
        self._in_flight = 0  # the key on its way, numbered (0: none)
        self._sent = 0
        self._key_deadline = 0.0
        self._target: DOMNode | None = None  # where the key on its way was sent
        self._fallback = 0  # the key on its way that a timer will give up on

    def watch_screens(self) -> None:
        self._app.screen_change_signal.subscribe(self._app, self._screen_changed)

    def _screen_changed(self, screen: Screen) -> None:
        self.until(lambda: screen.is_mounted and (screen.focused is not None or not screen.focus_chain))

    def until(self, ready: Callable[[], bool]) -> None:
        """Hold the keys from now until `ready()` (called on the App's thread)."""
        first = self._ready is None
        self._ready = ready
        self._change_deadline = time.monotonic() + CHANGE_LIMIT_S
        if first:
            self._app.set_timer(POLL_S, self._poll)

    async def key(self, event: events.Event) -> None:
        """A key (or a paste) as the App reads it."""
        self._held.append(event)
        await self._release()

    def _blocked(self) -> bool:
        now = time.monotonic()
        if self._ready is not None:
            if not self._ready() and now < self._change_deadline:
                return True
            self._ready = None
        # A key whose widget (or screen) was removed on its way (Escape closing a screen) has finished its way.
        attached = self._target is not None and self._target.is_attached
        return bool(self._in_flight) and attached and now < self._key_deadline

    async def _poll(self) -> None:
        if self._ready is not None and self._blocked():
            self._app.set_timer(POLL_S, self._poll)
            return
        await self._release()

    async def _release(self) -> None:
        # Each key goes on as if it came now; one that starts a change (Enter closing the picker) holds the rest.
        while self._held and not self._blocked():
            event = self._held.popleft()
            target = self._target = self._app.focused or self._app.screen
            self._sent += 1
            self._in_flight, self._key_deadline = self._sent, time.monotonic() + KEY_LIMIT_S
            await self._forward(event)
            if isinstance(target, (Input, TextArea)):
                # A text field takes the characters typed into it where they land, in order: the run of them
                # behind this one goes on at once (a 400-key burst lands in 0.4 s, not 1.5 s), and only the last
                # one's way is followed.
                while self._held and _typed(event) and _typed(self._held[0]):
                    event = self._held.popleft()
                    await self._forward(event)
            self._follow(target, self._sent)
        if self._held and self._in_flight and self._fallback != self._in_flight:
            # One timer for the key on its way, firing when it is given up (not one per key that waits behind it).
            self._fallback = self._in_flight
            self._app.set_timer(max(self._key_deadline - time.monotonic(), 0.0), self._release)

    def _follow(self, target: DOMNode, number: int) -> None:
        """Queue a callback behind the key at `target`, then at its parent and so on up to the App; then again from
        `target` up; then once more at the App. When that last one runs, the key has been handled (or stopped)
        wherever it went, so have the messages its handling posted to `target` (an Input's Submitted, a
        Button's Pressed: a dialog closes on them), and what it queued on the App (focus() moves the focus in a
        callback there)."""
        path = [target, *target.ancestors]  # the App last (a screen's parent)
        hops = [*path, *path, path[-1]]

        async def step(index: int) -> None:
            if self._in_flight != number:
                return  # given up on (KEY_LIMIT_S)
            if index + 1 < len(hops):
                hops[index + 1].call_later(step, index + 1)
            else:
                self._in_flight = 0
                await self._release()

        target.call_later(step, 0)


def _typed(event: events.Event) -> bool:
    return isinstance(event, events.Key) and event.is_printable
