"""The database: opened in WAL mode with a busy timeout, so two localchat instances can share it safely.

Within one process the UI thread and reply workers share one connection; a lock makes each call (and each
transaction) whole, since a connection's transactions interleave across threads otherwise.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localchat.errors import LocalchatError
from localchat.store.migrations import migrate

BUSY_TIMEOUT_MS = 5000


class StoreError(LocalchatError):
    pass


NEW_CHAT = "New chat"  # a chat's title until its first message names it


@dataclass
class Conversation:
    id: int
    title: str
    system_prompt: str | None
    sampling: dict[str, Any] | None
    n_ctx: int | None
    head_id: int | None
    created_at: float
    updated_at: float
    thinking: bool | None = None  # a thinking model's switch for this chat; None: the model's default


@dataclass
class Message:
    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    model: str | None
    status: str
    stats: dict[str, Any] | None
    writer_pid: int | None
    created_at: float
    reasoning: str | None = None  # a thinking model's reasoning before this answer (never sent back to it)


@dataclass(frozen=True)
class NewBattle:
    prompt: str
    history: list[dict[str, str]]  # the earlier {role, content} messages sent with the prompt
    model_a: str
    settings_a: dict[str, Any]
    model_b: str
    settings_b: dict[str, Any]
    first: str  # "a" or "b": which was generated first
    source: str  # "app" or "cli"


def open_database(path: Path) -> Store:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _use_wal(connection)
        connection.execute("PRAGMA foreign_keys = ON")
        migrate(connection)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreError(f"the database {path} is locked by another program: close it and try again") from None
        raise StoreError(
            f"the database {path} is damaged or not a localchat database ({text}): move it aside to start fresh "
            "(nothing was changed)"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot open the database {path}: {exc.strerror}") from None
    return Store(connection)


def _use_wal(connection: sqlite3.Connection) -> None:
    """WAL mode; switching a new database to it needs a moment alone with it, and SQLite answers "locked" at once
    (no busy wait) while another instance is doing the same: try again for the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _fetch_one(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self._fetch(sql, args)
        return rows[0] if rows else None

    # --- conversations ------------------------------------------------------------------------------------

    def create_conversation(self, title: str = NEW_CHAT, system_prompt: str | None = None) -> Conversation:
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, system_prompt, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (title, system_prompt, now, now),
            )
        return self.conversation(cursor.lastrowid)

    def conversation(self, conversation_id: int) -> Conversation:
        row = self._fetch_one("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise StoreError(f"no conversation {conversation_id}")
        return _conversation(row)

    def conversations(self, search: str | None = None) -> list[Conversation]:
        """Newest first; with `search`, those whose title or any message contains it (case-insensitive)."""
        if not search:
            rows = self._fetch("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC")
        else:
            pattern = f"%{_escape_like(search)}%"
            rows = self._fetch(
                """SELECT * FROM conversations c WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (
                       SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content LIKE ? ESCAPE '\\')
                   ORDER BY updated_at DESC, id DESC""",
                (pattern, pattern),
            )
        return [_conversation(row) for row in rows]

    def update_conversation(self, conversation_id: int, **fields: Any) -> None:
        allowed = {"title", "system_prompt", "sampling", "n_ctx", "head_id", "thinking"}
        if set(fields) - allowed:
            raise ValueError(f"unknown fields {set(fields) - allowed}")
        if "sampling" in fields and fields["sampling"] is not None:
            fields["sampling"] = json.dumps(fields["sampling"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._transaction() as db:
            db.execute(
                f"UPDATE conversations SET {assignments}, updated_at = ? WHERE id = ?",
                (*fields.values(), time.time(), conversation_id),
            )

    def delete_conversation(self, conversation_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # --- messages -----------------------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        parent_id: int | None,
        model: str | None = None,
        status: str = "complete",
    ) -> Message:
        """Append a message under `parent_id` and make it the conversation's head (the branch shown)."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                """INSERT INTO messages
                   (conversation_id, parent_id, role, content, model, status, writer_pid, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (conversation_id, parent_id, role, content, model, status, os.getpid(), now),
            )
            db.execute(
                "UPDATE conversations SET head_id = ?, updated_at = ? WHERE id = ?",
                (cursor.lastrowid, now, conversation_id),
            )
        return self.message(cursor.lastrowid)

    def update_message(
        self,
        message_id: int,
        content: str,
        status: str | None = None,
        stats: dict[str, Any] | None = None,
        reasoning: str | None = None,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET content = ?, status = COALESCE(?, status), stats = COALESCE(?, stats), "
                "reasoning = COALESCE(?, reasoning) WHERE id = ?",
                (content, status, json.dumps(stats) if stats is not None else None, reasoning or None, message_id),
            )

    def message(self, message_id: int) -> Message:
        row = self._fetch_one("SELECT * FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise StoreError(f"no message {message_id}")
        return _message(row)

    def branch(self, conversation_id: int) -> list[Message]:
        """The messages from the root to the conversation's head, oldest first."""
        head = self.conversation(conversation_id).head_id
        if head is None:
            return []
        rows = self._fetch(
            """WITH RECURSIVE path(id) AS (
                   SELECT ? UNION ALL SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id
                   WHERE m.parent_id IS NOT NULL)
               SELECT messages.* FROM messages JOIN path ON messages.id = path.id ORDER BY messages.id""",
            (head,),
        )
        return [_message(row) for row in rows]

    def siblings(self, message_id: int) -> list[Message]:
        """Other versions of a message (edits and regenerations share its parent)."""
        message = self.message(message_id)
        rows = self._fetch(
            "SELECT * FROM messages WHERE conversation_id = ? AND parent_id IS ? AND role = ? ORDER BY id",
            (message.conversation_id, message.parent_id, message.role),
        )
        return [_message(row) for row in rows]

    def recover_interrupted(self) -> int:
        """Replies still marked streaming by a process that is gone were cut off by a crash or a kill: keep
        their text, mark them interrupted. A reply another running instance is streaming is left alone."""
        rows = self._fetch("SELECT id, writer_pid FROM messages WHERE status = 'streaming'")
        dead = [row["id"] for row in rows if not _alive(row["writer_pid"])]
        with self._transaction() as db:
            db.executemany("UPDATE messages SET status = 'interrupted' WHERE id = ?", [(i,) for i in dead])
        return len(dead)

    # --- prompts and settings -----------------------------------------------------------------------------

    def prompts(self) -> list[tuple[str, str]]:
        return [(r["name"], r["text"]) for r in self._fetch("SELECT name, text FROM prompts ORDER BY name")]

    def save_prompt(self, name: str, text: str) -> None:
        if not name.strip():
            raise StoreError("a system prompt needs a name")
        with self._transaction() as db:
            db.execute(
                "INSERT INTO prompts (name, text, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET text = excluded.text",
                (name.strip(), text, time.time()),
            )

    def delete_prompt(self, name: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM prompts WHERE name = ?", (name,))

    def setting(self, key: str, default: Any = None) -> Any:
        row = self._fetch_one("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # --- arena battles (chat/arena.py) ----------------------------------------------------------------------

    def add_battle(self, battle: NewBattle) -> int:
        """A battle's row as it starts (no replies yet, no vote): a quit mid-reply keeps its prompt."""
        with self._transaction() as db:
            cursor = db.execute(
                """INSERT INTO arena_battles (prompt, history, model_a, settings_a, model_b, settings_b, first,
                   source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    battle.prompt,
                    json.dumps(battle.history),
                    battle.model_a,
                    json.dumps(battle.settings_a),
                    battle.model_b,
                    json.dumps(battle.settings_b),
                    battle.first,
                    battle.source,
                    time.time(),
                ),
            )
        return cursor.lastrowid

    def save_battle_reply(self, battle_id: int, side: str, text: str, stats: dict[str, Any]) -> None:
        if side not in ("a", "b"):
            raise ValueError(f"no side {side!r}")
        with self._transaction() as db:
            db.execute(
                f"UPDATE arena_battles SET reply_{side} = ?, stats_{side} = ? WHERE id = ?",
                (text, json.dumps(stats), battle_id),
            )

    def vote_battle(self, battle_id: int, vote: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE arena_battles SET vote = ?, voted_at = ? WHERE id = ?", (vote, time.time(), battle_id))

    def battles(self, voted: bool = True) -> list[dict[str, Any]]:
        """The battles, oldest first (with `voted`, only those with a vote), their JSON fields decoded."""
        rows = self._fetch(
            "SELECT * FROM arena_battles" + (" WHERE vote IS NOT NULL" if voted else "") + " ORDER BY id"
        )
        decoded = []
        for row in rows:
            data = dict(row)
            for name in ("history", "settings_a", "settings_b", "stats_a", "stats_b"):
                data[name] = json.loads(data[name]) if data[name] else None
            decoded.append(data)
        return decoded

    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self._fetch(sql, args)


def _alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False  # our own earlier run, or unknown: nothing streams it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conversation(row: sqlite3.Row) -> Conversation:
    data = dict(row)
    data["sampling"] = json.loads(data["sampling"]) if data["sampling"] else None
    data["thinking"] = None if data["thinking"] is None else bool(data["thinking"])
    return Conversation(**data)


def _message(row: sqlite3.Row) -> Message:
    data = dict(row)
    data["stats"] = json.loads(data["stats"]) if data["stats"] else None
    return Message(**data)
