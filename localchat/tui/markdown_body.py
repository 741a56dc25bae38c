"""A message's Markdown, drawn line by line: cheap to stream into, cheap to keep by the hundred.

Why not Textual's Markdown widget: it is a widget per block, and a block that grows asks for a layout of the
whole screen. While a reply streams that is every frame: measured on 2 cores, 20–40 ms of the UI thread a frame
(arranging every widget, then repainting the screen), which llama.cpp's spinning threads pay for about 1:1.

Here the text is rendered with Rich's Markdown into strips of the widget's width. While a reply streams, the
blocks before its last blank line (outside a code fence) are settled: rendered once and kept. Only the block being
written is rendered again each frame, and only the lines that changed are repainted. The widget asks for a
layout only when its text outgrows the lines it has reserved (a few at a time, `reserve`), so most frames never
arrange the screen. When the reply ends, the whole text is rendered once more, as one document.
"""

from __future__ import annotations

import re

from rich.markdown import Markdown
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from localchat.text import inert

FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def settled_end(text: str, start: int = 0) -> int:
    """Where the settled part of a streaming text ends: after its last blank line outside a code fence (`start`
    when there is none). What comes before that cannot change when more text arrives. `start` must itself be
    settled (outside a fence): only the text after it is searched, so each frame costs what arrived since."""
    end = len(text)
    while True:
        cut = text.rfind("\n\n", start, end)
        if cut < 0:
            return start
        if len(FENCE.findall(text, start, cut)) % 2 == 0:
            return cut + 2
        end = cut


class MarkdownBody(Widget):
    """Markdown rendered to strips. `append` while a reply streams; `update` for a whole text."""

    DEFAULT_CSS = "MarkdownBody { height: auto; }"

    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.text = text
        self.streaming = False
        self.reserve = 1  # while streaming: lines reserved ahead, so that most frames need no layout
        self._width = 0  # what the strips below were rendered for
        self._settled = 0  # while streaming: characters of `text` rendered into _settled_strips
        self._settled_strips: list[Strip] = []
        self._tail_strips: list[Strip] = []
        self._height = 0  # lines the layout gave us (rendered lines, rounded up while streaming)

    # --- rendering ------------------------------------------------------------------------------------------

    def _render(self, text: str, width: int) -> list[Strip]:
        if not text.strip():
            return []
        code_theme = "monokai" if self.app.current_theme.dark else "friendly"
        markdown = Markdown(inert(text), code_theme=code_theme, hyperlinks=False)
        console = self.app.console
        lines = console.render_lines(markdown, console.options.update_width(width), style=self.rich_style, pad=False)
        strips = [Strip(line).simplify() for line in lines]
        # Rich starts some blocks (a list) with an empty line: trimmed, so that blocks rendered one at a time
        # join with exactly the one blank line that Rich puts between the blocks of a whole document.
        while strips and not strips[0].cell_length:
            strips.pop(0)
        while strips and not strips[-1].cell_length:
            strips.pop()
        return strips

    def _render_all(self, width: int) -> None:
        self._width = width
        if self.streaming:
            self._settled = settled_end(self.text)
            self._settled_strips = self._render(self.text[: self._settled], width)
            self._tail_strips = self._render(self.text[self._settled :], width)
        else:
            self._settled, self._settled_strips = len(self.text), self._render(self.text, width)
            self._tail_strips = []

    @property
    def _lines(self) -> int:
        gap = 1 if self._settled_strips and self._tail_strips else 0
        return len(self._settled_strips) + gap + len(self._tail_strips)

    def _line(self, y: int) -> Strip | None:
        settled = len(self._settled_strips)
        if y < settled:
            return self._settled_strips[y]
        if self._settled_strips and self._tail_strips:
            y -= 1  # the blank line between two blocks, as Rich puts one between the blocks of a document
        y -= settled
        return self._tail_strips[y] if 0 <= y < len(self._tail_strips) else None

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width != self._width:
            self._render_all(width)
        lines = self._lines
        if self.streaming and self.reserve > 1:
            lines = max(self._height, -(-lines // self.reserve) * self.reserve)
        self._height = lines
        return lines

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._width:
            self._render_all(width)
        strip = self._line(y)
        return (
            Strip.blank(width, self.rich_style) if strip is None else strip.extend_cell_length(width, self.rich_style)
        )

    # --- changing the text ----------------------------------------------------------------------------------

    def update(self, text: str) -> None:
        """A whole text (a finished reply, a stored message): rendered once, as one document."""
        self.text = text
        self.streaming = False
        self._width = 0
        self._height = 0
        self.refresh(layout=True)

    def start_stream(self, reserve: int = 1) -> None:
        self.streaming = True
        self.reserve = max(1, reserve)
        self._width = 0

    def append(self, text: str) -> None:
        """More text at the end of a streaming reply: render the new settled blocks and the block in progress,
        repaint the lines that changed, and lay out only when the reserved lines are full."""
        if not text:
            return
        self.text += text
        width = self._width
        if not width:
            self.refresh(layout=True)  # not laid out yet: it renders all when it gets its width
            return
        # Only lines from the old tail on can change (settled strips stay as they are).
        first = self._lines - len(self._tail_strips)
        before = [self._line(y) for y in range(first, self._lines)]
        end = settled_end(self.text, self._settled)
        if end > self._settled:
            chunk = self._render(self.text[self._settled : end], width)
            if chunk:
                self._settled_strips += ([Strip.blank(width)] if self._settled_strips else []) + chunk
            self._settled = end
        self._tail_strips = self._render(self.text[self._settled :], width)
        lines = self._lines
        if lines > self._height:
            self.refresh(layout=True)
            return
        # Repaint only the lines that differ (usually the last one or two): the compositor's cost is per line.
        span = max(lines - first, len(before))
        changed = [i for i in range(span) if i >= len(before) or self._line(first + i) != before[i]]
        if changed:
            self.refresh(Region(0, first + changed[0], width, changed[-1] - changed[0] + 1))

    def rendered_lines(self) -> list[str]:
        """The text as drawn (for tests)."""
        return [strip.text.rstrip() if strip else "" for strip in (self._line(y) for y in range(self._lines))]
