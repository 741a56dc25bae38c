"""The line chat's slash commands (Ollama's `run` has the same): what each does to the session and says."""

from __future__ import annotations

from localchat.chat.line_commands import HELP, LineSession, gather, run_command
from localchat.chat.sampling import SamplingParams

START = LineSession(None, SamplingParams())


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
        "/set verbose": "Usage: /set parameter NAME VALUE, or /set system TEXT",
        "/set system": "Usage: /set parameter NAME VALUE, or /set system TEXT",
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
    assert run_command("/show", START).say == "Usage: /show parameters, or /show system"


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
