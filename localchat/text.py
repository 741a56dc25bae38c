"""Text from a model made safe to show in a terminal."""

from __future__ import annotations

import re

# C0 and C1 control characters except tab and newline: ESC starts CSI/OSC sequences (OSC 52 writes the
# clipboard, OSC 8 makes links), so model output must never reach the terminal with them live.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """Replace control characters with visible stand-ins (ESC → "␛", others → "\\xNN")."""
    return _CONTROL.sub(lambda m: "␛" if m.group() == "\x1b" else f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """`inert`, with line breaks and tabs as spaces: for messages promised as one line."""
    return " ".join(inert(text).split())
