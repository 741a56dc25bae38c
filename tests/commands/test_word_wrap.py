"""The line chat's word wrap (Ollama's): what a terminal shows for a reply streamed in pieces. pyte is the
terminal: it plays the cursor moves and clears as a real one does."""

from __future__ import annotations

import pyte
from hypothesis import given
from hypothesis import strategies as st

from localchat.commands.word_wrap import WordWrap

TEXT = (
    "The sea is a vast and mysterious realm that exists beyond the boundaries of our planet, "
    "home to whales, squid and plankton.\nA new line\tand a tab; then "
    "averyveryverylongwordthatcannotfitonanyline at all."
)


def screen_of(pieces: list[str], width: int) -> list[str]:
    """The lines a `width`-column terminal shows once `pieces` went through the wrap, in order."""
    screen = pyte.Screen(width, 200)
    stream = pyte.Stream(screen)
    wrap = WordWrap(width)
    for piece in pieces:
        stream.feed(wrap.feed(piece).replace("\n", "\r\n"))  # the terminal's ONLCR
    return [line.rstrip() for line in screen.display if line.strip()]


def test_no_word_is_cut_at_the_edge() -> None:
    pieces = [TEXT[i : i + 3] for i in range(0, len(TEXT), 3)]  # as tokens come
    lines = screen_of(pieces, 30)
    long = "averyveryverylongwordthatcannotfitonanyline"
    shown = [word for line in lines for word in line.split()]
    whole = [word for word in shown if word in TEXT.split()]
    assert whole == [word for word in TEXT.split() if word != long], lines  # every other word whole, in order
    assert "".join(word for word in shown if word not in whole) == long  # the one longer than a line is cut
    assert all(len(line) < 30 for line in lines)  # the last column stays free
    assert lines[:2] == ["The sea is a vast and", "mysterious realm that exists"]
    assert lines[5].startswith("A new line      and")  # a line break and a tab as the text has them


PIECES = st.sampled_from(["sea ", "whale", "s", " ", "\n", "海", "\t", "ab", "."])


@given(st.lists(PIECES, max_size=60), st.integers(8, 40))
def test_the_screen_holds_the_text_whatever_the_pieces_and_width(pieces: list[str], width: int) -> None:
    text = "".join(pieces)
    shown = screen_of(pieces, width)
    assert "".join("".join(shown).split()) == "".join(text.split())  # nothing lost, nothing doubled
    assert all(pyte_width(line) < width for line in shown), shown


def pyte_width(line: str) -> int:
    from wcwidth import wcswidth

    return max(wcswidth(line), 0)


def test_a_narrower_terminal_wraps_what_follows_at_its_width() -> None:
    wrap = WordWrap(60)
    wrap.feed("The sea is a vast and ")
    wrap.resize(20)
    out = wrap.feed("mysterious realm that exists")
    assert out.startswith("\n") and out.count("\n") == 2  # past the new edge already: a new line, then words
