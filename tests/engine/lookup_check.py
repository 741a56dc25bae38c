"""Run as a process: replies generated with prompt lookup and without, on the real model, greedy and sampled,
then one cancelled mid-draft; prints one JSON line per case with the text, the drafts and the KV cache's tokens
after the reply. (A process of its own: the test process never imports llama_cpp.)"""

from __future__ import annotations

import ctypes
import json
import sys

from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ChatMessage, LoadOptions
from localchat.engine.runner import LlamaRunner
from localchat.models.gguf import read_gguf
from tests.engine.replies import cancelled_reply, priced_as_on_a_gpu, reply

# Short enough that prompt and reply stay under 256 cached tokens: there llama.cpp's CPU attention computes a
# one-token step and a batch the same way (past 512 cells a one-token step takes its split-KV kernel, which
# rounds differently: README, "Prompt lookup").
LIST = "red, green, blue, cyan, magenta, yellow, black, white, orange, purple"
PROMPT = f"Repeat this list three times, one line each: {LIST}."
CASES = {  # past the end of text, where the model repeats itself: drafts are taken, and some rejected
    "greedy": SamplingParams(temperature=0, max_tokens=160, repeat_penalty=1.0),
    "sampled": SamplingParams(temperature=0.7, top_p=0.95, max_tokens=160, seed=11, repeat_penalty=1.05),
}


def main(model: str) -> None:
    abort_flag = ctypes.create_string_buffer(2)
    runner = LlamaRunner(read_gguf(model), LoadOptions(n_ctx=512), abort_flag)
    priced_as_on_a_gpu(runner)
    prompt = runner.chat_tokens([ChatMessage("user", PROMPT)])
    for name, sampling in CASES.items():
        row: dict[str, object] = {"case": name, "prompt": len(prompt)}
        for lookup in (False, True):
            row["lookup" if lookup else "plain"] = reply(runner, prompt, sampling, lookup=lookup)
        print(json.dumps(row))
    print(json.dumps(cancelled_reply(runner, prompt, CASES["greedy"], abort_flag, lookup=True)))
    runner.close()


if __name__ == "__main__":
    main(sys.argv[1])
