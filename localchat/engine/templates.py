"""Chat templates: a model's own, compiled before it loads and rendered bounded in size and time (ChatTemplate),
and the ones for models whose GGUF has none (base models, old conversions): the model family's own format where
we know it, ChatML otherwise, as llama.cpp does. A template in the wrong family's markup is tokenized as plain
text and prompts the model badly (Gemma has no `<|im_start|>` token)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE

from localchat.errors import ModelFileError
from localchat.models.gguf import fallback_family
from localchat.reasoning import ThinkingSupport, opened_by_prompt, soft_switch

# Gemma's format (google/gemma-3-*-it): a system prompt opens the first user turn; "model" answers. Unlike
# Google's, it does not raise on two user turns in a row (a reply that failed before its first token leaves that).
GEMMA_CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages and messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = '' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\\n' }}
{%- endif -%}"""

FALLBACKS = {"gemma": GEMMA_CHAT_TEMPLATE, "chatml": CHATML_CHAT_TEMPLATE}  # models/gguf.py picks the family


def fallback_template(architecture: str) -> tuple[str, str]:
    """(name, template) for a model without its own chat template."""
    family = fallback_family(architecture)
    return family, FALLBACKS[family]


# A chat template is the model file's code. The sandbox stops attribute tricks and huge range()s; these bound
# the rest: the text it builds (`{{ m.content * 100000000 }}` took minutes) and its time (nested loops).
MAX_RENDER_CHARS = 64 << 20
MAX_RENDER_S = 5.0


class TemplateTooCostly(Exception):
    """The template built too much text or took too long."""


class ChatTemplate:
    """A model's Jinja chat template, rendered the way llama-cpp-python and transformers render it (sandboxed,
    trim_blocks, lstrip_blocks, `tojson`, `raise_exception`, `strftime_now`, `{% generation %}`), bounded."""

    def __init__(self, source: str) -> None:
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        class Bounded(ImmutableSandboxedEnvironment):
            intercepted_binops = frozenset({"*", "+"})

            def call_binop(self, context, operator, left, right):  # type: ignore[no-untyped-def]
                if operator == "*" and isinstance(left, (str, list)) and isinstance(right, int):
                    _check_size(len(left) * right)
                elif operator == "*" and isinstance(right, (str, list)) and isinstance(left, int):
                    _check_size(len(right) * left)
                result = super().call_binop(context, operator, left, right)
                if isinstance(result, (str, list)):
                    _check_size(len(result))
                return result

        environment = Bounded(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols],
        )
        environment.filters["tojson"] = Jinja2ChatFormatter.tojson
        self._template = environment.from_string(source)

    def render(
        self, messages: list[dict], add_generation_prompt: bool, *, bos_token: str, eos_token: str, **switches: bool
    ) -> str:
        """`switches`: the template's own variables, such as `enable_thinking`."""

        def raise_exception(message: str) -> None:
            raise ValueError(message)

        with _time_limit(MAX_RENDER_S):
            text = self._template.render(
                messages=messages,
                bos_token=bos_token,
                eos_token=eos_token,
                add_generation_prompt=add_generation_prompt,
                raise_exception=raise_exception,
                strftime_now=lambda fmt: time.strftime(fmt),
                **switches,
            )
        _check_size(len(text))
        return text


def compile_template(source: str, file_name: str) -> ChatTemplate:
    """The template compiled, or one line saying it does not (checked before the weights take memory)."""
    from jinja2 import TemplateError

    try:
        return ChatTemplate(source)
    except TemplateError as exc:
        raise ModelFileError(
            f"the chat template in {file_name} does not compile ({exc.__class__.__name__}: {exc}): "
            "use another build of this model, or fix tokenizer.chat_template in the file"
        ) from None


@dataclass(frozen=True)
class TemplateTraits:
    """What a template does, read by rendering it once at load (its source alone misleads: LFM2.5 names
    `</think>` only to strip it from history; Nemotron names `enable_thinking` but obeys `/no_think`)."""

    thinking: ThinkingSupport = "none"  # how a chat turns thinking on and off (localchat/reasoning.py)
    thinks_by_default: bool = False  # with no switch given the model may think
    system_role: bool = True  # False: the template refuses system messages (Gemma 2): folded into the first turn
    alternates: bool = False  # the template refuses two turns of one role in a row (Gemma 3): they are joined


PROBE_SYSTEM, PROBE_USER = "Probe system prompt.", "Hi"


def read_traits(template: ChatTemplate, source: str, *, bos_token: str, eos_token: str) -> TemplateTraits:
    def render(messages: list[dict], **switches: bool) -> str:
        return template.render(messages, True, bos_token=bos_token, eos_token=eos_token, **switches)

    probe = [{"role": "user", "content": PROBE_USER}]
    try:
        system_role = PROBE_SYSTEM in render([{"role": "system", "content": PROBE_SYSTEM}, *probe])
    except Exception:  # the template raises on a system message (its own raise_exception)
        system_role = False
    try:
        render([*probe, {"role": "user", "content": PROBE_USER}])
        alternates = False
    except Exception:  # "Conversation roles must alternate": a reply that failed leaves two user turns in a row
        alternates = True
    try:
        default = render(probe)
        if "enable_thinking" in source:
            on, off = render(probe, enable_thinking=True), render(probe, enable_thinking=False)
            if on != off:
                return TemplateTraits("switch", default != off, system_role, alternates)
        if "/no_think" in source and system_role:  # the template reads the flag: the model was trained on it
            return TemplateTraits("soft", True, system_role, alternates)
    except Exception:  # a template that fails on the simplest chat fails again, with a message, when used
        return TemplateTraits(system_role=system_role, alternates=alternates)
    if opened_by_prompt(default):
        return TemplateTraits("always", True, system_role, alternates)
    return TemplateTraits(system_role=system_role, alternates=alternates)


def prepare(messages: list[dict], traits: TemplateTraits, thinking: bool | None) -> tuple[list[dict], dict[str, bool]]:
    """The messages and template variables to render: the thinking switch in the template's own way, a system
    prompt folded into the first user turn where the template has no system role (as llama.cpp does), and turns
    of one role in a row joined where the template insists on alternating."""
    if traits.alternates:
        joined: list[dict] = []
        for message in messages:
            if joined and joined[-1]["role"] == message["role"] and message["role"] != "system":
                joined[-1] = {**joined[-1], "content": f"{joined[-1]['content']}\n\n{message['content']}"}
            else:
                joined.append(message)
        messages = joined
    if not traits.system_role and messages and messages[0]["role"] == "system":
        system, rest = messages[0]["content"], messages[1:]
        if rest and rest[0]["role"] == "user":
            rest = [{**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
        else:
            rest = [{"role": "user", "content": system}, *rest]
        messages = rest
    if thinking is None or traits.thinking in ("none", "always"):
        return messages, {}
    if traits.thinking == "soft":
        return soft_switch(messages, thinking), {}
    return messages, {"enable_thinking": thinking}


def _check_size(chars: int) -> None:
    if chars > MAX_RENDER_CHARS:
        raise TemplateTooCostly(f"it builds more than {MAX_RENDER_CHARS >> 20} M characters")


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM interrupts a template looping in Python; only the main thread can take signals (the engine's
    requests run there), elsewhere the size bound alone applies."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(_signum: int, _frame: object) -> None:
        raise TemplateTooCostly(f"it ran for more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
