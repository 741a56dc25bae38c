"""Run as a process: replies generated with a draft model and without, on the real model (drafting for itself:
the only pair of one vocabulary the tests have), greedy and sampled hot enough that guesses are turned down,
then one cancelled mid-reply, then a draft of another vocabulary; prints one JSON line per case with the text,
the drafts and the KV cache's tokens after the reply. (A process of its own: the test process never imports
llama_cpp.)"""

from __future__ import annotations

import ctypes
import json
import shutil
import sys
import tempfile
from pathlib import Path

from localchat.chat.sampling import SamplingParams
from localchat.engine.lookup import DraftPolicy
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
from localchat.errors import EngineError
from localchat.models.gguf import read_gguf
from tests.engine.replies import cancelled_reply, priced_as_on_a_gpu, reply

# Under 256 cached tokens, as in lookup_check.py: there a one-token step and a batch round the same way.
PROMPT = "Name five colours, then say why the sky is blue."
CASES = {
    "greedy": SamplingParams(temperature=0, max_tokens=150, repeat_penalty=1.0),
    "sampled": SamplingParams(temperature=0.9, top_p=1.0, top_k=0, min_p=0.0, max_tokens=150, seed=5),
}


def main(model: str, other: str) -> None:
    # Priced as where guessing is nearly free (a 0.5B for a 7B on a GPU): the policy drafts at every step, so
    # the checking of guesses runs often. With the model drafting for itself it never pays on this CPU.
    DraftPolicy.guess_cost = lambda self, *_: 0.0  # type: ignore[method-assign]
    abort_flag = ctypes.create_string_buffer(2)
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512, draft=model), abort_flag)
    priced_as_on_a_gpu(runner)
    prompt = runner.chat_tokens([ChatMessage("user", PROMPT)])
    for name, sampling in CASES.items():
        row: dict[str, object] = {"case": name, "prompt": len(prompt), "draft": runner.info.draft}
        for draft in (False, True):
            row["draft" if draft else "plain"] = reply(runner, prompt, sampling, lookup=False, draft=draft)
        print(json.dumps(row))
    print(json.dumps(cancelled_reply(runner, prompt, CASES["greedy"], abort_flag, lookup=False)))
    runner.close()
    print(json.dumps(catch_up(model, abort_flag)))
    try:
        LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512, draft=other), abort_flag).close()
        refused = None
    except EngineError as exc:
        refused = exc.message
    print(json.dumps({"case": "other vocabulary", "error": refused}))


def catch_up(model: str, abort_flag: ctypes.Array) -> dict[str, object]:
    """A long chat's prompt: the draft reads it with the target's, before the first token (a one-token reply has no
    step to draft in); its state is saved beside the target's, so after a restart it reads only what differs."""
    states = tempfile.mkdtemp()
    # The draft a file of its own: states are kept per model file, and the target's would fit the same file
    draft_copy = shutil.copy(model, Path(states) / "draft.gguf")
    options = LoadOptions(n_ctx=1024, draft=str(draft_copy), saved_states=states)
    long_chat = [ChatMessage("user", "Tell me about the sea. " * 60)]
    one_token = SamplingParams(temperature=0, max_tokens=1)
    first = LlamaRunner(read_gguf(model), options, abort_flag)
    prompt = first.chat_tokens(long_chat)
    first.generate(prompt, one_token, lambda t, n: None, lookup=False)
    draft_cache = list(first.draft_model.runner.cached)
    first.save_state()
    first.close()
    again = LlamaRunner(read_gguf(model), options, abort_flag)
    draft = again.draft_model.runner
    evaluated: list[int] = []
    decode = draft._decode
    draft._decode = lambda tokens, *args, **kwargs: evaluated.append(len(tokens)) or decode(tokens, *args, **kwargs)
    again.generate(prompt, one_token, lambda t, n: None, lookup=False)
    again.close()
    return {
        "case": "caught up",
        "prompt": len(prompt),
        "draft_held_prompt": draft_cache[: len(prompt)] == prompt,
        "evaluated_after_restart": sum(evaluated),
    }


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
