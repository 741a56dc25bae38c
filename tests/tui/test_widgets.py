"""The message widget on its own: a long streamed reply is laid out in segments and ends as one Markdown."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Markdown

from localchat.store.db import Message
from localchat.tui.widgets import SEGMENT_CHARS, MessageView, segment_cut


def message(content: str = "", status: str = "streaming") -> Message:
    return Message(1, 1, None, "assistant", content, "m", status, None, None, 0.0)


def test_segments_end_at_a_blank_line_outside_code_fences() -> None:
    long = "a" * SEGMENT_CHARS
    assert segment_cut("short", "one\n\ntwo") is None  # not long yet
    assert segment_cut(long, "one\n\ntwo") == len("one\n\n")
    assert segment_cut(long, "one two") is None  # no blank line to end at
    assert segment_cut("```python\n" + long, "x = 1\n\ny = 2") is None  # inside a code block
    assert segment_cut("```python\nx\n```\n" + long, "one\n\ntwo") == len("one\n\n")


class OneMessage(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageView(message())


async def test_a_long_streamed_reply_is_segmented_then_rendered_whole() -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 60 + "\n\n" for i in range(30)]
    app = OneMessage()
    async with app.run_test(size=(100, 40)) as pilot:
        view = app.query_one(MessageView)
        for paragraph in paragraphs:
            await view.append(paragraph)
            await pilot.pause()
        segments = list(view.query(".body"))
        assert len(segments) >= 4  # ≈ 10,000 characters in segments of ≈ 2,000
        shown = "".join(segment.source for segment in segments if isinstance(segment, Markdown))
        assert shown == "".join(paragraphs)  # nothing lost or doubled at the cuts
        await view.finish(message("".join(paragraphs), "complete"))
        assert len(view.query(".body")) == 1 and view.body.source == "".join(paragraphs)
