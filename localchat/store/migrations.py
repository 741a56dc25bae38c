"""Append-only, named schema migrations. Never edit one that has shipped: add a new one."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_initial",
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL DEFAULT 'New chat',
            system_prompt TEXT,
            sampling TEXT,               -- JSON of SamplingParams fields; NULL: the global default
            n_ctx INTEGER,               -- NULL: the model's default
            head_id INTEGER,             -- the message at the tip of the branch being shown
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            model TEXT,                  -- which model wrote it (assistant messages)
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'interrupted', 'cancelled', 'error')),
            stats TEXT,                  -- JSON: tokens, ttft_s, tok/s, stop reason
            writer_pid INTEGER,          -- the process streaming it, while status = 'streaming'
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_by_parent ON messages(parent_id);
        CREATE TABLE prompts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL          -- JSON
        );
        """,
    ),
    (
        "002_reasoning",
        """
        ALTER TABLE messages ADD COLUMN reasoning TEXT;      -- a thinking model's reasoning, apart from its answer
        ALTER TABLE conversations ADD COLUMN thinking INTEGER;  -- 1 on, 0 off; NULL: the model's default
        """,
    ),
    (
        "003_arena",
        """
        CREATE TABLE arena_battles (
            id INTEGER PRIMARY KEY,
            prompt TEXT NOT NULL,
            history TEXT NOT NULL DEFAULT '[]',  -- JSON: the earlier messages both sides were sent with it
            model_a TEXT NOT NULL,               -- the contestant shown as A (left, or first in a terminal)
            settings_a TEXT NOT NULL,            -- JSON of its SamplingParams, its own seed included
            reply_a TEXT NOT NULL DEFAULT '',
            stats_a TEXT,                        -- JSON: tokens, ttft_s, tok/s, stop reason
            model_b TEXT NOT NULL,
            settings_b TEXT NOT NULL,
            reply_b TEXT NOT NULL DEFAULT '',
            stats_b TEXT,
            first TEXT NOT NULL CHECK (first IN ('a', 'b')),  -- which side was generated first
            vote TEXT CHECK (vote IN ('a', 'b', 'tie', 'bad')),  -- NULL: not voted (yet)
            source TEXT NOT NULL CHECK (source IN ('app', 'cli')),
            created_at REAL NOT NULL,
            voted_at REAL
        );
        CREATE INDEX arena_battles_voted ON arena_battles(vote);
        """,
    ),
]


def applied(connection: sqlite3.Connection) -> list[str]:
    connection.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [row[0] for row in connection.execute("SELECT name FROM _migrations ORDER BY name")]


def statements(sql: str) -> list[str]:
    """A script's statements, split where SQLite says one is complete (so `;` inside a string or trigger is safe)."""
    result, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            result.append(current.strip())
            current = ""
    if current.strip():
        result.append(current.strip())
    return result


def migrate(connection: sqlite3.Connection) -> list[str]:
    """Apply the pending migrations in one transaction (all or none); returns their names.

    Two instances may open a new database at the same moment: the write lock is taken first (BEGIN IMMEDIATE
    waits out the other's busy timeout), then what is pending is read again, so each migration runs once."""
    if {name for name, _ in MIGRATIONS} <= set(applied(connection)):
        return []
    connection.execute("BEGIN IMMEDIATE")
    try:
        done = set(applied(connection))
        ran = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            for statement in statements(sql):
                connection.execute(statement)
            connection.execute("INSERT INTO _migrations VALUES (?, julianday('now'))", (name,))
            ran.append(name)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
    return ran
