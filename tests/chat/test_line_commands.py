"""The line chat's slash commands (Ollama's `run` has the same): what each does to the session and says."""

from __future__ import annotations

from dataclasses import replace

from localchat.chat.line_commands import HELP, LineSession, gather, run_command
from localchat.chat.sampling import SamplingParams
from localchat.engine.protocol import ModelInfo

# What the engine says of SmolLM2-135M Q4_1 (the line chat's /show info is read from it in tests/test_cli.py)
SMOLLM2 = ModelInfo("/m/SmolLM2.gguf", "SmolLM2 135M", "llama", "Q4_1", 134_515_008, 30, 0, 2048, 8192, 2, "model", 0.1)
START = LineSession(None, SamplingParams(), SMOLLM2)
USAGE = "Usage: /set parameter NAME VALUE, /set system TEXT, /set verbose | quiet, or /set format json | noformat"


def test_a_message_is_not_a_command() -> None:
    for line in ("hello", "", "   ", "/etc/hosts: what is it?", "/ not a command", "a /set in the middle"):
        assert run_command(line, START) is None, line


def test_leave_clear_and_help() -> None:
    for line in ("/bye", "/exit", "/quit", " /bye "):
        assert run_command(line, START).leave
    cleared = run_command("/clear", START)
    assert cleared.clear and not cleared.leave and cleared.say == "(conversation cleared)"
    assert run_command("/?", START).say == HELP == run_command("/help", START).say
    assert "/set parameter NAME VALUE" in HELP and "num_predict" in HELP


def test_set_a_parameter_by_ollamas_name() -> None:
    done = run_command("/set parameter temperature 0.2", START)
    assert done.session.sampling == SamplingParams(temperature=0.2) and done.session.system is None
    assert done.say == "Set parameter 'temperature' to '0.2'"
    assert run_command("/set parameter num_predict 5", START).session.sampling.max_tokens == 5
    assert run_command("/set parameter seed 7", START).session.sampling.seed == 7
    assert run_command("/set parameter top_k 3", START).session.sampling.top_k == 3


def test_a_bad_parameter_says_why_and_changes_nothing() -> None:
    cases = {
        "/set parameter temperature hot": "temperature takes a number (got 'hot')",
        "/set parameter top_k 2.5": "top_k must be a whole number between 0 and 1,000 (got 2.5)",
        "/set parameter top_k many": "top_k takes a number (got 'many')",
        "/set parameter temperature 9": "temperature must be between 0 and 5 (got 9)",
        "/set parameter num_predict 0": "num_predict must be between 1 and 1,000,000 (got 0)",
        "/set parameter mirostat 2": "Unknown parameter 'mirostat': one of temperature, top_p, top_k, min_p, "
        "repeat_penalty, seed, num_predict",
        "/set parameter": "Unknown parameter '': one of temperature, top_p, top_k, min_p, repeat_penalty, seed, "
        "num_predict",
        "/set verbose now": USAGE,
        "/set system": USAGE,
    }
    for line, said in cases.items():
        done = run_command(line, START)
        assert done.say == said and done.session == START, line


def test_set_and_show_the_system_prompt_and_parameters() -> None:
    done = run_command("/set system Answer in French.  ", START)
    assert done.session.system == "Answer in French." and done.say == "Set system message."
    assert run_command("/show system", done.session).say == "Answer in French."
    assert run_command("/show system", START).say == "(no system prompt)"
    shown = run_command("/show parameters", run_command("/set parameter num_predict 9", START).session).say
    assert "num_predict     9" in shown and "temperature     0.7" in shown
    assert run_command("/show", START).say == "Usage: /show info, /show parameters, or /show system"


def test_an_unknown_command_is_said_so_not_sent() -> None:
    done = run_command("/nope now", START)
    assert done.say == "Unknown command '/nope'. Type /? for help" and done.session == START
    assert not done.leave and not done.clear


def test_triple_quotes_gather_a_message_of_several_lines() -> None:
    def typed(*lines: str):
        rest = iter(lines)
        return lambda: next(rest)

    assert gather("plain line", typed()) == "plain line"
    assert gather('"""one line"""', typed()) == "one line"
    assert gather('"""', typed("def f(x):", "    return x", 'Explain."""')) == "def f(x):\n    return x\nExplain."
    assert gather('"""First', typed("", 'last"""  ')) == "First\n\nlast"  # blank lines inside are kept
    assert gather('"""', typed('"""')) == ""  # nothing: the chat sends nothing


def test_show_info_tells_the_model_as_ollama_does() -> None:
    said = run_command("/show info", START).say.splitlines()
    assert said[0] == "  Model"
    assert "    architecture      llama" in said and "    parameters        135M" in said
    assert "    context length    2048 (trained on 8192)" in said and "    quantization      Q4_1" in said
    assert "    runs on           CPU only" in said
    server = replace(SMOLLM2, path="http://127.0.0.1:8080/v1", architecture="remote", n_ctx=0, n_ctx_train=0)
    said = run_command("/show info", replace(START, model=server)).say.splitlines()
    assert said[1:] == [
        "    name              SmolLM2 135M",
        "    server            http://127.0.0.1:8080/v1",
        "    context length    not given by the server",
    ]


def test_load_names_one_model() -> None:
    done = run_command("/load gemma3:270m", START)
    assert done.load == "gemma3:270m" and done.session == START and not done.say
    for line in ("/load", "/load two models"):
        bad = run_command(line, START)
        assert bad.load is None and bad.say.startswith("Usage: /load MODEL"), line


def test_set_verbose_and_quiet() -> None:
    verbose = run_command("/set verbose", START)
    assert verbose.session.verbose and verbose.say == "Set 'verbose' mode."
    quiet = run_command("/set quiet", verbose.session)
    assert not quiet.session.verbose and quiet.say == "Set 'quiet' mode."
    assert run_command("/set verbose please", START).say.startswith("Usage: /set parameter")


def test_set_format_json_and_noformat() -> None:
    json_mode = run_command("/set format json", START)
    assert json_mode.session.format == "json" and json_mode.say == "Set format to 'json' mode."
    free = run_command("/set noformat", json_mode.session)
    assert free.session.format is None and free.say == "Disabled format."
    assert run_command("/set format yaml", START).say == USAGE
