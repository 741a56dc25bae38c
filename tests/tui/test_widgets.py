"""The message body on its own: a streamed reply renders block by block, repaints only what changed, lays out
only when its reserved lines are full, and ends as one document."""

from __future__ import annotations

from textual.app import App, ComposeResult

from localchat.store.db import Message
from localchat.tui.markdown_body import settled_end
from localchat.tui.widgets import MessageView


def message(content: str = "", status: str = "streaming") -> Message:
    return Message(1, 1, None, "assistant", content, "m", status, None, None, 0.0)


def test_the_settled_part_ends_at_the_last_blank_line_outside_code_fences() -> None:
    assert settled_end("one two") == 0  # no blank line yet
    assert settled_end("one\n\ntwo") == len("one\n\n")
    assert settled_end("a\n\nb\n\nc") == len("a\n\nb\n\n")
    assert settled_end("a\n\n```python\nx = 1\n\ny = 2") == len("a\n\n")  # inside a code block: not settled
    assert settled_end("```python\nx\n```\n\nafter") == len("```python\nx\n```\n\n")
    # From a settled point on (each frame searches only what came after the last settled block):
    assert settled_end("a\n\nb\n\nc", start=len("a\n\n")) == len("a\n\nb\n\n")
    assert settled_end("a\n\n```x\n\ny", start=len("a\n\n")) == len("a\n\n")
    # From inside a code block settled in parts (its fence line is before `start`):
    assert settled_end("x = 1\n\n```\n\nafter", in_fence=True) == len("x = 1\n\n```\n\n")


class OneMessage(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageView(message())


async def test_a_streamed_reply_shows_every_block_and_ends_as_one_document() -> None:
    # Each block settles on its own (a list alone renders with a leading blank line in Rich: trimmed).
    parts = ["# Title\n\nSome **bold** text ", "and more.\n\n", "- one\n- two\n\n", "```python\nx = 1\n", "```\n\nEnd."]
    text = "".join(parts)
    app = OneMessage()
    async with app.run_test(size=(80, 40)) as pilot:
        view = app.query_one(MessageView)
        view.start_stream(reserve=4)
        for part in parts:
            view.append(part)
            await pilot.pause()
        body = view.body
        shown = "\n".join(body.rendered_lines())
        for piece in ("Title", "Some bold text and more.", "• one", "• two", "x = 1", "End."):
            assert piece in shown
        assert "**" not in shown and "```" not in shown  # rendered as Markdown, not shown raw
        assert body.size.height % 4 == 0 and body.size.height >= len(body.rendered_lines())  # lines reserved
        stored = MessageView(message(text, "complete"))  # the same text opened from the database
        await app.mount(stored)
        await pilot.pause()
        assert body.rendered_lines() == stored.body.rendered_lines()  # streamed block by block = rendered whole
        view.finish(message(text, "complete"))
        await pilot.pause()
        assert body.text == text and not body.streaming
        assert body.size.height == len(body.rendered_lines())  # the reserve is given back
        assert body.rendered_lines() == stored.body.rendered_lines()


async def test_a_frame_that_fits_the_reserve_repaints_only_changed_lines_without_a_layout() -> None:
    app = OneMessage()
    async with app.run_test(size=(80, 40)) as pilot:
        view = app.query_one(MessageView)
        view.start_stream(reserve=8)
        view.append("First paragraph.\n\nSecond")
        await pilot.pause()
        body = view.body
        layouts, repaints = [], []
        body.refresh = lambda *regions, layout=False, **kw: (layouts if layout else repaints).append(regions)
        view.append(" paragraph grows")
        assert layouts == [] and len(repaints) == 1
        (region,) = repaints[0]
        assert region.height == 1 and region.y == 2  # the one line that changed: line 3 (after the blank)
        view.append("\n\n" + "\n\n".join(f"line {i}" for i in range(10)))
        assert layouts  # past the reserved lines: now a layout


async def test_model_text_is_inert_in_the_body() -> None:
    app = OneMessage()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(MessageView)
        view.finish(message("clip \x1b]52;c;aGk=\x07 and [b]markup[/b] and [link](http://x)", "complete"))
        await pilot.pause()
        shown = "\n".join(view.body.rendered_lines())
        assert "\x1b" not in shown and "␛]52;c;aGk=" in shown and "[b]markup[/b]" in shown
        assert all(
            segment.style is None or segment.style.link is None
            for line in view.body._settled_strips
            for segment in line
        )


async def test_a_long_code_block_or_paragraph_costs_each_frame_only_its_last_lines(monkeypatch) -> None:
    """A block that grows long settles in parts: a frame renders a bounded amount of text, however long the
    code block or paragraph gets (it rendered the whole block again each frame: O(n²) over a reply); the
    streamed reply still reads exactly as the same text rendered whole."""
    from localchat.tui.markdown_body import MarkdownBody

    line = "    return x * {}  # a comment long enough to wrap at this width\n"
    code = "".join(f"def f{i}(x):\n" + line.format(i) for i in range(60))
    paragraph = " + ".join("x" * (i % 9 + 1) for i in range(400)) + "."  # some wrapped lines start with "+"
    items = "".join(f"- item {i} with **bold** text\n" for i in range(20))
    text = f"# Title\n\nIntro.\n\n```python\n{code}```\n\n{paragraph}\n\n{items}\nThe end."
    rendered: list[int] = []
    render = MarkdownBody._render
    monkeypatch.setattr(MarkdownBody, "_render", lambda self, t, w: rendered.append(len(t)) or render(self, t, w))
    app = OneMessage()
    async with app.run_test(size=(80, 40)) as pilot:
        view = app.query_one(MessageView)
        view.start_stream(reserve=4)
        await pilot.pause()
        worst = {"code": 0, "paragraph": 0}
        for start in range(0, len(text), 7):
            rendered.clear()
            view.append(text[start : start + 7])
            where = "code" if start < text.index(paragraph) else "paragraph" if start < text.index(items) else None
            if where:
                worst[where] = max(worst[where], sum(rendered))
            if start % 140 == 0:
                await pilot.pause()
        await pilot.pause()
        assert worst["code"] < len(code) / 4 and worst["paragraph"] < len(paragraph) / 4, worst
        stored = MessageView(message(text, "complete"))
        await app.mount(stored)
        await pilot.pause()
        assert view.body.rendered_lines() == stored.body.rendered_lines()


class Sent(App[None]):
    def __init__(self, role: str, content: str) -> None:
        super().__init__()
        self.sent = Message(1, 1, None, role, content, None, "complete", None, None, 0.0)

    def compose(self) -> ComposeResult:
        yield MessageView(self.sent)


async def test_what_a_person_wrote_is_shown_as_written_and_a_reply_as_markdown() -> None:
    """Found in tmux: code pasted without a fence showed as one line ("def add(a, b): return a + b"), as Markdown
    joins an indented line to the paragraph before it. A user's (or a system prompt's) text keeps its lines and
    indentation, inert; a reply is Markdown."""
    text = "def add(a, b):\n    return a + b\n\n**Rename** add to plus. \x1b[31m"
    for role in ("user", "system"):
        app = Sent(role, text)
        async with app.run_test(size=(80, 20)) as pilot:
            await pilot.pause()
            shown = [line.rstrip() for line in app.query_one(MessageView).body.rendered_lines()]
            assert shown == ["def add(a, b):", "    return a + b", "", "**Rename** add to plus. ␛[31m"], role
    app = Sent("assistant", text)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        shown = [line.rstrip() for line in app.query_one(MessageView).body.rendered_lines()]
        assert "def add(a, b): return a + b" in shown and "Rename add to plus. ␛[31m" in shown
