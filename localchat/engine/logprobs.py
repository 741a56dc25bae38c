"""Each generated token's log-probability and its likeliest rivals, read from the logits llama.cpp just computed
(the raw distribution: softmax of the logits, before any sampler reshapes it). numpy comes with llama_cpp."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

from localchat.engine.protocol import Candidate, TokenLogprob


class LogprobReader:
    def __init__(self, n_vocab: int, top_n: int, piece: Callable[[int], bytes]) -> None:
        self.n_vocab = n_vocab
        self.top_n = max(1, min(top_n, n_vocab))
        self.piece = piece
        self.entries: list[TokenLogprob] = []

    def read(self, logits: ctypes.POINTER(ctypes.c_float), token: int) -> None:  # type: ignore[valid-type]
        """Record `token`, sampled from `logits` (llama_get_logits_ith of the last decode)."""
        row = np.ctypeslib.as_array(logits, shape=(self.n_vocab,)).astype(np.float64)
        peak = row.max()
        log_total = peak + np.log(np.exp(row - peak).sum())
        top = np.argpartition(-row, self.top_n - 1)[: self.top_n]
        top = top[np.argsort(-row[top], kind="stable")]
        candidates = tuple(self._candidate(int(i), float(row[i] - log_total)) for i in top)
        chosen = self._candidate(token, float(row[token] - log_total))
        self.entries.append(TokenLogprob(chosen.token, chosen.logprob, chosen.raw, candidates))

    def _candidate(self, token: int, logprob: float) -> Candidate:
        raw = self.piece(token)
        return Candidate(raw.decode("utf-8", errors="replace"), logprob, raw)
