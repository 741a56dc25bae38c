"""The chat templates of the models people run, rendered in our bounded sandbox: every family renders a real
conversation, and what each offers for thinking (and system prompts) is read right. Templates: tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from localchat.engine.templates import ChatTemplate, TemplateTraits, prepare, read_traits
from localchat.reasoning import opened_by_prompt

TEMPLATES = Path(__file__).parent.parent / "data" / "templates"

# file → (thinking switch, thinks with no switch given, has a system role)
EXPECTED = {
    "Qwen-Qwen3-0.6B": ("switch", True, True),
    "Qwen3.5-4B": ("switch", True, True),
    "Qwen-Qwen2.5-7B-Instruct": ("none", False, True),
    "HuggingFaceTB-SmolLM3-3B": ("switch", True, True),
    "google-gemma-2-2b-it": ("none", False, False),  # raises on a system message: we fold it into the first turn
    "google-gemma-3-it": ("none", False, True),
    "google-gemma-4-31B-it": ("switch", False, True),
    "openbmb-MiniCPM5-1B": ("switch", True, True),
    "LFM2.5-Instruct": ("none", False, True),  # names </think> only to strip it from history
    "ibm-granite-granite-4.1": ("none", False, True),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ("switch", False, True),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": ("always", True, True),
    "meta-llama-Llama-3.1-8B-Instruct": ("none", False, True),
    "meta-llama-Llama-3.2-3B-Instruct": ("none", False, True),
    "microsoft-Phi-3.5-mini-instruct": ("none", False, True),
    "NVIDIA-Nemotron-Nano-v2": ("soft", True, True),
    "openai-gpt-oss-120b": ("none", False, True),
}
CHAT = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Capital of France?"},
]
TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}


def test_every_template_in_the_test_data_has_an_expectation() -> None:
    assert sorted(p.stem for p in TEMPLATES.glob("*.jinja")) == sorted(EXPECTED)


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def family(request: pytest.FixtureRequest) -> tuple[str, str, ChatTemplate, TemplateTraits]:
    source = (TEMPLATES / f"{request.param}.jinja").read_text()
    template = ChatTemplate(source)
    return request.param, source, template, read_traits(template, source, **TOKENS)


def test_what_each_template_offers_is_read_by_rendering_it(family: tuple) -> None:
    name, _source, _template, traits = family
    assert (traits.thinking, traits.thinks_by_default, traits.system_role) == EXPECTED[name]


@pytest.mark.parametrize("thinking", [None, True, False])
def test_each_family_renders_a_whole_chat_with_each_switch(family: tuple, thinking: bool | None) -> None:
    _name, _source, template, traits = family
    messages, switches = prepare([dict(m) for m in CHAT], traits, thinking)
    prompt = template.render(messages, True, **TOKENS, **switches)
    for message in CHAT:  # nothing is lost: the system prompt too (folded where the template has no system role)
        assert message["content"] in prompt
    assert prompt.index("Hi there") < prompt.index("Hello!") < prompt.index("Capital of France?")
    without_reply_header = template.render(messages, False, **TOKENS, **switches)
    assert prompt != without_reply_header  # the reply's header is the template's (Phi-3.5 ends a chat with EOS)
    if traits.thinking == "always" or (traits.thinking == "switch" and thinking is False):
        assert (opened_by_prompt(prompt) is not None) == (traits.thinking == "always")


def test_the_switch_changes_the_prompt_where_the_template_has_one(family: tuple) -> None:
    name, _source, template, traits = family
    prompts = set()
    for thinking in (True, False):
        messages, switches = prepare([dict(m) for m in CHAT], traits, thinking)
        prompts.add(template.render(messages, True, **TOKENS, **switches))
    assert (len(prompts) == 2) == (traits.thinking in ("switch", "soft")), name


def test_two_user_turns_in_a_row_render_in_every_family(family: tuple) -> None:
    """A reply that failed before its first token leaves two user turns in a row; Gemma 2 and 3 refuse that
    ("Conversation roles must alternate"), so those are joined for them, and nothing is lost."""
    name, _source, template, traits = family
    chat = [*CHAT, {"role": "user", "content": "Are you there?"}]
    messages, switches = prepare([dict(m) for m in chat], traits, None)
    prompt = template.render(messages, True, **TOKENS, **switches)
    assert "Capital of France?" in prompt and "Are you there?" in prompt
    assert traits.alternates == (name in ("google-gemma-2-2b-it", "google-gemma-3-it"))


def test_gemma_3_with_its_own_template_on_the_real_engine(gemma_path: Path, tmp_path: Path) -> None:
    """Gemma 3's published template (strict alternation, the system prompt folded in by the template) on the
    real Gemma 3 model: a chat with two user turns in a row is counted exactly and answered."""
    from localchat.chat.sampling import SamplingParams
    from localchat.engine.client import EngineClient
    from localchat.engine.protocol import ChatMessage, Done, Generate
    from tests.gguf_files import with_metadata

    source = (TEMPLATES / "google-gemma-3-it.jinja").read_text()
    model = with_metadata(gemma_path, tmp_path / "gemma-3-it-template.gguf", {"tokenizer.chat_template": source})
    messages = [ChatMessage(m["role"], m["content"]) for m in CHAT] + [ChatMessage("user", "Are you there?")]
    with EngineClient(tmp_path / "engine.log") as engine:
        engine.load(model)
        assert engine.model.chat_template == "model"
        measured = engine.measure(messages)
        assert measured.total == engine.count_chat_tokens(messages) and len(measured.per_message) == len(messages)
        done = [
            e for e in engine.generate(Generate(tuple(messages), sampling=SamplingParams(temperature=0, max_tokens=4)))
        ][-1]
        assert isinstance(done, Done) and done.stop_reason in ("eos", "length")
        assert done.usage.prompt_tokens == measured.total
