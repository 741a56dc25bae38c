"""The line chat's slash commands, as Ollama's `run` has them: /? lists them, /set changes this session's system
prompt or a sampling parameter (by Ollama's names), /show tells them and the model, /load switches the model (the
conversation goes on with it), and an unknown /word is said so rather than sent to the model. A line such as
"/etc/hosts: what is it?" is a message: only /WORD or /? starts a command."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from localchat.chat.sampling import SamplingParams, parse_number
from localchat.engine.protocol import ModelInfo
from localchat.errors import InvalidSetting
from localchat.models.gguf import shown_parameters

QUOTES = '"""'
COMMAND = re.compile(r"/(\?|[A-Za-z]+)(?:\s+(.*))?", re.DOTALL)
# Ollama's parameter names -> localchat's sampling fields
PARAMETERS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "seed": "seed",
    "num_predict": "max_tokens",
}
HELP = f"""Available commands:
  /set parameter NAME VALUE   set a sampling parameter (names below)
  /set system TEXT            set the system prompt (the conversation goes on)
  /set verbose | quiet        timings after each reply, or not
  /set format json | noformat replies as a JSON object, or free
  /show info                  the model
  /show parameters | system   what is set
  /load MODEL                 go on with another model (a name from `localchat list`, or a .gguf path)
  /clear                      forget the conversation
  /bye                        leave (also Ctrl-D)
  /?, /help                   this help
  \"\"\" ... \"\"\"                 a message of several lines
Parameters: {", ".join(PARAMETERS)}"""


SET_MODES = "/set verbose | quiet, or /set format json | noformat"


@dataclass(frozen=True)
class LineSession:
    """What the line chat's commands change."""

    system: str | None
    sampling: SamplingParams
    model: ModelInfo
    verbose: bool = False  # timings after each reply (Ollama's /set verbose, run --verbose)
    format: Literal["json"] | None = None  # replies held to a JSON object (Ollama's /set format json, run --format)


@dataclass(frozen=True)
class Outcome:
    session: LineSession
    say: str = ""  # for the person (stderr)
    leave: bool = False
    clear: bool = False  # forget the conversation so far
    load: str | None = None  # the model to go on with


def run_command(line: str, session: LineSession) -> Outcome | None:
    """The command on `line` applied to `session`; None where the line is a message for the model."""
    match = COMMAND.fullmatch(line.strip())
    if match is None:
        return None
    name, rest = match.group(1).lower(), (match.group(2) or "").strip()
    if name in ("bye", "exit", "quit"):
        return Outcome(session, leave=True)
    if name == "clear":
        return Outcome(session, "(conversation cleared)", clear=True)
    if name in ("?", "help"):
        return Outcome(session, HELP)
    if name == "set":
        return _set(rest, session)
    if name == "show":
        return _show(rest, session)
    if name == "load":
        if not rest or len(rest.split()) > 1:
            return Outcome(session, "Usage: /load MODEL (a name from `localchat list`, or a .gguf path)")
        return Outcome(session, load=rest)
    return Outcome(session, f"Unknown command '/{match.group(1)}'. Type /? for help")


def _set(rest: str, session: LineSession) -> Outcome:
    what, _, value = rest.partition(" ")
    value = value.strip()
    if what == "system" and value:
        return Outcome(replace(session, system=value), "Set system message.")
    if what in ("verbose", "quiet") and not value:
        return Outcome(replace(session, verbose=what == "verbose"), f"Set '{what}' mode.")
    if what == "format" and value == "json":
        return Outcome(replace(session, format="json"), "Set format to 'json' mode.")
    if what == "noformat" and not value:
        return Outcome(replace(session, format=None), "Disabled format.")
    if what == "parameter":
        name, _, raw = value.partition(" ")
        field = PARAMETERS.get(name)
        if field is None:
            return Outcome(session, f"Unknown parameter '{name}': one of {', '.join(PARAMETERS)}")
        try:
            sampling = session.sampling.with_overrides(**{field: parse_number(raw)})
        except ValueError:
            return Outcome(session, f"{name} takes a number (got {raw.strip()!r})")
        except InvalidSetting as exc:
            return Outcome(session, exc.message.replace(field, name, 1))
        return Outcome(replace(session, sampling=sampling), f"Set parameter '{name}' to '{raw.strip()}'")
    return Outcome(session, f"Usage: /set parameter NAME VALUE, /set system TEXT, {SET_MODES}")


def _show(rest: str, session: LineSession) -> Outcome:
    if rest == "parameters":
        sampling = session.sampling
        lines = [f"  {name:<15} {getattr(sampling, field)}" for name, field in PARAMETERS.items()]
        return Outcome(session, "Parameters:\n" + "\n".join(lines))
    if rest == "system":
        return Outcome(session, session.system or "(no system prompt)")
    if rest == "info":
        return Outcome(session, "\n".join(model_lines(session.model)))
    return Outcome(session, "Usage: /show info, /show parameters, or /show system")


def model_lines(model: ModelInfo) -> list[str]:
    """/show info, laid out as Ollama's: a local model's make and how it runs here, or a server's model."""
    if model.architecture == "remote":  # backends/remote.py: a server says little of its model
        context = f"{model.n_ctx}" if model.n_ctx else "not given by the server"
        rows = [("name", model.name), ("server", model.path), ("context length", context)]
    else:
        context = f"{model.n_ctx}" + (f" (trained on {model.n_ctx_train})" if model.n_ctx_train != model.n_ctx else "")
        rows = [
            ("name", model.name),
            ("architecture", model.architecture),
            ("parameters", shown_parameters(model.parameters)),
            ("context length", context),
            ("quantization", model.quantization),
            ("runs on", model.offload_text),
            ("chat template", model.chat_template),
            ("file", model.path),
        ]
    return ["  Model", *(f"    {key:<18}{value}" for key, value in rows)]


def gather(line: str, more: Callable[[], str]) -> str:
    """Ollama's multi-line input: a line that starts with \"\"\" goes on, line by line from `more`, up to one that
    ends with \"\"\"; any other line is the message itself."""
    text = line.lstrip()
    if not text.startswith(QUOTES):
        return line
    text, lines = text[len(QUOTES) :], []
    while not text.rstrip().endswith(QUOTES):
        if lines or text:  # nothing yet after the opening quotes: no blank first line
            lines.append(text)
        text = more()
    lines.append(text.rstrip()[: -len(QUOTES)])
    return "\n".join(lines)
