"""The model's vocabulary through llama.cpp: text to tokens and back, and which tokens are special."""

from __future__ import annotations

import codecs
import ctypes
from collections.abc import Sequence

import llama_cpp as ll

from localchat.engine.protocol import Token, Tokens

SPECIAL_ATTRIBUTES = ll.LLAMA_TOKEN_ATTR_CONTROL | ll.LLAMA_TOKEN_ATTR_USER_DEFINED


class Vocabulary:
    def __init__(self, vocab: ll.llama_vocab_p) -> None:
        self.vocab = vocab

    def is_special(self, token: int) -> bool:
        """A control or user-defined token (<|im_start|>, <think> in Qwen3...): llama.cpp splits text at them."""
        return bool(ll.llama_token_get_attr(self.vocab, token) & SPECIAL_ATTRIBUTES)

    def special_piece(self, token: int) -> str:
        return self.piece(token, special=True).decode("utf-8", errors="replace") if token >= 0 else ""

    def piece(self, token: int, special: bool = False, buffer: ctypes.Array | None = None) -> bytes:
        buffer = buffer or ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, special)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, special)
        return buffer.raw[:n]

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (ll.llama_token * capacity)()
        n = ll.llama_tokenize(self.vocab, data, len(data), tokens, capacity, add_special, parse_special)
        if n < 0:
            capacity = -n
            tokens = (ll.llama_token * capacity)()
            n = ll.llama_tokenize(self.vocab, data, len(data), tokens, capacity, add_special, parse_special)
        return tokens[:n]

    def single_special_tokens(self, texts: Sequence[str]) -> frozenset[int]:
        found = set()
        for text in texts:
            tokens = self.tokenize(text, parse_special=True)
            if len(tokens) == 1 and self.piece(tokens[0]) != text.encode():
                found.add(tokens[0])
        return frozenset(found)

    def split(self, text: str) -> Tokens:
        """`text` as tokens with their pieces: each piece is what its bytes add to the text so far, so the
        pieces joined give the text back (a character split over two tokens shows on the second)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        result = []
        for token in self.tokenize(text, parse_special=True):
            raw = self.piece(token, special=True)
            result.append(Token(token, decoder.decode(raw), raw, self.is_special(token)))
        return Tokens(tuple(result))

    def continuation_tokens(self, text: str) -> int | None:
        """Tokens of `text` as it is tokenized after a prompt: known only when it starts with a special token
        (llama.cpp splits at those first; one that strips the whitespace before it would reach back)."""
        if not text:
            return 0
        tokens = self.tokenize(text, parse_special=True)
        if not tokens:
            return None
        if (
            not self.is_special(tokens[0])
            or ll.llama_token_get_attr(self.vocab, tokens[0]) & ll.LLAMA_TOKEN_ATTR_LSTRIP
        ):
            return None
        if not text.encode("utf-8").startswith(self.piece(tokens[0], special=True)):
            return None
        return len(tokens)
