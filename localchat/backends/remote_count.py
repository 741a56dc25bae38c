"""A conversation's tokens on a server, for the counter: exact where the server can tokenize a chat with its own
template, else an estimate that says so (`exact` False: the counter shows "≈").

- llama-server: `/apply-template` renders the messages as its chat completions will, `/tokenize` counts that
  prompt with the same switches (special tokens parsed, BOS added where the model wants one): exact.
- vLLM: `/tokenize` takes the messages and applies the template itself: exact.
- llama_cpp.server: `/extras/tokenize/count` counts a text, not a chat: each message's text is exact, the
  template's framing around it estimated.
- anything else (Ollama, LM Studio, hosted APIs): about four characters a token.
The estimated framing is learnt from each reply's `usage.prompt_tokens` (what the server counted for the very
messages sent): a template's fixed part, such as a default system prompt, is then counted too. llama_cpp.server
sends no usage in a stream: there one reply of one token, not streamed, is asked for when the model is opened.

How the total is split between messages (which the context planner drops oldest first) is an estimate in every
case: each message's own text plus an equal part of the framing. The total is what the counter shows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from localchat.engine.protocol import ChatMessage, ConversationTokens
from localchat.errors import LocalchatError

if TYPE_CHECKING:
    from localchat.backends.remote import RemoteBackend

FRAMING_ESTIMATE = 5  # tokens a template puts around a message (ChatML: "<|im_start|>user\n" … "<|im_end|>\n")
GENERATION_ESTIMATE = 3  # the assistant's header after the last message
CHARS_PER_TOKEN = 4
KEPT_TEXTS = 512  # the texts counted lately (a chat's history is counted once, not on every keystroke)

Way = Literal["llama-server", "vllm", "texts", "characters"]


class RemoteCounter:
    def __init__(self, backend: RemoteBackend) -> None:
        self.backend = backend
        self._texts: OrderedDict[str, int] = OrderedDict()
        self._fixed = GENERATION_ESTIMATE  # an estimate's framing beyond FRAMING_ESTIMATE a message (learnt)
        self.way: Way = self._probe()
        if self.way == "texts":
            self._calibrate()

    @property
    def exact(self) -> bool:
        return self.way in ("llama-server", "vllm")

    def measure(self, messages: Sequence[ChatMessage]) -> ConversationTokens:
        texts = [self._text_tokens(m.content) for m in messages]
        if self.way == "llama-server":
            prompt = self._post_root("/apply-template", {"messages": [m.as_dict() for m in messages]})["prompt"]
            total = len(self._post_root("/tokenize", {"content": prompt, "add_special": True})["tokens"])
        elif self.way == "vllm":
            body = {"model": self.backend.model_name, "messages": [m.as_dict() for m in messages]}
            total = int(self._post_root("/tokenize", body | {"add_generation_prompt": True})["count"])
        else:
            total = sum(texts) + FRAMING_ESTIMATE * len(messages) + self._fixed
        framing = max(0, total - sum(texts)) // (len(messages) + 1)
        shares = tuple(n + framing for n in texts)
        return ConversationTokens(shares, total - sum(shares))

    def learn(self, messages: Sequence[ChatMessage], prompt_tokens: int) -> None:
        """The server counted `prompt_tokens` for these messages (a reply's usage): an estimate's framing from it."""
        if not self.exact and prompt_tokens > 0:
            texts = sum(self._text_tokens(m.content) for m in messages)
            self._fixed = max(0, prompt_tokens - texts - FRAMING_ESTIMATE * len(messages))

    # --- how this server counts ------------------------------------------------------------------------------

    def _probe(self) -> Way:
        hello = [{"role": "user", "content": "hello"}]
        for way, path, body, key in (
            ("llama-server", "/apply-template", {"messages": hello}, "prompt"),
            ("vllm", "/tokenize", {"model": self.backend.model_name, "messages": hello}, "count"),
            ("texts", "/extras/tokenize/count", {"model": self.backend.model_name, "input": "hello"}, "count"),
        ):
            try:
                if key in self._post_root(path, body):
                    return way
            except LocalchatError:
                continue  # not this kind of server (404, not JSON...)
        return "characters"

    def _calibrate(self) -> None:
        hello = [ChatMessage("user", "hello")]
        body = {"model": self.backend.model_name, "messages": [m.as_dict() for m in hello], "max_tokens": 1}
        try:
            usage = self.backend.request_json("POST", "/chat/completions", body).get("usage") or {}
        except LocalchatError:
            return  # the first reply will say; until then the estimate is a rougher one
        self.learn(hello, int(usage.get("prompt_tokens") or 0))

    def _text_tokens(self, text: str) -> int:
        if not text:
            return 0
        if text in self._texts:
            self._texts.move_to_end(text)
            return self._texts[text]
        if self.way == "llama-server":
            count = len(self._post_root("/tokenize", {"content": text})["tokens"])
        elif self.way == "vllm":
            count = int(self._post_root("/tokenize", {"model": self.backend.model_name, "prompt": text})["count"])
        elif self.way == "texts":
            body = {"model": self.backend.model_name, "input": text}
            count = int(self._post_root("/extras/tokenize/count", body)["count"])
        else:
            count = -(-len(text) // CHARS_PER_TOKEN)
        self._texts[text] = count
        if len(self._texts) > KEPT_TEXTS:
            self._texts.popitem(last=False)
        return count

    def _post_root(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.backend.request_json("POST", path, body, at_root=True)


def context_size(backend: RemoteBackend, entry: dict[str, Any]) -> int:
    """The context a server gives the model: llama-server's /props, vLLM's and LM Studio's /models entry; 0 when
    the server does not say (config.toml's `ctx` for the endpoint then)."""
    for key in ("max_model_len", "context_length", "max_context_length"):
        if isinstance(entry.get(key), int) and entry[key] > 0:
            return int(entry[key])
    try:
        props = backend.request_json("GET", "/props", at_root=True)
    except LocalchatError:
        return 0
    settings = props.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else props.get("n_ctx")
    return int(n_ctx) if isinstance(n_ctx, int) and n_ctx > 0 else 0
