"""Run as a process: compare the engine's incremental counts with a full render + tokenize of every prefix,
over a random walk of chat edits on one real model. Prints one JSON line: the number of checks, the mismatches.

(A process of its own, because it drives LlamaRunner directly: the test process never imports llama_cpp.)
"""

from __future__ import annotations

import ctypes
import json
import random
import sys

from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
from localchat.models.gguf import read_gguf

PIECES = [
    "Hello",
    " there",
    "!",
    "\n",
    "\n\n",
    "  ",
    "naïve café",
    "日本語",
    "🙂",
    "```python\nprint('x')\n```",
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<bos>",
    " trailing ",
    "1234567890",
    "end.",
]


def text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def reference(runner: LlamaRunner, messages: list[ChatMessage]) -> tuple[list[int], int]:
    """What the counter replaced: every prefix rendered and tokenized in full."""
    shares, previous = [], 0
    for end in range(1, len(messages) + 1):
        count = len(runner.prompt_tokens(runner.render(messages[:end], add_generation_prompt=False)))
        shares.append(count - previous)
        previous = count
    return shares, len(runner.chat_tokens(messages)) - previous


def main(model: str, seed: int, steps: int) -> None:
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), ctypes.create_string_buffer(2))
    rng = random.Random(seed)
    chats: list[list[ChatMessage]] = [[], [ChatMessage("system", "Be brief.")]]
    checks, mismatches = 0, []
    for _ in range(steps):
        chat = rng.choice(chats)
        action = rng.random()
        if action < 0.45 or len(chat) < 2:  # a new message (Gemma's template wants user/assistant in turn)
            role = "user" if not chat or chat[-1].role != "user" else "assistant"
            chat.append(ChatMessage(role, text(rng)))
        elif action < 0.7:  # the draft typed on
            chat[-1] = ChatMessage(chat[-1].role, chat[-1].content + rng.choice(PIECES))
        elif action < 0.85:  # an edit further up
            index = rng.randrange(len(chat))
            chat[index] = ChatMessage(chat[index].role, text(rng))
        else:  # back to an earlier point (regenerate, or a shorter branch)
            del chat[rng.randrange(1, len(chat)) :]
        if not chat:
            continue
        counted = runner.measure(chat)
        expected = reference(runner, chat)
        checks += 1
        if (list(counted.per_message), counted.generation_prompt) != expected:
            mismatches.append({"messages": [m.as_dict() for m in chat], "counted": counted.per_message})
    runner.close()
    print(json.dumps({"checks": checks, "mismatches": mismatches[:3], "mismatch_count": len(mismatches)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
