"""Word wrap for a reply streamed to a terminal, as Ollama's `run` does it: each character is shown as it comes;
when the line is full, the word being written is taken back and starts the next line, so no word is cut at the
terminal's edge. The last column stays free: a terminal holds a line that reaches its edge in a pending wrap,
where moving the cursor back would miss the word by one."""

from __future__ import annotations

from rich.cells import cell_len

TAB = 8
BACK_ONE_WORD = "\x1b[{}D\x1b[K"  # cursor back over the word, then clear the rest of the line


class WordWrap:
    def __init__(self, width: int) -> None:
        self.resize(width)
        self.column = 0
        self.word = ""  # the letters since the last space on this line

    def resize(self, width: int) -> None:
        """The terminal's new width: what follows wraps at it (the terminal itself re-flows what it shows)."""
        self.limit = max(width - 1, 1)  # columns a line may take

    def feed(self, text: str) -> str:
        """What to write for `text` (already free of control characters, but for line breaks and tabs)."""
        out: list[str] = []
        for char in text:
            if char == "\n":
                self.column, self.word = 0, ""
                out.append(char)
                continue
            width = TAB - self.column % TAB if char == "\t" else cell_len(char)
            if self.column + width > self.limit:
                if char in " \t":  # a space at the end of a line: the break itself
                    self.column, self.word = 0, ""
                    out.append("\n")
                    continue
                taken = cell_len(self.word)
                if self.word and taken <= self.limit // 2:  # a longer word is cut, as it could not fit anyway
                    out.append(BACK_ONE_WORD.format(taken) + "\n" + self.word)
                    self.column = taken
                else:
                    out.append("\n")
                    self.column, self.word = 0, ""
            out.append(char)
            self.column += width
            # a wide character (CJK) is a word of its own: lines may break before any of them
            self.word = "" if char in " \t" or width > 1 else self.word + char
        return "".join(out)
