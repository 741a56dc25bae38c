"""Chat templates for models whose GGUF has none (base models, old conversions): the model family's own format
where we know it, ChatML otherwise, as llama.cpp does. A template written in the wrong family's markup is
tokenized as plain text and prompts the model badly (Gemma has no `<|im_start|>` token)."""

from __future__ import annotations

from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE

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

FALLBACKS = {"gemma": ("gemma", GEMMA_CHAT_TEMPLATE), "gemma2": ("gemma", GEMMA_CHAT_TEMPLATE)}
FALLBACKS["gemma3"] = FALLBACKS["gemma"]


def fallback_template(architecture: str) -> tuple[str, str]:
    """(name, template) for a model without its own chat template."""
    return FALLBACKS.get(architecture, ("chatml", CHATML_CHAT_TEMPLATE))
