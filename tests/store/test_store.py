"""The store: exact schema from a blank database, branches, search, recovery after a kill, two instances."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from localchat.store.db import StoreError, open_database
from localchat.store.migrations import MIGRATIONS

EXPECTED_TABLES = {
    "conversations": [
        "id",
        "title",
        "system_prompt",
        "sampling",
        "n_ctx",
        "head_id",
        "created_at",
        "updated_at",
        "thinking",
    ],
    "messages": [
        "id",
        "conversation_id",
        "parent_id",
        "role",
        "content",
        "model",
        "status",
        "stats",
        "writer_pid",
        "created_at",
        "reasoning",
    ],
    "prompts": ["id", "name", "text", "created_at"],
    "settings": ["key", "value"],
    "arena_battles": [
        "id",
        "prompt",
        "history",
        "model_a",
        "settings_a",
        "reply_a",
        "stats_a",
        "model_b",
        "settings_b",
        "reply_b",
        "stats_b",
        "first",
        "vote",
        "source",
        "created_at",
        "voted_at",
    ],
    "_migrations": ["name", "applied_at"],
}


def test_blank_database_reaches_the_exact_schema(tmp_path: Path) -> None:
    store = open_database(tmp_path / "db.sqlite")
    tables = {r[0] for r in store.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == set(EXPECTED_TABLES)
    for table, columns in EXPECTED_TABLES.items():
        assert [r[1] for r in store.rows(f"PRAGMA table_info({table})")] == columns
    assert [r[0] for r in store.rows("SELECT name FROM _migrations")] == [name for name, _ in MIGRATIONS]
    assert store.rows("PRAGMA journal_mode")[0][0] == "wal"
    store.close()
    assert open_database(tmp_path / "db.sqlite").rows("SELECT count(*) FROM _migrations")[0][0] == len(MIGRATIONS)


def test_branches_survive_edits_and_regenerations(tmp_path: Path) -> None:
    store = open_database(tmp_path / "db.sqlite")
    chat = store.create_conversation(system_prompt="Be brief.")
    question = store.add_message(chat.id, "user", "Hi", None)
    first = store.add_message(chat.id, "assistant", "Hello!", question.id, model="smol")
    regenerated = store.add_message(chat.id, "assistant", "Hey!", question.id, model="other")
    assert [m.content for m in store.branch(chat.id)] == ["Hi", "Hey!"]
    assert [m.id for m in store.siblings(first.id)] == [first.id, regenerated.id]
    edited = store.add_message(chat.id, "user", "Hello?", None)  # edit of the first question: a new branch
    assert [m.content for m in store.branch(chat.id)] == ["Hello?"]
    store.update_conversation(chat.id, head_id=first.id)  # the old branch is still there
    assert [m.content for m in store.branch(chat.id)] == ["Hi", "Hello!"]
    assert store.message(first.id).model == "smol" and edited.parent_id is None


def test_search_and_order(tmp_path: Path) -> None:
    store = open_database(tmp_path / "db.sqlite")
    a = store.create_conversation("Gardening")
    b = store.create_conversation("Cooking")
    store.add_message(a.id, "user", "How do I grow 100% organic tomatoes_?", None)
    assert [c.title for c in store.conversations()] == ["Gardening", "Cooking"]  # newest activity first
    assert [c.title for c in store.conversations("TOMATOES")] == ["Gardening"]
    assert [c.title for c in store.conversations("100%")] == ["Gardening"]
    assert [c.title for c in store.conversations("cook")] == ["Cooking"]
    store.delete_conversation(a.id)
    assert store.rows("SELECT count(*) FROM messages")[0][0] == 0
    assert [c.id for c in store.conversations()] == [b.id]


def test_threads_sharing_the_store_never_interleave_transactions(tmp_path: Path) -> None:
    """The app's UI thread and reply workers share one Store: every call must be whole (it raised
    'cannot commit - no transaction is active' and lost messages when they shared the bare connection)."""
    store = open_database(tmp_path / "db.sqlite")
    chat = store.create_conversation()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            parent = None
            for i in range(150):
                message = store.add_message(chat.id, "user", f"{worker}-{i}", parent)
                store.update_message(message.id, f"{worker}-{i}.", status="complete")
                store.branch(chat.id)
                store.set_setting(f"draft:{worker}", i)
                parent = message.id
        except BaseException as exc:  # any failure in a thread is the finding
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.rows("SELECT count(*) FROM messages WHERE content LIKE '%.'")[0][0] == 600
    assert store.rows("PRAGMA integrity_check")[0][0] == "ok"


def test_reply_of_a_killed_process_is_kept_and_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from localchat.store.db import open_database
        store = open_database(Path({str(path)!r}))
        chat = store.create_conversation()
        question = store.add_message(chat.id, "user", "Tell me a story", None)
        reply = store.add_message(chat.id, "assistant", "", question.id, status="streaming")
        store.update_message(reply.id, "Once upon a time")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert subprocess.run([sys.executable, "-c", script]).returncode == -9
    store = open_database(path)
    assert store.recover_interrupted() == 1
    chat = store.conversations()[0]
    reply = store.branch(chat.id)[-1]
    assert reply.content == "Once upon a time" and reply.status == "interrupted"


def test_a_reply_another_live_instance_streams_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from localchat.store.db import open_database
            store = open_database(Path({str(path)!r}))
            chat = store.create_conversation()
            store.add_message(chat.id, "assistant", "streaming...", None, status="streaming")
            print("ready", flush=True)
            for i in range(200):  # keeps writing while the other instance reads and writes too
                store.create_conversation(f"c{{i}}")
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "ready"
    store = open_database(path)
    for i in range(200):
        store.save_prompt(f"p{i}", "text")
    assert store.recover_interrupted() == 0
    writer.communicate("\n", timeout=30)
    assert writer.returncode == 0
    assert store.rows("SELECT count(*) FROM conversations")[0][0] == 201
    assert store.rows("PRAGMA integrity_check")[0][0] == "ok"


def test_corrupt_or_foreign_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="damaged or not a localchat database"):
        open_database(path)
    assert path.read_bytes() == before


def test_locked_database_gives_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    open_database(path).close()
    blocker = sqlite3.connect(path)
    blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    import localchat.store.db as db

    original = db.BUSY_TIMEOUT_MS
    db.BUSY_TIMEOUT_MS = 200
    try:
        with pytest.raises(StoreError, match="locked"):
            open_database(path).create_conversation()
    finally:
        db.BUSY_TIMEOUT_MS = original
        blocker.rollback()


def test_instances_opening_a_new_database_at_once_all_get_it(tmp_path: Path) -> None:
    """Two apps started together on a fresh machine: each opens (and would migrate) the same new database. One
    was told it was 'locked by another program', or found the tables half made."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from localchat.store.db import open_database
        while time.time() < {time.time() + 1.5}:
            pass
        store = open_database(Path(sys.argv[1]))
        store.create_conversation("from " + sys.argv[2])
        """
    )
    database = tmp_path / "db.sqlite"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(database), str(n)], stderr=subprocess.PIPE, text=True)
        for n in range(6)
    ]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in processes]
    assert all(code == 0 for code, _ in results), results
    store = open_database(database)
    assert len(store.conversations()) == 6
    assert [r[0] for r in store.rows("SELECT name FROM _migrations")] == [name for name, _ in MIGRATIONS]


def test_a_database_from_before_reasoning_is_migrated_with_its_chats(tmp_path: Path) -> None:
    """A database made by the first schema (001 only, as the app shipped it) with a chat in it."""
    path = tmp_path / "db.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    name, sql = MIGRATIONS[0]
    connection.executescript(sql)
    connection.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    connection.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 'Old', 0, 0)")
    connection.execute(
        "INSERT INTO messages (conversation_id, role, content, created_at) VALUES (1, 'user', 'Hello', 0)"
    )
    connection.commit()
    connection.close()
    store = open_database(path)
    assert [r[0] for r in store.rows("SELECT name FROM _migrations ORDER BY name")] == [n for n, _ in MIGRATIONS]
    chat = store.conversation(1)
    assert chat.title == "Old" and chat.thinking is None
    (message,) = store.rows("SELECT id FROM messages")
    assert store.message(message[0]).content == "Hello" and store.message(message[0]).reasoning is None
    store.update_conversation(1, thinking=False)
    assert store.conversation(1).thinking is False
