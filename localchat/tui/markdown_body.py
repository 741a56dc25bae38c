"""A message's Markdown, drawn line by line: cheap to stream into, cheap to keep by the hundred.

Why not Textual's Markdown widget: it is a widget per block, and a block that grows asks for a layout of the
whole screen. While a reply streams that is every frame: measured on 2 cores, 20–40 ms of the UI thread a frame
(arranging every widget, then repainting the screen), which llama.cpp's spinning threads pay for about 1:1.

Here the text is rendered with Rich's Markdown into strips of the widget's width. While a reply streams, the
blocks before its last blank line (outside a code fence) are settled: rendered once and kept. Only the block being
written is rendered again each frame, and only the lines that changed are repainted. The widget asks for a
layout only when its text outgrows the lines it has reserved (a few at a time, `reserve`), so most frames never
arrange the screen. When the reply ends, the whole text is rendered once more, as one document.

A block that grows long is settled in parts too, or each frame would render all of it again (O(n²) over a long
code block or paragraph): an open code block's finished lines (the rest is drawn as the same block continued: its
fence line again, its top padding row dropped), and a long plain paragraph's wrapped lines but the last (greedy
wrapping never changes a line once the next has begun). Only while streaming: a code block continued this way is
highlighted from its continuation on, until the one full render at the end.
"""

from __future__ import annotations

import re

from rich.markdown import Markdown
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from localchat.text import inert

FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
CODE_LINES_TO_SETTLE = 8  # an open code block's finished lines are settled this many at a time
PARAGRAPH_LINES_TO_SETTLE = 4  # a plain paragraph's wrapped lines, likewise
# A paragraph whose text can change no earlier line when more arrives: one source line with no inline markup
# (emphasis, code, links, HTML, entities, escapes, tables), so its wrapped lines are final but the last.
PLAIN_LINE = re.compile(r"[^\n*_`\[\]<>\\&~|]*")
# How a line may not start if it is to render as a paragraph continued (not a list, quote, heading, code...).
BLOCK_START = re.compile(r"[ \t>#+\-*=|]|\d{1,9}[.)]")


def settled_end(text: str, start: int = 0, in_fence: bool = False) -> int:
    """Where the settled part of a streaming text ends: after its last blank line outside a code fence (`start`
    when there is none). What comes before that cannot change when more text arrives. `start` must itself be
    settled, at the start of a line, and `in_fence` say whether it is inside a code block: only the text after it
    is searched, so each frame costs what arrived since."""
    end = len(text)
    while True:
        cut = text.rfind("\n\n", start, end)
        if cut < 0:
            return start
        if (len(FENCE.findall(text, start, cut)) + in_fence) % 2 == 0:
            return cut + 2
        end = cut


def wrapped_starts(text: str, lines: list[str]) -> list[int] | None:
    """Where in a plain paragraph `text` each of its rendered `lines` begins (None if they do not match it)."""
    starts, position = [], 0
    for line in lines:
        line = line.strip()
        while position < len(text) and text[position] == " ":
            position += 1
        if not text.startswith(line, position):
            return None
        starts.append(position)
        position += len(line)
    return starts


class MarkdownBody(Widget):
    """Markdown rendered to strips. `append` while a reply streams; `update` for a whole text. With `markdown`
    off, the text as written (what a person typed: its line breaks and indentation are kept), wrapped."""

    DEFAULT_CSS = "MarkdownBody { height: auto; }"

    def __init__(self, text: str = "", *, classes: str | None = None, markdown: bool = True) -> None:
        super().__init__(classes=classes)
        self.text = text
        self.markdown = markdown
        self.streaming = False
        self.reserve = 1  # while streaming: lines reserved ahead, so that most frames need no layout
        self._width = 0  # what the strips below were rendered for
        self._settled = 0  # while streaming: characters of `text` rendered into _settled_strips
        self._settled_strips: list[Strip] = []
        # While the settled part ends inside a block (a long code block or paragraph settled in parts): the tail
        # continues it with no blank line between; `_reopen` is put before the tail when it is rendered (a code
        # block's fence line), and the top padding row of that render is dropped.
        self._joined = False
        self._reopen = ""
        self._tail_strips: list[Strip] = []
        self._height = 0  # lines the layout gave us (rendered lines, rounded up while streaming)

    # --- rendering ------------------------------------------------------------------------------------------

    def _render(self, text: str, width: int) -> list[Strip]:
        if not text.strip():
            return []
        if self.markdown:
            code_theme = "monokai" if self.app.current_theme.dark else "friendly"
            renderable: Markdown | Text = Markdown(inert(text), code_theme=code_theme, hyperlinks=False)
        else:
            renderable = Text(inert(text))
        console = self.app.console
        lines = console.render_lines(renderable, console.options.update_width(width), style=self.rich_style, pad=False)
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
        self._joined, self._reopen = False, ""
        if self.streaming:
            self._settled = settled_end(self.text)
            self._settled_strips = self._render(self.text[: self._settled], width)
            self._tail_strips = self._render(self.text[self._settled :], width)
        else:
            self._settled, self._settled_strips = len(self.text), self._render(self.text, width)
            self._tail_strips = []

    @property
    def _trim_top(self) -> int:
        """Rows dropped from the top of a continued render: a code block's top padding, drawn once already."""
        return 1 if self._reopen else 0

    @property
    def _gap(self) -> int:
        """The blank line between the settled blocks and the tail, as Rich puts one between two blocks."""
        return 1 if self._settled_strips and self._tail_strips and not self._joined else 0

    @property
    def _lines(self) -> int:
        gap = self._gap
        return len(self._settled_strips) + gap + len(self._tail_strips)

    def _line(self, y: int) -> Strip | None:
        settled = len(self._settled_strips)
        if y < settled:
            return self._settled_strips[y]
        y -= settled + self._gap
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
        end = settled_end(self.text, self._settled, in_fence=bool(self._reopen))
        if end > self._settled:
            self._settle(self._render_continued(self.text[self._settled : end], width), end)
            self._joined, self._reopen = False, ""
        self._tail_strips = self._render_continued(self.text[self._settled :], width)
        self._settle_long_tail(width)
        lines = self._lines
        if lines > self._height:
            self.refresh(layout=True)
            return
        # Repaint only the lines that differ (usually the last one or two): the compositor's cost is per line.
        span = max(lines - first, len(before))
        changed = [i for i in range(span) if i >= len(before) or self._line(first + i) != before[i]]
        if changed:
            self.refresh(Region(0, first + changed[0], width, changed[-1] - changed[0] + 1))

    def _render_continued(self, text: str, width: int) -> list[Strip]:
        """`text` rendered as what follows the settled part (which may end inside a block)."""
        if not text:
            return []
        return self._render(self._reopen + text, width)[self._trim_top :]

    def _settle(self, strips: list[Strip], end: int) -> None:
        """Keep `strips` as the rendering of the text up to `end`."""
        if strips:
            gap = self._settled_strips and not self._joined
            self._settled_strips += ([Strip.blank(self._width)] if gap else []) + strips
        self._settled = end

    def _settle_long_tail(self, width: int) -> None:
        """A tail that is one long block settles in parts (see the module's docstring), so a frame renders only
        the last few lines of it, however long the block grows."""
        tail = self.text[self._settled :]
        opener = "" if self._reopen else tail.partition("\n")[0]
        if self._reopen or (FENCE.match(opener) and "\n" in tail and len(FENCE.findall(tail)) == 1):
            # An open code block: its finished lines but the last are settled (rendered once, as that block).
            body = tail[len(opener) + 1 :] if opener else tail
            if self._reopen and FENCE.search(body):
                return  # it closes in the tail: settled with the next blank line
            lines = body.split("\n")[:-1]  # the last is still being written
            if len(lines) <= CODE_LINES_TO_SETTLE:
                return
            done = "".join(line + "\n" for line in lines[:-1])
            strips = self._render((self._reopen or opener + "\n") + done, width)[self._trim_top : -1]
            self._settle(strips, self._settled + (len(opener) + 1 if opener else 0) + len(done))
            self._joined, self._reopen = True, self._reopen or opener + "\n"
        elif PLAIN_LINE.fullmatch(tail) and (self._joined or not BLOCK_START.match(tail)):
            # A plain paragraph: its wrapped lines but the last are final. It is continued from the start of a
            # line that renders as paragraph text again (not one that would start a list, say).
            if len(self._tail_strips) <= PARAGRAPH_LINES_TO_SETTLE:
                return
            starts = wrapped_starts(tail, [strip.text for strip in self._tail_strips])
            if starts is None:
                return
            cut = next((k for k in range(len(starts) - 1, 0, -1) if not BLOCK_START.match(tail, starts[k])), 0)
            if not cut:
                return
            self._settle(self._tail_strips[:cut], self._settled + starts[cut])
            self._joined = True
        else:
            return
        self._tail_strips = self._render_continued(self.text[self._settled :], width)

    def rendered_lines(self) -> list[str]:
        """The text as drawn (for tests)."""
        return [strip.text.rstrip() if strip else "" for strip in (self._line(y) for y in range(self._lines))]
