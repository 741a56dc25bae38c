"""ChatSession's sampling-lab calls on the real engine and a real store: a reply scored afterwards, and
"regenerate from here" (a sibling reply that keeps the first tokens and generates only the rest)."""

from __future__ import annotations

from pathlib import Path

from localchat.chat.sampling import SamplingParams
from localchat.chat.session import ChatSession
from localchat.engine.client import EngineClient
from localchat.engine.protocol import Delta
from localchat.store.db import Message, open_database


class Collect:
    def __init__(self) -> None:
        self.reply: Message | None = None
        self.text = ""

    def started(self, reply: Message, prompt_tokens: int) -> None:
        self.reply = reply

    def delta(self, delta: Delta) -> None:
        self.text += delta.text


def test_regenerate_from_a_token_keeps_the_start_and_generates_the_rest(engine: EngineClient, tmp_path: Path) -> None:
    store = open_database(tmp_path / "chat.db")
    session = ChatSession(store, engine, default_sampling=SamplingParams(temperature=0, max_tokens=40))
    chat = store.create_conversation()
    session.send(chat.id, "Write a short poem about the sea.", Collect())
    original = store.branch(chat.id)[-1]
    scores = session.score(original.id, top_n=8)
    pieces = [t.token for t in scores.tokens]
    assert "".join(pieces) == original.content and len(pieces) == original.stats["completion_tokens"]

    prefix = "".join(pieces[:12])
    listener = Collect()
    session.regenerate_from(original.id, prefix, listener)
    again = store.branch(chat.id)[-1]
    assert again.id != original.id and again.parent_id == original.parent_id  # a sibling: the original is kept
    assert [m.id for m in store.siblings(again.id)] == [original.id, again.id]
    assert listener.text == again.content  # the kept start is shown first, then the rest streams
    # Greedy both times, from the same tokens: the same reply (40 new tokens reach further); the 12 kept tokens
    # are part of the prompt, which came from the KV cache (only its last token was evaluated again).
    assert again.content.startswith(original.content) and len(again.content) > len(original.content)
    assert again.stats["prompt_tokens"] == original.stats["prompt_tokens"] + 12
    assert again.stats["evaluated_prompt_tokens"] == 1

    store.update_conversation(chat.id, sampling={"temperature": 1.2, "seed": 5})
    session.regenerate_from(original.id, prefix, Collect())
    hot = store.branch(chat.id)[-1]
    assert hot.content.startswith(prefix) and hot.stats["sampling"]["temperature"] == 1.2
