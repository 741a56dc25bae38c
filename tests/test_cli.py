"""Every `localchat` command as a real process: output, exit codes, and one-line errors for bad input."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from localchat.engine.protocol import ChatMessage
from tests.conftest import (
    CliResult,
    assert_one_line_error,
    line_chat_in_a_terminal,
    line_chat_on_a_terminal,
    plain_text,
    run_cli,
)
from tests.models.test_gguf import bad_files

FAST = ("-n", "12", "--temp", "0")


@pytest.fixture(scope="module")
def engine_for_cli(model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    from localchat.engine.client import EngineClient

    with EngineClient(tmp_path_factory.mktemp("engine") / "engine.log") as client:
        client.load(model_path)
        yield client


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("localchat, version")
    assert_one_line_error(run_cli(), "needs a terminal")  # the app; stdout is a pipe here
    result = run_cli("run", "--help")
    assert result.code == 0 and "--temperature" in result.stdout and "--gpu-layers" in result.stdout


def test_run_streams_a_reply(model_path: Path) -> None:
    result = run_cli("run", str(model_path), "Say hello.", *FAST)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() and result.stderr == ""


def test_run_json_for_scripts(model_path: Path) -> None:
    result = run_cli("run", str(model_path), "Say hello.", *FAST, "--json", "--system", "Be brief.")
    report = json.loads(result.stdout)
    assert set(report) == {
        "text",
        "reasoning",
        "reasoning_state",
        "model",
        "offload",
        "stop_reason",
        "usage",
        "timings",
        "speculative",
    }
    assert (report["reasoning"], report["reasoning_state"]) == (None, "none")
    assert report["offload"] == {
        "setting": "auto",
        "gpu_layers": 0,  # a CPU build
        "layers": 31,
        "vram_estimate_bytes": 0,
        "free_vram_bytes": None,
        "note": None,
        "mmap": True,  # the model file mapped, as llama.cpp does by default
    }
    assert report["model"] == str(model_path)
    assert report["stop_reason"] in ("eos", "length")
    assert set(report["usage"]) == {"prompt_tokens", "evaluated_prompt_tokens", "completion_tokens", "reasoning_tokens"}
    assert set(report["timings"]) == {"load_s", "ttft_s", "prompt_tok_s", "decode_tok_s", "thinking_s"}
    assert report["usage"]["completion_tokens"] <= 12


def test_piped_stdin_is_the_prompt_or_appended_to_it(model_path: Path) -> None:
    alone = json.loads(run_cli("run", str(model_path), *FAST, "--json", input="What is 2+2?").stdout)
    both = json.loads(run_cli("run", str(model_path), "Summarise:", *FAST, "--json", input="What is 2+2?").stdout)
    assert both["usage"]["prompt_tokens"] > alone["usage"]["prompt_tokens"] > 0


def test_same_seed_same_text_across_processes_another_seed_other_text(model_path: Path) -> None:
    args = ("run", str(model_path), "Write a short poem.", "-n", "20", "--temp", "0.8", "--json")
    first = json.loads(run_cli(*args, "--seed", "42").stdout)["text"]
    assert first == json.loads(run_cli(*args, "--seed", "42").stdout)["text"]
    assert first != json.loads(run_cli(*args, "--seed", "43").stdout)["text"]  # the seed reaches the sampler


def test_line_chat_in_a_terminal(model_path: Path) -> None:
    """No PROMPT and a terminal on stdin: the plain multi-turn chat."""
    lines = ["My name is Ada.", "What is my name?", "/clear", "What is my name?", "/bye"]
    result = line_chat_in_a_terminal(["run", str(model_path), *FAST], lines)
    stdout, stderr = result.stdout, result.stderr
    assert result.code == 0, stderr
    assert "Chatting with" in stderr and "(conversation cleared)" in stderr
    replies = [part.strip() for part in stdout.split(">>> ") if part.strip()]  # each reply follows a prompt
    assert len(replies) == 3, stdout
    # Greedy replies: the same question, asked after turn 1 and after /clear, is answered differently only if
    # turn 2 saw turn 1; after /clear it is answered as `run` answers it alone.
    alone = json.loads(run_cli("run", str(model_path), "What is my name?", *FAST, "--json").stdout)["text"]
    assert replies[-1] == alone.strip() and replies[1] != replies[-1]


def test_line_chat_slash_commands_as_ollamas(model_path: Path) -> None:
    """/? helps, /set changes the next reply (Ollama's names), and an unknown /word is said so, never sent."""
    lines = ["/?", "/nope", "/set parameter num_predict 2", "/set system Answer in French.", "Name a colour.", "/bye"]
    result = line_chat_in_a_terminal(["run", str(model_path), *FAST], lines)
    assert result.code == 0, result.stderr
    assert "/set parameter NAME VALUE" in result.stderr and "Unknown command '/nope'. Type /? for help" in result.stderr
    assert "Set parameter 'num_predict' to '2'" in result.stderr and "Set system message." in result.stderr
    replies = [part.strip() for part in result.stdout.split(">>> ") if part.strip()]
    assert len(replies) == 1, result.stdout  # only the message went to the model
    # The same greedy reply as one `run` with that system prompt and 2 tokens (FAST alone would give 12).
    alone = run_cli("run", str(model_path), "Name a colour.", "--system", "Answer in French.", "--temp", "0", "-n", "2")
    assert replies[0] == alone.stdout.strip() and alone.stdout.strip(), alone.stderr


def test_line_chat_loads_another_model_and_goes_on(model_path: Path, gemma_path: Path, tmp_path: Path) -> None:
    """/load switches the model mid-chat (Ollama's /load; the conversation goes on, /clear forgets it); a model
    that is not there, or that llama.cpp refuses, is said so in a line and the chat goes on with the one before."""
    from tests.gguf_files import with_metadata

    refused = with_metadata(model_path, tmp_path / "refused.gguf", {"tokenizer.ggml.model": "no-such-tokenizer"})
    lines = [
        "/show info",
        "/load no-such-model",
        f"/load {refused}",
        "Name a colour.",
        f"/load {gemma_path}",
        "/show info",
        "/clear",
        "Name a colour.",
        "/bye",
    ]
    result = line_chat_in_a_terminal(["run", str(model_path), *FAST], lines)
    assert result.code == 0, result.stderr
    said = result.stderr
    smol, gemma = said.split(f"Loading model '{gemma_path}'")
    assert "architecture      llama" in smol and "quantization      Q4_1" in smol
    assert "localchat: not found; no-such-model is not downloaded" in smol and "Traceback" not in said
    assert "refused.gguf: see the engine log for why; still chatting with Smollm2 135M" in smol
    assert "architecture      gemma3" in gemma and "quantization      Q4_K_M" in gemma and "Chatting with" in gemma
    replies = [part.strip() for part in result.stdout.split(">>> ") if part.strip()]
    assert len(replies) == 2, result.stdout
    assert replies[0] == run_cli("run", str(model_path), "Name a colour.", *FAST).stdout.strip()  # still SmolLM2
    assert replies[1] == run_cli("run", str(gemma_path), "Name a colour.", *FAST).stdout.strip()


def test_line_chat_ends_in_a_line_when_no_model_is_left_to_chat_with(model_path: Path, tmp_path: Path) -> None:
    """/load of a model llama.cpp refuses, while the file of the one before was deleted: that one cannot come back,
    so the chat ends with one line and exit 2 (it would go on with no model, each message failing)."""
    from tests.gguf_files import with_metadata

    refused = with_metadata(model_path, tmp_path / "refused.gguf", {"tokenizer.ggml.model": "no-such-tokenizer"})
    first = Path(shutil.copy(model_path, tmp_path / "first.gguf"))
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", "run", str(first), *FAST],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(follower)
    try:
        assert process.stderr.readline().startswith("Chatting with")  # loaded: now its file goes
        first.unlink()
        os.write(leader, f"/load {refused}\nName a colour.\n/bye\n".encode())
        _, stderr = process.communicate(timeout=120)
    finally:
        os.close(leader)
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("localchat: error: ") and last.endswith("no model is loaded, so the chat ends"), stderr
    assert "first.gguf" in last


def test_run_verbose_prints_the_timings_as_ollama_does(model_path: Path) -> None:
    """--verbose: the reply alone on stdout, then Ollama's timing lines on stderr, counted as --json counts them."""
    verbose = run_cli("run", str(model_path), "Name a colour.", *FAST, "--verbose")
    report = json.loads(run_cli("run", str(model_path), "Name a colour.", *FAST, "--json").stdout)
    assert verbose.code == 0 and verbose.stdout.strip() == report["text"].strip(), verbose.stderr
    said = dict(line.split(":", 1) for line in verbose.stderr.splitlines() if ":" in line)
    assert said["eval count"].strip() == f"{report['usage']['completion_tokens']} token(s)"
    assert said["prompt eval count"].strip() == f"{report['usage']['evaluated_prompt_tokens']} token(s)"
    assert float(said["eval rate"].split()[0]) > 0 and said["load duration"].strip().endswith("s")
    lines = ["/set verbose", "Name a colour.", "/set quiet", "Name a colour.", "/bye"]
    chat = line_chat_in_a_terminal(["run", str(model_path), *FAST], lines)  # Ollama's /set verbose and quiet
    assert "Set 'verbose' mode." in chat.stderr and "Set 'quiet' mode." in chat.stderr
    assert chat.stderr.count("\neval rate:") == 1 and "load duration" not in chat.stderr, chat.stderr


def test_format_json_in_run_and_in_the_line_chat(model_path: Path) -> None:
    """Ollama's `run --format json` and `/set format json` / `/set noformat`: the reply is one JSON object."""
    ask = "Describe a cat as JSON with name and age."
    held = run_cli("run", str(model_path), ask, "--format", "json", "--temp", "0", "-n", "120")
    assert held.code == 0 and isinstance(json.loads(held.stdout), dict), held.stdout + held.stderr
    lines = ["/set format json", ask, "/set noformat", "/clear", ask, "/bye"]
    chat = line_chat_in_a_terminal(["run", str(model_path), "--temp", "0", "-n", "120"], lines)
    assert "Set format to 'json' mode." in chat.stderr and "Disabled format." in chat.stderr
    replies = [part.strip() for part in chat.stdout.split(">>> ") if part.strip()]
    assert len(replies) == 2 and json.loads(replies[0]) == json.loads(held.stdout), chat.stdout
    assert replies[1].startswith("```"), replies[1]  # free again: this model fences its JSON in Markdown
    cut = run_cli("run", str(model_path), ask, "--format", "json", "--temp", "0", "-n", "5")
    assert cut.code == 0 and cut.stderr.strip().endswith("its json is cut off"), cut.stderr  # said, for scripts
    assert "think" not in held.stderr  # thinking is off for a JSON reply, and nothing says --think was given
    bad = run_cli("run", str(model_path), ask, "--format", "yaml")
    assert_one_line_error(bad, "--format", "json")


def test_line_chat_sends_a_triple_quoted_block_as_one_message(model_path: Path) -> None:
    """As in Ollama: \"\"\" opens a message of several lines (each line was its own message before)."""
    lines = ['"""Translate to French:', "good morning", 'good night"""', "/bye"]
    result = line_chat_in_a_terminal(["run", str(model_path), *FAST], lines)
    assert result.code == 0, result.stderr
    replies = [part.strip() for part in result.stdout.split(">>> ") if part.strip()]
    assert len(replies) == 1, result.stdout
    alone = run_cli("run", str(model_path), "Translate to French:\ngood morning\ngood night", *FAST)
    assert replies[0].removeprefix("... ").removeprefix("... ").strip() == alone.stdout.strip(), result.stdout


def test_line_chat_edits_lines_and_recalls_them_with_up(model_path: Path) -> None:
    """In a terminal the line chat reads through readline, as Ollama's prompt does: Up brings back an earlier
    line (before, it sent the escape sequence "^[[A" to the model). After /clear the recalled message is answered
    as `run` answers it alone."""
    shown = plain_text(
        line_chat_on_a_terminal(["run", str(model_path), *FAST], b"Name a colour.\n/clear\n\x1b[A\x1b[A\n/bye\n")
    )
    reply = run_cli("run", str(model_path), "Name a colour.", *FAST).stdout.strip()
    assert reply and shown.count(reply) == 2, shown


def test_line_chat_keeps_its_lines_for_the_next_run(model_path: Path) -> None:
    """As Ollama keeps ~/.ollama/history: Up in a new line chat brings back the last run's lines."""
    from localchat.config import paths

    line_chat_on_a_terminal(["run", str(model_path), *FAST], b"Name a colour.\n/bye\n")
    shown = plain_text(line_chat_on_a_terminal(["run", str(model_path), *FAST], b"\x1b[A\x1b[A\n/bye\n"))
    reply = run_cli("run", str(model_path), "Name a colour.", *FAST).stdout.strip()
    assert reply and shown.count(reply) == 1, shown
    assert (paths().data_dir / "line_history").read_text().count("Name a colour.") == 2


def test_line_chat_wraps_words_at_the_terminals_width(model_path: Path) -> None:
    """As Ollama's run: on a 40-column terminal no word of the reply is cut at the edge (the reply went on mid-word
    to the next line); --nowordwrap leaves the wrapping to the terminal."""
    import pyte

    def screen(*flags: str) -> list[str]:
        shown = line_chat_on_a_terminal(["run", str(model_path), "-n", "60", "--temp", "0", *flags], TYPED, 40)
        terminal = pyte.Screen(40, 50)
        pyte.Stream(terminal).feed(shown)
        return [line.rstrip() for line in terminal.display if line.strip()]

    TYPED = b"Tell me about the sea.\n/bye\n"
    reply = run_cli("run", str(model_path), "Tell me about the sea.", "-n", "60", "--temp", "0").stdout.split()
    lines = screen()
    start = next(i for i, line in enumerate(lines) if line.startswith(">>> Tell me")) + 1
    shown = [word for line in lines[start:] for word in line.split() if line != ">>> /bye"]
    assert shown == reply and len(lines[start:]) > 5, lines  # every word whole, over several lines
    unwrapped = [word for line in screen("--nowordwrap")[start:] for word in line.split()]
    assert unwrapped != reply and "".join(unwrapped[:-2]) == "".join(reply)  # the terminal cuts words


def test_what_is_typed_during_a_reply_waits_for_the_next_prompt(model_path: Path) -> None:
    """Typed while a reply streams, "/bye" was echoed by the terminal into the reply's text; now it is kept unshown
    and appears (and runs) at the next prompt, the reply whole."""
    import pyte

    leader, follower = os.openpty()
    args = ["run", str(model_path), "-n", "200", "--temp", "0", "--nowordwrap"]
    process = subprocess.Popen([sys.executable, "-m", "localchat", *args], stdin=follower, stdout=follower)
    os.close(follower)
    shown = bytearray()
    try:
        while b">>> " not in shown:
            shown += os.read(leader, 4096)
        os.write(leader, b"Tell me about the sea.\n")
        while b"The sea" not in shown:  # the reply has begun
            shown += os.read(leader, 4096)
        os.write(leader, b"/bye\n")
        with contextlib.suppress(OSError):  # the terminal closes with the process
            while chunk := os.read(leader, 4096):
                shown += chunk
        assert process.wait(timeout=60) == 0
    finally:
        os.close(leader)
    screen = pyte.Screen(200, 50)
    pyte.Stream(screen).feed(shown.decode())
    lines = [line.rstrip() for line in screen.display if line.strip()]
    reply = run_cli("run", str(model_path), "Tell me about the sea.", "-n", "200", "--temp", "0").stdout.strip()
    assert lines[-1] == ">>> /bye" and "/bye" not in "".join(lines[:-1]), lines
    assert "".join("".join(lines[1:-1]).split()) == "".join(reply.split()), lines  # whole, nothing between


def test_line_chat_takes_a_paste_of_several_lines_as_one_message(model_path: Path) -> None:
    """The line chat asks the terminal to mark pastes (bracketed paste, which Python turns off), and a paste so
    marked is one message, its lines and all (each line was sent alone)."""
    pasted = b"\x1b[200~Translate to French:\ngood morning\ngood night\x1b[201~\n/bye\n"
    terminal = line_chat_on_a_terminal(["run", str(model_path), *FAST], pasted)
    assert "\x1b[?2004h" in terminal  # asked: only then do terminals mark a paste
    shown = plain_text(terminal)
    reply = run_cli("run", str(model_path), "Translate to French:\ngood morning\ngood night", *FAST).stdout.strip()
    assert reply and shown.count(reply) == 1 and shown.count(">>> ") == 2, shown  # one reply, then /bye


def test_bench_json(model_path: Path) -> None:
    result = run_cli("bench", str(model_path), "--json", "-r", "1")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"load_s", "ttft_s", "prompt_tok_s", "decode_tok_s", "threads", "turns"} <= set(report)
    assert len(report["turns"]) == 10
    assert set(report["turns"][0]) == {"new_tokens", "evaluated_tokens", "ttft_s"}
    assert all(t["evaluated_tokens"] <= t["new_tokens"] * 1.2 + 1 for t in report["turns"][1:])
    for case in ("edit", "prose"):
        lookup = report["speculative"][case]
        assert lookup["plain_tok_s"] > 0 and lookup["lookup_tok_s"] > 0 and lookup["tokens"] > 100
        assert lookup["speedup"] > 0
    assert report["speculative"]["edit"]["acceptance"] > 0.3  # the reply copies the file: drafts are taken


def test_bench_speed_only_measures_prompt_and_decode_alone(model_path: Path) -> None:
    result = run_cli("bench", str(model_path), "--json", "-r", "2", "--speed-only")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["prompt_tokens"] == 512 and report["prompt_tok_s"] > 0 and report["decode_tok_s"] > 0
    assert report["prompt_graphs_reused"] == 2  # each measured prompt reused the graph of the one before
    for kind in ("prompt", "decode"):  # each repetition's rate, and the reported one is their median
        runs = report[f"{kind}_runs_tok_s"]
        assert len(runs) == 2 and min(runs) > 0 and report[f"{kind}_tok_s"] == pytest.approx(sum(runs) / 2)
    assert report["turns"] == [] and report["speculative"] == {} and report["reopen"] is None
    assert report["cancel_ms"] is report["count_long_first_ms"] is report["decode_logprobs_tok_s"] is None
    text = run_cli("bench", str(model_path), "-r", "1", "--speed-only")
    assert text.code == 0 and "decode " in text.stdout and "cancel" not in text.stdout and "turn" not in text.stdout


LIST = "red, green, blue, cyan, magenta, yellow, black, white, orange, purple"
REPEAT = (f"Repeat this list three times, one line each: {LIST}.", "-n", "60", "--temp", "0")


def test_run_reports_prompt_lookups_drafts_and_no_lookup_turns_it_off(model_path: Path, home: Path) -> None:
    with_lookup = json.loads(run_cli("run", str(model_path), *REPEAT, "--json").stdout)
    drafts = with_lookup["speculative"]
    assert drafts["drafted"] >= drafts["accepted"] > 0
    without = json.loads(run_cli("run", str(model_path), *REPEAT, "--json", "--no-lookup").stdout)
    assert without["speculative"] is None and without["text"] == with_lookup["text"]
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text("[engine]\nlookup = false\n")
    assert json.loads(run_cli("run", str(model_path), *REPEAT, "--json").stdout)["speculative"] is None
    assert json.loads(run_cli("run", str(model_path), *REPEAT, "--json", "--lookup").stdout)["speculative"]
    (home / "config" / "config.toml").write_text('[engine]\nlookup = "yes"\n')
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "engine.lookup must be true or false")


def test_run_no_mmap_reads_the_model_into_memory_from_the_flag_or_the_settings(model_path: Path, home: Path) -> None:
    mapped = json.loads(run_cli("run", str(model_path), *REPEAT, "--json", "--no-lookup").stdout)
    read = json.loads(run_cli("run", str(model_path), *REPEAT, "--json", "--no-lookup", "--no-mmap").stdout)
    assert mapped["offload"]["mmap"] is True and read["offload"]["mmap"] is False
    assert read["text"] == mapped["text"]
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text("[engine]\nmmap = false\n")
    assert json.loads(run_cli("run", str(model_path), "hi", "-n", "2", "--json").stdout)["offload"]["mmap"] is False
    flagged = run_cli("run", str(model_path), "hi", "-n", "2", "--json", "--mmap").stdout
    assert json.loads(flagged)["offload"]["mmap"] is True  # the flag beats the settings file
    (home / "config" / "config.toml").write_text('[engine]\nmmap = "no"\n')
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "engine.mmap must be true or false")


def test_run_with_a_draft_model_gives_the_same_text_and_refuses_one_of_another_vocabulary(
    model_path: Path, gemma_path: Path, home: Path
) -> None:
    plain = json.loads(run_cli("run", str(model_path), *REPEAT, "--json", "--no-lookup").stdout)
    result = run_cli("run", str(model_path), *REPEAT, "--json", "--no-lookup", "--draft", str(model_path))
    drafted = json.loads(result.stdout)
    assert drafted["speculative"]["source"] == "draft model" and drafted["text"] == plain["text"]
    both = json.loads(run_cli("run", str(model_path), *REPEAT, "--json", "--draft", str(model_path)).stdout)
    assert both["speculative"]["source"] == "lookup + draft model" and both["text"] == plain["text"]
    refused = run_cli("run", str(model_path), "hi", "--draft", str(gemma_path))
    assert_one_line_error(refused, "gemma-3-270m-q4_k_m.gguf cannot draft for SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "same family" in refused.stderr
    assert_one_line_error(run_cli("run", str(model_path), "hi", "--draft", "nosuch:1b"), "--draft: ")
    assert_one_line_error(run_cli("run", str(model_path), "hi", "--draft", str(home / "none.gguf")), "no model file")
    # From the settings, a draft is for every model: one it does not fit loads without it, and says so
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(f'[engine]\ndraft = "{gemma_path}"\n')
    noted = run_cli("run", str(model_path), *REPEAT, "--json")
    assert noted.code == 0 and json.loads(noted.stdout)["text"] == plain["text"]
    assert "cannot draft for" in noted.stderr and "drafting is off" in noted.stderr
    (home / "config" / "config.toml").write_text("[engine]\ndraft = 5\n")
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "engine.draft must be a model name or path")


# --- bad input: one line on stderr, exit code 2, no traceback, nothing left behind ---------------------------


@pytest.mark.parametrize("case", ["random", "html", "empty", "header-cut", "data-cut", "missing", "directory"])
def test_bad_model_files(case: str, tmp_path: Path, model_path: Path) -> None:
    path, message = bad_files(tmp_path, model_path)[case]
    result = run_cli("run", str(path), "hi", cwd=tmp_path)
    assert_one_line_error(result, message)  # exit code 2: no signal, no crash


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root reads anything: needs setpriv")
def test_unreadable_model_file(model_path: Path) -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="localchat-perm-"))  # pytest's own tmp tree is closed to others
    tmp_path.chmod(0o777)
    locked = tmp_path / "locked.gguf"
    shutil.copy(model_path, locked)
    locked.chmod(0)
    command_prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: run the command as nobody
        command_prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    completed = subprocess.run(
        [*command_prefix, sys.executable, "-m", "localchat", "run", str(locked), "hi"],
        capture_output=True,
        text=True,
        env={**os.environ, "LOCALCHAT_HOME": str(home)},
        cwd=tmp_path,
        timeout=60,
    )
    shutil.rmtree(tmp_path)
    assert_one_line_error(CliResult(completed.returncode, completed.stdout, completed.stderr), "permission denied")


def test_prompt_longer_than_the_context(model_path: Path) -> None:
    result = run_cli("run", str(model_path), "word " * 600, "--ctx", "256")
    assert_one_line_error(result, "context window is 256", "tokens too many")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--temperature", "9"), "--temperature"),
        (("--top-p", "1.5"), "--top-p"),
        (("--top-k", "-1"), "--top-k"),
        (("--min-p", "2"), "--min-p"),
        (("--repeat-penalty", "0"), "--repeat-penalty"),
        (("--max-tokens", "0"), "--max-tokens"),
        (("--seed", "-5"), "--seed"),
        (("--temperature", "warm"), "--temperature"),
        (("--gpu-layers", "lots"), "--gpu-layers"),
        (("--ctx", "0"), "--ctx"),
        (("--threads", "0"), "--threads"),
        (("--preset", "wild"), "--preset"),
        (("--no-such-flag",), "--no-such-flag"),
    ],
)
def test_invalid_flag_values(flags: tuple[str, ...], message: str, model_path: Path) -> None:
    assert_one_line_error(run_cli("run", str(model_path), "hi", *flags), message)


def test_empty_prompt_and_empty_stdin(model_path: Path) -> None:
    assert_one_line_error(run_cli("run", str(model_path), "   "), "prompt is empty")
    assert_one_line_error(run_cli("run", str(model_path), input=""), "stdin was empty")


def test_bad_settings_file(model_path: Path, home: Path) -> None:
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text("[sampling]\ntemprature = 0.5\n")
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "unknown key sampling.temprature")
    (home / "config" / "config.toml").write_text("[sampling\n")
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "not valid TOML")
    (home / "config" / "config.toml").write_text("[sampling]\ntemperature = 7\n")
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "temperature must be between 0 and 5")
    (home / "config" / "config.toml").write_text("[engine]\nctx = true\n")
    assert_one_line_error(run_cli("run", str(model_path), "hi"), "engine.ctx must be a positive whole number")
    (home / "config" / "config.toml").write_text('[keys]\n"chat.regenrate" = "f5"\n')
    assert_one_line_error(run_cli(), "unknown binding id keys.chat.regenrate")
    (home / "config" / "config.toml").write_text('[keys]\n"chat.regenerate" = "ctrl g"\n')
    assert_one_line_error(run_cli(), "keys.chat.regenerate must be a string of keys")


def test_settings_file_defaults_apply(model_path: Path, home: Path) -> None:
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text("[sampling]\nmax_tokens = 3\n[engine]\nctx = 512\n")
    report = json.loads(run_cli("run", str(model_path), "Tell me a long story.", "--json").stdout)
    assert report["usage"]["completion_tokens"] <= 3


def test_unwritable_state_directory(model_path: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("run", str(model_path), "hi", env={"LOCALCHAT_HOME": str(blocker / "home")})
    assert_one_line_error(result, "cannot create", "LOCALCHAT_HOME")


def test_app_refuses_a_damaged_database_untouched(home: Path) -> None:
    database = home / "data" / "localchat.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"not a database" * 100)
    assert_one_line_error(run_cli(), "damaged or not a localchat database")
    assert database.read_bytes() == b"not a database" * 100


def test_ctrl_c_during_run_stops_the_reply_keeps_its_text_and_ends_the_engine(model_path: Path, home: Path) -> None:
    # Greedy, so the reply is known to be long: SmolLM2 repeats itself about the sea to the last of its 4,000
    # tokens. With a drawn seed, 20 of 60 replies to the prompt this test had ("Count from 1 to 5000.") ended
    # within 60 tokens, one of them in 6: over before the signal came, as in one CI run (exit 0, not 130).
    ask = ("run", str(model_path), "Tell me about the sea.", "-n", "4000", "--temp", "0")
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", *ask], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    first = process.stdout.read(8)  # the reply is streaming
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    # What streamed stays on screen; the reply stopped far short of its 4,000 tokens.
    assert len(first) == 8 and len(first + rest) < 3000
    assert not engines_of(home)  # the engine process went with it


def engines_of(home: Path) -> list[int]:
    """Engine processes whose log is under `home` (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"localchat.engine.worker" in command and str(home).encode() in command:
                found.append(int(entry.name))
    return found


def test_run_on_a_terminal_shows_the_load_progress_then_clears_it(model_path: Path) -> None:
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", "run", str(model_path), "Hi", *FAST],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    try:
        while process.poll() is None or (output.endswith(b"") and select_ready(leader)):
            if select_ready(leader):
                try:
                    output += os.read(leader, 65536)
                except OSError:
                    break
        process.wait(timeout=60)
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert "loading SmolLM2-135M-Instruct.Q4_1.gguf… 100%".encode() in output
    after = output.split(b"100%")[-1]
    assert after.startswith(b"\r\x1b[K") and after[4:].strip()  # the line cleared, then the reply


def select_ready(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0.1)[0])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ messages[0]['content'] * 100000000 }}", "builds more than 64 M characters"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "ran for more than 5 s",
        ),
    ],
    ids=["huge string", "endless loops"],
)
def test_a_hostile_chat_template_is_stopped_with_one_line(
    template: str, message: str, model_path: Path, tmp_path: Path
) -> None:
    """A template that builds a huge string (localchat run was still busy after 60 s) or loops for ever."""
    from tests.gguf_files import with_metadata

    hostile = with_metadata(model_path, tmp_path / "hostile-template.gguf", {"tokenizer.chat_template": template})
    result = run_cli("run", str(hostile), "Hi", *FAST)
    assert_one_line_error(result, "the chat template of hostile-template.gguf was stopped", message)


def test_a_template_that_refuses_the_chat_is_one_line_naming_the_model_and_its_words(
    model_path: Path, tmp_path: Path
) -> None:
    """A template that compiles but raises when rendered (its own raise_exception, as Gemma 2's does on a system
    prompt): one line with the model's file and the template's message, no traceback."""
    from tests.gguf_files import with_metadata

    template = "{{ raise_exception('Only user turns, please') }}"
    refusing = with_metadata(model_path, tmp_path / "refusing.gguf", {"tokenizer.chat_template": template})
    result = run_cli("run", str(refusing), "Hi", *FAST)
    assert_one_line_error(result, "the chat template of refusing.gguf failed on this conversation: Only user turns")


def test_run_json_keeps_a_thinking_models_reasoning_apart(thinking_model_path: Path) -> None:
    """Qwen3.5's template opens <think> in the prompt: the small model replies inside it and never closes it."""
    thinking = json.loads(run_cli("run", str(thinking_model_path), "Capital of France?", *FAST, "--json").stdout)
    assert thinking["reasoning_state"] == "open" and thinking["reasoning"] and thinking["text"] == ""
    assert thinking["usage"]["reasoning_tokens"] == thinking["usage"]["completion_tokens"] > 0
    assert thinking["timings"]["thinking_s"] > 0
    off = json.loads(
        run_cli("run", str(thinking_model_path), "Capital of France?", *FAST, "--json", "--no-think").stdout
    )
    assert off["reasoning_state"] == "none" and off["reasoning"] is None and off["text"]
    assert off["usage"]["prompt_tokens"] > thinking["usage"]["prompt_tokens"]  # the empty think block in the prompt


def run_on_terminal(*args: str) -> bytes:
    from tests.tui.test_terminal import TerminalApp

    app = TerminalApp(*args)
    deadline = time.monotonic() + 120
    while app.process.poll() is None and time.monotonic() < deadline:
        app.read()
    for _ in range(5):
        app.read(0.05)
    code = app.process.wait(timeout=1)
    app.close()
    assert code == 0, app.output
    return app.output


def test_run_on_a_terminal_prints_reasoning_dimmed_or_hides_it(thinking_model_path: Path) -> None:
    reply = json.loads(run_cli("run", str(thinking_model_path), "Capital of France?", *FAST, "--json").stdout)
    first_words = reply["reasoning"].split("\n")[0][:12].encode()
    shown = run_on_terminal("run", str(thinking_model_path), "Capital of France?", *FAST)
    assert b"\x1b[2m" + first_words in shown  # dimmed
    assert b"no answer yet" in shown  # it ended inside its reasoning: said so
    hidden = run_on_terminal("run", str(thinking_model_path), "Capital of France?", *FAST, "--hide-thinking")
    assert first_words not in hidden and b"\x1b[2m" not in hidden
    piped = run_cli("run", str(thinking_model_path), "Capital of France?", *FAST)
    assert piped.code == 0 and piped.stdout.strip() == ""  # piped: the answer alone (there is none yet)
    assert "ended inside its reasoning, with no answer (--json has it)" in piped.stderr


def test_think_flags_on_a_model_without_a_switch_say_so(model_path: Path) -> None:
    result = run_cli("run", str(model_path), "Hi", *FAST, "--no-think")
    assert result.code == 0
    assert "does not think: --think/--no-think changes nothing" in result.stderr


TRICKY = "Hello wörld 🙂 日本語\n\tcode: `x = 1`  <|im_start|>end"


def test_tokenize_json_round_trips_and_agrees_with_the_counter(model_path: Path, engine_for_cli) -> None:
    result = run_cli("tokenize", str(model_path), TRICKY, "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"count", "tokens"} and all(set(t) == {"id", "piece"} for t in report["tokens"])
    assert "".join(t["piece"] for t in report["tokens"]) == TRICKY  # a character split over tokens included
    assert any(t["piece"] == "" for t in report["tokens"])  # 日本語 spans tokens: its bytes complete later
    assert report["count"] == len(report["tokens"])
    # The live counter's share for this text as a message: the same tokens (ChatML frames it with specials).
    with_text = engine_for_cli.count_chat_tokens([ChatMessage("user", TRICKY)])
    empty = engine_for_cli.count_chat_tokens([ChatMessage("user", "")])
    assert report["count"] == with_text - empty
    assert "<|im_start|>" in [t["piece"] for t in report["tokens"]]  # a special token's text is that token


def test_tokenize_reads_stdin_and_needs_some_text(model_path: Path) -> None:
    piped = run_cli("tokenize", str(model_path), input="Hi there")
    assert piped.code == 0 and piped.stdout.splitlines() == ['26843\t"Hi"', '665\t" there"']
    assert_one_line_error(run_cli("tokenize", str(model_path), input=""), "no text")


def test_run_logprobs_are_openai_style_and_change_nothing(model_path: Path) -> None:
    args = ("run", str(model_path), "Name a colour.", "-n", "16", "--temp", "0", "--json")
    plain = json.loads(run_cli(*args).stdout)
    report = json.loads(run_cli(*args, "--logprobs", "4").stdout)
    assert "logprobs" not in plain and report["text"] == plain["text"]  # greedy: the same text with or without
    content = report["logprobs"]["content"]
    assert len(content) == report["usage"]["completion_tokens"]  # one per generated token, in order
    assert bytes(b for entry in content for b in entry["bytes"]).decode() == report["text"]
    for entry in content:
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
        top = entry["top_logprobs"]
        assert len(top) == 4 and all(set(t) == {"token", "logprob", "bytes"} for t in top)
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert all(t["logprob"] <= 0 for t in top) and sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-9
        # Temperature 0: the chosen token is always the most likely one of the raw distribution.
        assert (entry["token"], entry["logprob"]) == (top[0]["token"], top[0]["logprob"])
    assert_one_line_error(run_cli(*args, "--logprobs", "0"), "--logprobs")


# --- arena ---------------------------------------------------------------------------------------------------


def test_arena_names_the_models_only_after_the_vote(model_path: Path, gemma_path: Path) -> None:
    from localchat.config import paths
    from localchat.store.db import open_database

    args = ("arena", str(model_path), str(gemma_path), "Say hi.", *FAST)
    names = {"smollm2:135m", gemma_path.name}  # the bundled model is known by its library name, a file by its own
    result = run_cli(*args, "--json", input="a\n")
    assert result.code == 0, result.stderr
    blind, named = (json.loads(line) for line in result.stdout.splitlines())
    assert set(blind["a"]) == set(blind["b"]) == {"text", "stop_reason", "error", "completion_tokens", "decode_tok_s"}
    assert not any(name in result.stdout.splitlines()[0] for name in names)
    assert {named["a"]["model"], named["b"]["model"]} == names
    assert named["vote"] == "a" and named["a"]["text"] == blind["a"]["text"]
    row = open_database(paths().database).battles()[0]
    assert (row["model_a"], row["vote"], row["source"]) == (named["a"]["model"], "a", "cli")
    text = run_cli(*args, input="t\n")
    assert text.code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "── A ──" in lines and "── B ──" in lines
    assert lines[-2].startswith("A: ") and lines[-1].startswith("B: ")
    assert {lines[-2].split(" ")[1], lines[-1].split(" ")[1]} == names
    assert not any(name in line for name in names for line in lines[:-2])


def test_arena_keeps_an_unvoted_battle_on_a_bad_vote(model_path: Path) -> None:
    from localchat.config import paths
    from localchat.store.db import open_database

    args = ("arena", str(model_path), str(model_path), "Say hi.", *FAST)
    assert_one_line_error(run_cli(*args, input="maybe\n"), "'maybe' is not one of a, b, t", "kept without a vote")
    assert_one_line_error(run_cli(*args, input=""), "no vote on stdin")
    battles = open_database(paths().database).battles(voted=False)
    assert len(battles) == 2 and all(b["vote"] is None and b["reply_a"] for b in battles)
    assert_one_line_error(run_cli(*args, "--a", "temperature"), "--a 'temperature': write KEY=VALUE")
    assert_one_line_error(run_cli(*args, "--b", "temperature=9"), "--b: temperature must be between 0 and 5")
    assert_one_line_error(run_cli(*args, "--b", "preset=wild"), "choose one of precise, balanced, creative")
    assert_one_line_error(run_cli("arena", str(model_path)), "give MODEL_A, MODEL_B and PROMPT")
    assert_one_line_error(run_cli("arena", "--leaderboard", "x"), "--leaderboard takes no models")


def test_arena_leaderboard_from_stored_votes(model_path: Path) -> None:
    from localchat.chat.ratings import Battle, fit
    from localchat.config import paths
    from localchat.store.db import NewBattle, open_database

    assert run_cli("arena", "--leaderboard", "--json").stdout.strip() == "[]"
    assert "no votes yet" in run_cli("arena", "--leaderboard").stdout
    store = open_database(paths().ensure().database)
    votes = [("big", "small", "a"), ("small", "big", "b"), ("mid", "small", "a"), ("big", "mid", "tie")]
    votes += [("small", "mid", "bad"), ("mid", "big", "a"), ("big", "big", "a")]
    cool, warm = {"temperature": 0.2}, {"temperature": 1.0}
    for i, (a, b, vote) in enumerate(votes):
        battle = NewBattle("q", [], a, cool if i % 2 else warm, b, warm, "a", "cli")
        store.vote_battle(store.add_battle(battle), vote)
    store.add_battle(NewBattle("q", [], "big", cool, "small", cool, "a", "cli"))  # never voted: not counted
    table = json.loads(run_cli("arena", "--leaderboard", "--json").stdout)
    reference = fit([Battle(a, b, v) for a, b, v in votes])
    assert [row["model"] for row in table] == sorted(reference, key=lambda m: -reference[m])
    for row in table:
        assert row["rating"] == round(reference[row["model"]], 1)
        assert row["ci"][0] <= row["rating"] <= row["ci"][1]
    assert {row["model"]: row["votes"] for row in table} == {"big": 5, "small": 4, "mid": 4}
    by_settings = json.loads(run_cli("arena", "--leaderboard", "--json", "--by-settings").stdout)
    assert {row["model"] for row in by_settings} >= {"big (temp 0.2, top-p 0.95, top-k 40, min-p 0.05)"}
    shown = run_cli("arena", "--leaderboard").stdout
    assert shown.splitlines()[1].split()[:2] == ["1", table[0]["model"]] and "of 5 votes that picked a side" in shown


def test_show_names_the_format_a_model_without_a_template_is_prompted_in(gemma_path: Path) -> None:
    from localchat.engine.client import EngineClient

    shown = run_cli("show", str(gemma_path))
    assert shown.code == 0, shown.stderr
    assert "chat template   no (Gemma's format is used)" in shown.stdout.splitlines()
    with EngineClient() as engine:  # what the engine does with the same file
        assert engine.load(gemma_path).chat_template == "gemma (fallback)"
