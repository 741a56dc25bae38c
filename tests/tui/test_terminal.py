"""The app on a real terminal (a pty), as people run it: what it writes there, and two instances at once."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from localchat.config import paths
from localchat.store.db import open_database

HOSTILE = "\x1b]52;c;aGVsbG8=\x07\x1b[2J\x9b31m"  # OSC 52 (writes the clipboard), clear screen, C1 CSI


class TerminalApp:
    """`localchat ARGS` on a pty of 120×35: everything it writes is kept in `output`."""

    def __init__(self, *args: str) -> None:
        self.controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 35, 120, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localchat", *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env={**os.environ, "TERM": "xterm-256color"},
            start_new_session=True,
        )
        os.close(terminal)
        self.output = b""

    def read(self, seconds: float = 0.1) -> None:
        ready, _, _ = select.select([self.controller], [], [], seconds)
        if ready:
            with contextlib.suppress(OSError):  # the app has gone and the pty closed
                self.output += os.read(self.controller, 1 << 16)

    def wait_for(self, text: bytes, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline and self.process.poll() is None, self.output[-3000:]
            self.read()

    def type(self, keys: bytes) -> None:
        os.write(self.controller, keys)

    def quit(self, timeout: float = 10.0) -> int:
        self.type(b"\x11")  # Ctrl+Q
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read()
        try:
            return self.process.wait(timeout=1)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.controller)


def test_hostile_text_in_a_chat_reaches_the_terminal_inert(home: Path, model_path: Path) -> None:
    store = open_database(paths().ensure().database)
    chat = store.create_conversation(f"[b]Title[/b]{HOSTILE}")
    question = store.add_message(chat.id, "user", f"asked {HOSTILE}", None)
    answer = f"Answer {HOSTILE} [link=https://x]here[/link]"
    reply = store.add_message(chat.id, "assistant", answer, question.id, "m[/i]")
    store.update_message(reply.id, answer, status="error", stats={"error": f"engine said {HOSTILE}"})
    store.close()
    app = TerminalApp("-m", str(model_path))
    try:
        app.wait_for("Answer ␛]52".encode())
        app.wait_for("engine said ␛]52".encode())
        time.sleep(0.3)
        assert app.quit() == 0
    finally:
        app.close() if app.process.poll() is None else None
    output = app.output
    assert b"\x1b]52" not in output  # no clipboard write
    assert "\x9b".encode() not in output and b"\x9b31m" not in output
    assert b"\x1b[2J" not in output
    assert "[b]Title[/b]␛]52".encode() in output  # the title as typed, markup shown, not applied


def test_two_instances_on_one_database_send_at_the_same_moment(home: Path, model_path: Path) -> None:
    """Both messages and both replies stored, and neither app stuck: each quits at once afterwards. Started
    together too, on a new database (one of them was refused it as 'locked')."""
    paths().ensure().config_file.write_text("[sampling]\nmax_tokens = 40\n")  # short replies: two engines, 2 cores
    apps = [TerminalApp("-m", str(model_path)) for _ in range(2)]
    database = paths().database
    try:
        for app in apps:
            app.wait_for(b"threads")  # the status line once the model is loaded
        for app, name in zip(apps, (b"Ada", b"Bob"), strict=True):
            app.type(b"Hello, I am " + name + b"\r")  # as close together as two terminals allow
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for app in apps:
                app.read(0.05)
            with sqlite3.connect(database) as db:
                replies = db.execute(
                    "SELECT status FROM messages WHERE role = 'assistant' AND status != 'streaming'"
                ).fetchall()
            if len(replies) == 2:
                break
        codes = [app.quit() for app in apps]
    finally:
        for app in apps:
            if app.process.poll() is None:
                app.close()
    assert codes == [0, 0]
    with sqlite3.connect(database) as db:
        users = sorted(r[0] for r in db.execute("SELECT content FROM messages WHERE role = 'user'"))
        replies = db.execute("SELECT status, length(content) FROM messages WHERE role = 'assistant'").fetchall()
    assert users == ["Hello, I am Ada", "Hello, I am Bob"]
    assert len(replies) == 2 and all(status == "complete" and size > 0 for status, size in replies), replies
