"""What the app writes to a real terminal (a pty): text from the database, a model or a file stays inert."""

from __future__ import annotations

import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from localchat.config import paths
from localchat.store.db import open_database

HOSTILE = "\x1b]52;c;aGVsbG8=\x07\x1b[2J\x9b31m"  # OSC 52 (writes the clipboard), clear screen, C1 CSI


def run_in_pty(args: list[str], until: bytes, timeout: float = 60.0) -> bytes:
    """Start localchat on a pty of 120×35, read what it writes until `until` shows, then Ctrl+Q."""
    controller, terminal = pty.openpty()
    fcntl_size = struct.pack("HHHH", 35, 120, 0, 0)
    import fcntl

    fcntl.ioctl(terminal, termios.TIOCSWINSZ, fcntl_size)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "35"}
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env,
        start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + timeout
    quit_at = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    output += os.read(controller, 65536)
                except OSError:
                    break
            if quit_at is None and until in output:
                quit_at = time.monotonic()
                time.sleep(0.5)  # let it finish the frame
                os.write(controller, b"\x11")  # Ctrl+Q
            if process.poll() is not None and not ready:
                break
        assert until in output, output[-2000:]
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        os.close(controller)
    return output


def test_hostile_text_in_a_chat_reaches_the_terminal_inert(home: Path, model_path: Path) -> None:
    store = open_database(paths().ensure().database)
    chat = store.create_conversation(f"[b]Title[/b]{HOSTILE}")
    question = store.add_message(chat.id, "user", f"asked {HOSTILE}", None)
    answer = f"Answer {HOSTILE} [link=https://x]here[/link]"
    reply = store.add_message(chat.id, "assistant", answer, question.id, "m[/i]")
    store.update_message(reply.id, answer, status="error", stats={"error": f"engine said {HOSTILE}"})
    store.close()
    output = run_in_pty(["-m", str(model_path)], until="Answer ␛]52".encode())
    assert b"\x1b]52" not in output  # no clipboard write
    assert "\x9b".encode() not in output and b"\x9b31m" not in output
    assert b"\x1b[2J" not in output
    assert "[b]Title[/b]␛]52".encode() in output  # the title as typed, markup shown, not applied
    assert "engine said ␛]52".encode() in output
