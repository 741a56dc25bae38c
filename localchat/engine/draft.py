"""A draft model: a small model of the target's family (a 0.5B for a 7B) guesses the next tokens, one cheap
decode each, and the target checks them in one batch as it checks prompt lookup's (engine/generation.py). Its
guesses only decide how many tokens a step may keep, never which: the reply is the target's own.

Runs only inside the engine process, over a second LlamaRunner that shares the target's abort flag.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import llama_cpp as ll
import numpy as np

from localchat.engine.lookup import RECENT
from localchat.engine.protocol import LoadOptions
from localchat.errors import DraftRefused

if TYPE_CHECKING:
    from localchat.engine.runner import LlamaRunner

# A guess the draft model gives less than this probability ends the draft: the target would likely turn it
# down, and every guess costs a draft decode (llama.cpp's speculative examples stop at 0.75 too).
SURE = 0.75
# The first token ids are control tokens that often differ between sizes of one family; llama.cpp compares
# the vocabularies from here on, and allows this many ids more in one of them (Qwen 2.5 0.5B against 7B).
FIRST_COMPARED, MOST_EXTRA_IDS = 5, 128


def check_vocabularies(target: LlamaRunner, draft: LlamaRunner) -> None:
    """The draft must spell every token as the target does: its guesses are token ids the target decodes."""
    target_name, draft_name = target.gguf.path.name, draft.gguf.path.name
    problem = _vocabulary_difference(target, draft)
    if problem:
        raise DraftRefused(
            f"{draft_name} cannot draft for {target_name}: {problem}; use a smaller model of the same family"
        )


def _vocabulary_difference(target: LlamaRunner, draft: LlamaRunner) -> str | None:
    if abs(target.n_vocab - draft.n_vocab) > MOST_EXTRA_IDS:
        return f"its vocabulary has {draft.n_vocab:,} tokens, the target's {target.n_vocab:,}"
    if ll.llama_vocab_type(target.vocab) != ll.llama_vocab_type(draft.vocab):
        return "its tokenizer is of another kind"
    for name, read in (("beginning", ll.llama_vocab_bos), ("end", ll.llama_vocab_eos)):
        if read(target.vocab) != read(draft.vocab):
            return f"its {name}-of-text token differs"
    for token in range(FIRST_COMPARED, min(target.n_vocab, draft.n_vocab)):
        if ll.llama_vocab_get_text(target.vocab, token) != ll.llama_vocab_get_text(draft.vocab, token):
            return f"token {token} is spelt differently"
    return None


@dataclass
class DraftModel:
    """The loaded draft model, and what its guesses recently cost: the machine's, kept across replies (a reply
    that learnt it anew would pay for guesses that do not pay, every time)."""

    runner: LlamaRunner
    guess_s: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))

    @property
    def name(self) -> str:
        return self.runner.gguf.path.name

    def close(self) -> None:
        self.runner.close()


class ModelDrafter:
    """The context's tokens, kept in step with the draft model's cache; `draft` guesses what comes next."""

    def __init__(self, draft: DraftModel, tokens: Sequence[int], n_vocab: int) -> None:
        self.model = draft.runner
        self.step_s = draft.guess_s  # each guess's share of the drafting time (DraftPolicy prices guesses)
        self.tokens = list(tokens)
        self.n_vocab = n_vocab  # the target's: a guess past it could not be decoded there

    def append(self, token: int) -> None:
        self.tokens.append(token)

    def catch_up(self) -> bool:
        """Read what of the prompt the draft's cache lacks (from its saved state where one is on disk), while the
        target reads its own: a long chat's prompt then costs the reply's first token, not a stall in the middle
        of the reply. False when cancelled."""
        self.model._restore(self.tokens[:-1])
        return self._sync()

    def _sync(self) -> bool:
        """The draft's cache holds the context: what it lacks is evaluated (the target's last token, and where
        guesses were turned down, the target's own token in their place: the cache keeps the common prefix)."""
        tokens = self.tokens
        reused = self.model._reuse(tokens, len(tokens) - 1)
        return self.model._decode(tokens[reused:], reused, want_logits=True)

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` guesses, greedy, ending at the first the draft model is unsure of; [] when cancelled."""
        started = time.perf_counter()
        model = self.model
        if not self._sync():
            return []
        guesses: list[int] = []
        while len(guesses) < limit:
            logits = np.ctypeslib.as_array(
                ctypes.cast(ll.llama_get_logits_ith(model.ctx, -1), ctypes.POINTER(ctypes.c_float)),
                shape=(model.n_vocab,),
            )
            best = int(logits.argmax())
            if best >= self.n_vocab or ll.llama_vocab_is_eog(model.vocab, best):
                break
            if 1.0 / float(np.exp(logits - logits[best]).sum()) < SURE:
                break
            guesses.append(best)
            if len(guesses) == limit or not model._decode([best], len(model.cached), want_logits=True):
                break
        if guesses:
            self.step_s.append((time.perf_counter() - started) / len(guesses))
        return guesses


def load_draft(target: LlamaRunner, path: str, options: LoadOptions) -> DraftModel:
    """The draft model on the target's context size and threads, its layers on the GPU where the target's are;
    a draft that cannot speak the target's tokens is refused at load."""
    from localchat.engine.runner import LlamaRunner  # the runner loads its draft: imported when it does
    from localchat.models.gguf import read_gguf

    draft_options = replace(
        options,
        n_ctx=target.n_ctx,
        threads=target.info.threads,
        gpu_layers=options.gpu_layers if target.info.gpu_layers else 0,
        backend_sampling=False,  # its guesses are read from its logits
        draft=None,
    )
    draft = LlamaRunner(read_gguf(path), draft_options, target._abort_flag)
    try:
        check_vocabularies(target, draft)
    except BaseException:
        draft.close()
        raise
    return DraftModel(draft)
