"""pull / list / show / rm / import / search end to end: the real huggingface_hub client against a fake hub on
127.0.0.1 serving the real test model."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localchat.models.catalog import lookup
from tests.conftest import CliResult, assert_one_line_error, run_cli
from tests.fakehub import FakeFile, FakeHub, FakeHubServer, FakeRepo

REPO = "acme/SmolLM2-135M-Instruct-GGUF"


@pytest.fixture
def hub(model_path: Path) -> Iterator[FakeHub]:
    fake = FakeHub(
        {
            REPO: FakeRepo(
                {
                    "SmolLM2-135M-Instruct-Q4_1.gguf": FakeFile(model_path),
                    "SmolLM2-135M-Instruct-Q8_0.gguf": FakeFile(b"not used"),
                    "README.md": FakeFile(b"# readme"),
                },
                downloads=500,
            ),
            "acme/only-big-GGUF": FakeRepo({"big-F16.gguf": FakeFile(b"x"), "big-Q8_0.gguf": FakeFile(b"y")}),
            "acme/gated-GGUF": FakeRepo({"m-Q4_K_M.gguf": FakeFile(b"z")}, gated=True),
            "acme/evil-GGUF": FakeRepo({"../../evil-Q4_K_M.gguf": FakeFile(b"evil")}),
            "acme/huge-GGUF": FakeRepo({"huge-Q4_K_M.gguf": FakeFile(b"h", size_override=10**16)}),
        }
    )
    with FakeHubServer(fake) as server:
        os.environ["HF_ENDPOINT"] = server.url
        os.environ.pop("HF_HUB_OFFLINE", None)
        yield fake
        os.environ.pop("HF_ENDPOINT", None)


def cli(*args: str, **kwargs) -> CliResult:
    # conftest sets HF_HUB_OFFLINE=1 for every test; pull tests talk to the fake hub.
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": os.environ["HF_ENDPOINT"], "HF_TOKEN": ""}
    env.update(kwargs.pop("env", {}))
    return run_cli(*args, env=env, **kwargs)


def listed_models(result: CliResult) -> list[dict]:
    """`list --json`, less the bundled model (the test venv has its package installed)."""
    return [m for m in json.loads(result.stdout) if m["source"] != "bundled"]


def models_dir(home: Path) -> Path:
    return home / "data" / "models"


def test_pull_picks_the_best_4bit_verifies_and_registers(hub: FakeHub, home: Path, model_path: Path) -> None:
    result = cli("pull", REPO)
    assert result.code == 0, result.stderr
    assert "has no Q4_K_M; using Q4_1" in result.stderr  # says which quant it picked
    assert "memory:" in result.stderr and "verified sha256" in result.stderr
    pulled = models_dir(home) / REPO / "SmolLM2-135M-Instruct-Q4_1.gguf"
    assert hashlib.sha256(pulled.read_bytes()).hexdigest() == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert not list((models_dir(home) / ".partial").glob("*"))
    listed = listed_models(cli("list", "--json"))
    assert [m["ref"] for m in listed] == [f"{REPO}:Q4_1"]
    assert listed[0]["quant"] == "Q4_1" and listed[0]["parameters"] == 134_515_008
    # The name now works everywhere a model is expected.
    reply = json.loads(cli("run", f"{REPO}:Q4_1", "Hi", "-n", "5", "--json").stdout)
    assert reply["usage"]["completion_tokens"] <= 5
    assert listed_models(cli("list", "--json"))[0]["last_used"] is not None


def test_resume_after_a_cut_across_two_processes(hub: FakeHub, home: Path, model_path: Path) -> None:
    hub.cut_after = 30_000_000
    first = cli("pull", f"{REPO}:Q4_1")
    assert_one_line_error(first, "was cut off at", "pull again to resume")
    parts = list((models_dir(home) / ".partial").glob("*.part"))
    assert len(parts) == 1
    kept = parts[0].stat().st_size
    assert 0 < kept <= 30_000_000 and f"cut off at {kept} of" in first.stderr
    assert listed_models(cli("list", "--json")) == []  # a partial file is never a model
    hub.cut_after = None
    second = cli("pull", f"{REPO}:Q4_1")
    assert second.code == 0, second.stderr
    assert hub.ranges == [f"bytes={kept}-"]  # only the rest was asked for
    pulled = models_dir(home) / REPO / "SmolLM2-135M-Instruct-Q4_1.gguf"
    assert pulled.read_bytes() == model_path.read_bytes()


def test_checksum_mismatch_removes_the_bad_file(hub: FakeHub, home: Path) -> None:
    hub.corrupt = True
    assert_one_line_error(cli("pull", f"{REPO}:Q4_1"), "checksum mismatch", "removed")
    assert not list(models_dir(home).rglob("*.gguf")) and not list(models_dir(home).rglob("*.part"))
    assert listed_models(cli("list", "--json")) == []


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("acme/nope-GGUF", "no repo acme/nope-GGUF"),
        (f"{REPO}:Q2_K", "has no Q2_K file; it has: Q4_1, Q8_0"),
        ("acme/only-big-GGUF", "has no 4-bit GGUF; it has: F16, Q8_0"),
        ("acme/gated-GGUF", "is gated"),
        ("acme/evil-GGUF", "refusing the hub file name"),
        ("acme/huge-GGUF", "not enough disk space"),
        ("not a ref!", "is not a model"),
        ("a/..", "'a/..' is not a valid hub repo id: each of its two parts"),
        ("acme/x.git", "'acme/x.git' is not a valid hub repo id"),
    ],
)
def test_pull_errors(hub: FakeHub, home: Path, ref: str, message: str) -> None:
    assert_one_line_error(cli("pull", ref), message)
    assert not list(models_dir(home).rglob("*.gguf"))
    assert not (home.parent / "evil-Q4_K_M.gguf").exists()


def test_offline_says_so_and_lists_local_models(hub: FakeHub, model_path: Path) -> None:
    assert cli("import", str(model_path), "--name", "smol").code == 0
    result = cli("pull", REPO, env={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(result, "offline", "Available locally: smol")
    no_network = cli("run", "acme/other-GGUF", "hi", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert_one_line_error(no_network, "cannot reach the hub", "Available locally: smol")


def test_search_lists_4bit_files_by_downloads(hub: FakeHub) -> None:
    results = json.loads(cli("search", "acme", "--json").stdout)
    assert results[0]["repo"] == REPO and results[0]["four_bit"] == ["Q4_1"]
    assert results[0]["downloads"] >= results[-1]["downloads"]


def test_import_show_and_rm(model_path: Path, tmp_path: Path, home: Path) -> None:
    result = run_cli("import", str(model_path), "--name", "smol")
    assert result.code == 0, result.stderr
    shown = json.loads(run_cli("show", "smol", "--json", "--ctx", "2048").stdout)
    assert shown["architecture"] == "llama" and shown["quant"] == "Q4_1" and shown["layers"] == 30
    assert shown["context_length"] == 8192 and shown["chat_template"] is True and shown["license"] == "apache-2.0"
    assert shown["memory"]["verdict"] == "fits" and shown["memory"]["kv_cache_bytes"] == 2048 * 30 * 3 * 128 * 2
    assert_one_line_error(run_cli("rm", "smol"), "add -y")  # no terminal to ask on
    assert run_cli("rm", "smol", "-y").code == 0
    assert model_path.exists()  # an imported file is forgotten, never deleted
    assert listed_models(run_cli("list", "--json")) == []
    assert_one_line_error(run_cli("show", "smol"), "not found")


def test_import_refuses_a_corrupt_file(tmp_path: Path, model_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(model_path.read_bytes()[:5_000_000])
    assert_one_line_error(run_cli("import", str(broken)), "truncated")
    assert listed_models(run_cli("list", "--json")) == []


def test_models_in_the_hugging_face_cache_are_listed_in_place(model_path: Path, tmp_path: Path) -> None:
    """What llama.cpp -hf and other tools downloaded: found without copying."""
    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--acme--cached-GGUF" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "cached-Q4_K_M.gguf").symlink_to(model_path)
    (cache / "models--acme--cached-GGUF" / "refs").mkdir()
    (cache / "models--acme--cached-GGUF" / "refs" / "main").write_text("a" * 40)
    listed = listed_models(run_cli("list", "--json", env={"HF_HUB_CACHE": str(cache)}))
    assert [(m["ref"], m["source"]) for m in listed] == [("acme/cached-GGUF:Q4_K_M", "hf-cache")]
    assert Path(listed[0]["path"]).resolve() == model_path.resolve() and listed[0]["last_used"] is None
    reply = run_cli("run", "acme/cached-GGUF", "Hi", "-n", "3", env={"HF_HUB_CACHE": str(cache)})
    assert reply.code == 0, reply.stderr
    # Used: `list` says when, though the model has no manifest of ours (it said "never" before)
    listed = listed_models(run_cli("list", "--json", env={"HF_HUB_CACHE": str(cache)}))
    assert listed[0]["last_used"] is not None
    bundled = [m for m in json.loads(run_cli("ls", "--json").stdout) if m["source"] == "bundled"]
    assert bundled and bundled[0]["last_used"] is None  # one found in place but not used: still never
    assert_one_line_error(run_cli("rm", "acme/cached-GGUF", "-y", env={"HF_HUB_CACHE": str(cache)}), "hf cache rm")


@pytest.fixture(scope="module")
def split_parts(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from tests.gguf_files import split_gguf

    return split_gguf(model_path, tmp_path_factory.mktemp("split") / "SmolLM2-Q4_K_M", max_tensors=150)


def test_split_gguf_is_pulled_and_used_whole(hub: FakeHub, home: Path, split_parts: list[Path]) -> None:
    names = [p.name for p in split_parts]
    assert names == ["SmolLM2-Q4_K_M-00001-of-00002.gguf", "SmolLM2-Q4_K_M-00002-of-00002.gguf"]
    hub.repos["acme/split-GGUF"] = FakeRepo(
        {name: FakeFile(path) for name, path in zip(names, split_parts, strict=True)}
    )
    result = cli("pull", "acme/split-GGUF")
    assert result.code == 0, result.stderr
    assert all(name in result.stderr for name in names)
    listed = listed_models(cli("list", "--json"))
    assert [m["ref"] for m in listed] == ["acme/split-GGUF:Q4_K_M"]
    assert listed[0]["parameters"] == 134_515_008  # both shards counted
    assert listed[0]["size_bytes"] == sum(p.stat().st_size for p in split_parts)
    reply = json.loads(cli("run", "acme/split-GGUF", "Hi", "-n", "4", "--json").stdout)
    assert reply["usage"]["completion_tokens"] <= 4
    assert cli("rm", "acme/split-GGUF", "-y").code == 0
    assert not list((models_dir(home) / "acme" / "split-GGUF").glob("*.gguf"))


def test_run_with_a_catalog_name_pulls_it_first(hub: FakeHub, model_path: Path) -> None:
    entry = lookup("qwen3.5:0.8b")
    hub.repos[entry.repo] = FakeRepo({entry.file: FakeFile(model_path)})  # the file the catalog names
    result = cli("run", "qwen3.5:0.8b", "Hi", "-n", "4", "--json")
    assert result.code == 0, result.stderr
    assert "verified sha256" in result.stderr and "no longer has" not in result.stderr
    listed = listed_models(cli("list", "--json"))
    assert [m["name"] for m in listed] == ["qwen3.5:0.8b"]
    table = cli("list").stdout
    assert "qwen3.5:0.8b" in table and "135M" in table and "Q4_1" in table
    assert "memory" in cli("show", "qwen3.5:0.8b").stdout
    # The second run finds it locally: no new download.
    before = len(hub.requests)
    assert cli("run", "qwen3.5:0.8b", "Hi", "-n", "2").code == 0
    assert len(hub.requests) == before


def start_slow_pull(hub: FakeHub, home: Path, until_bytes: int):  # -> subprocess.Popen
    """`localchat pull` of the test repo from a slow hub, returned once its partial file holds `until_bytes`."""
    import signal
    import subprocess
    import sys
    import time

    hub.throttle_s = 0.05
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_TOKEN": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "localchat", "pull", f"{REPO}:Q4_1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal, even when these tests run as a background job (which ignores SIGINT: its
        # children would inherit that, and Python keeps an ignored SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    partial = models_dir(home) / ".partial"
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.stat().st_size > until_bytes for p in partial.glob("*.part")):
        time.sleep(0.05)
    return process


@pytest.mark.parametrize("how", ["ctrl-c", "crash"])
def test_interrupted_pull_resumes(how: str, hub: FakeHub, home: Path, model_path: Path) -> None:
    import signal

    process = start_slow_pull(hub, home, until_bytes=5_000_000)
    partial = models_dir(home) / ".partial"
    process.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == (130 if how == "ctrl-c" else -signal.SIGKILL), stderr
    assert "Traceback" not in stderr
    if how == "ctrl-c":
        assert "run the same command again to resume" in stderr
    kept = next(partial.glob("*.part")).stat().st_size
    assert 0 < kept < model_path.stat().st_size
    hub.throttle_s = 0.0
    assert cli("pull", f"{REPO}:Q4_1").code == 0
    assert hub.ranges[-1] == f"bytes={kept}-"
    assert (models_dir(home) / REPO / "SmolLM2-135M-Instruct-Q4_1.gguf").read_bytes() == model_path.read_bytes()


HOSTILE = "\x1b]52;c;aGVsbG8=\x07\x1b[2J\x9b31m"  # OSC 52 (writes the clipboard), clear screen, C1 CSI


@pytest.fixture(scope="module")
def hostile_model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.gguf_files import with_metadata

    strings = {"general.name": f"Evil{HOSTILE}", "general.license": f"[bold]mit[/bold]{HOSTILE}"}
    return with_metadata(model_path, tmp_path_factory.mktemp("hostile") / "hostile.gguf", strings)


def test_text_from_a_model_file_is_inert_on_every_output(hostile_model: Path, home: Path) -> None:
    """A model file's name and licence reach stdout with no live escape sequence and no markup applied."""
    assert run_cli("import", str(hostile_model), "--name", "hostile").code == 0
    shown = run_cli("show", "hostile")
    assert shown.code == 0, shown.stderr
    for output in (shown.stdout, run_cli("list").stdout):
        assert "\x1b" not in output and "\x9b" not in output and "\x07" not in output
    assert "Evil␛]52;c;aGVsbG8=" in shown.stdout and "[bold]mit[/bold]␛" in shown.stdout
    as_json = json.loads(run_cli("show", "hostile", "--json").stdout)  # scripts get the exact text, escaped
    assert as_json["model_name"] == f"Evil{HOSTILE}"


def test_a_name_with_markup_is_shown_literally(model_path: Path, home: Path) -> None:
    """`--name 'x[/b]'` once crashed import after saving the manifest, and list and rm from then on."""
    imported = run_cli("import", str(model_path), "--name", "x[/b]")
    assert imported.code == 0 and "imported x[/b]" in imported.stderr, imported.stderr
    listed = run_cli("list")
    assert listed.code == 0 and "x[/b]" in listed.stdout, listed.stderr
    removed = run_cli("rm", "x[/b]", "-y")
    assert removed.code == 0 and "removed x[/b]" in removed.stderr
    assert_one_line_error(run_cli("import", str(model_path), "--name", "a\x1b[2Jb"), "control character")
    assert listed_models(run_cli("list", "--json")) == []


# --- a hub that misbehaves (#17 case 7) -----------------------------------------------------------------------


def test_a_silent_hub_ends_the_pull_and_the_next_pull_resumes(hub: FakeHub, home: Path, model_path: Path) -> None:
    """The hub stops sending mid-file with the connection open: the pull gives up after HF_HUB_DOWNLOAD_TIMEOUT
    seconds of silence (it waited for ever), keeps what arrived, and the next pull asks only for the rest."""
    hub.stall_after = 20_000_000
    try:
        first = cli("pull", f"{REPO}:Q4_1", env={"HF_HUB_DOWNLOAD_TIMEOUT": "2"})
    finally:
        hub.release.set()
    assert_one_line_error(first, "the hub sent nothing for 2 s", "SmolLM2-135M-Instruct-Q4_1.gguf", "kept")
    kept = next((models_dir(home) / ".partial").glob("*.part")).stat().st_size
    assert 0 < kept <= 20_000_000 and f"({kept} of" in first.stderr
    hub.stall_after = None
    assert cli("pull", f"{REPO}:Q4_1").code == 0
    assert hub.ranges[-1] == f"bytes={kept}-"
    assert (models_dir(home) / REPO / "SmolLM2-135M-Instruct-Q4_1.gguf").read_bytes() == model_path.read_bytes()


def test_a_hub_that_ignores_range_requests_restarts_the_file(hub: FakeHub, home: Path, model_path: Path) -> None:
    hub.cut_after = 10_000_000
    assert cli("pull", f"{REPO}:Q4_1").code == 2
    hub.cut_after, hub.ignore_range = None, True  # 200 and the whole file instead of 206
    assert cli("pull", f"{REPO}:Q4_1").code == 0
    assert (models_dir(home) / REPO / "SmolLM2-135M-Instruct-Q4_1.gguf").read_bytes() == model_path.read_bytes()


def test_free_disk_space_is_checked_for_the_whole_split_model(hub: FakeHub, home: Path) -> None:
    """Each part fits alone, both do not: nothing is downloaded (part by part, the first was, then it stopped)."""
    import shutil

    models_dir(home).mkdir(parents=True, exist_ok=True)
    part = int(shutil.disk_usage(models_dir(home)).free * 0.6)
    names = ["big-Q4_K_M-00001-of-00002.gguf", "big-Q4_K_M-00002-of-00002.gguf"]
    hub.repos["acme/big-split-GGUF"] = FakeRepo({n: FakeFile(n.encode(), size_override=part) for n in names})
    assert_one_line_error(cli("pull", "acme/big-split-GGUF"), "not enough disk space")
    assert not [r for r in hub.requests if "/resolve/" in r]


def test_two_pulls_of_one_file_do_not_share_its_partial_file(hub: FakeHub, home: Path, model_path: Path) -> None:
    first = start_slow_pull(hub, home, until_bytes=2_000_000)
    partial = models_dir(home) / ".partial"
    assert_one_line_error(cli("pull", f"{REPO}:Q4_1"), "is being downloaded by another localchat right now")
    hub.throttle_s = 0.0
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert (models_dir(home) / REPO / "SmolLM2-135M-Instruct-Q4_1.gguf").read_bytes() == model_path.read_bytes()
    assert not list(partial.glob("*"))


def test_verified_sha256_is_said_only_when_a_hash_was_checked(hub: FakeHub, model_path: Path) -> None:
    hub.repos["acme/no-lfs-GGUF"] = FakeRepo({"m-Q4_K_M.gguf": FakeFile(model_path, lfs=False)})
    result = cli("pull", "acme/no-lfs-GGUF")
    assert result.code == 0, result.stderr
    assert "verified sha256" not in result.stderr
    assert "the hub gave no sha256 for m-Q4_K_M.gguf: only the size was checked" in result.stderr


def test_a_hub_that_has_less_than_it_listed_ends_in_one_line(hub: FakeHub, home: Path) -> None:
    """It answers the resume's Range request with 416 (nothing there): one line, no model registered."""
    hub.repos["acme/short-GGUF"] = FakeRepo({"m-Q4_K_M.gguf": FakeFile(b"x" * 1000, size_override=5000)})
    assert_one_line_error(cli("pull", "acme/short-GGUF"), "stopped at 1000 of 5000 bytes")
    assert_one_line_error(cli("pull", "acme/short-GGUF"), "stopped at 1000 of 5000 bytes")
    assert hub.ranges == ["bytes=1000-"]
    assert listed_models(cli("list", "--json")) == []


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) to mount a small filesystem")
def test_disk_full_mid_download_keeps_the_partial_file_and_the_next_pull_resumes(
    hub: FakeHub, home: Path, model_path: Path
) -> None:
    """The disk fills up while the file arrives (the check before it passed): one line saying so and how much is
    kept, then, with space freed, the same pull resumes. Runs in a private mount namespace with a 300 MB tmpfs
    as the models folder, filled from outside the pull once its download is under way."""
    import subprocess
    import sys

    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("user and mount namespaces are not available here")
    hub.throttle_s = 0.05
    models = models_dir(home)
    models.mkdir(parents=True)
    pull = f"{sys.executable} -m localchat pull {REPO}:Q4_1"
    script = f"""
        set -u
        mount -t tmpfs -o size=300m tmpfs {models}
        {pull} 2> {home}/first.err & pid=$!
        while ! find {models}/.partial -name '*.part' -size +3M 2>/dev/null | grep -q .; do sleep 0.05; done
        dd if=/dev/zero of={models}/filler bs=1M 2>/dev/null
        wait $pid; echo "first=$?" > {home}/codes
        rm {models}/filler
        {pull} 2> {home}/second.err; echo "second=$?" >> {home}/codes
        cmp {models}/{REPO}/SmolLM2-135M-Instruct-Q4_1.gguf {model_path} && echo same >> {home}/codes
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_TOKEN": ""}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, timeout=300, check=True)
    first = (home / "first.err").read_text()
    assert_one_line_error(CliResult(2, "", first), "disk full while downloading SmolLM2-135M-Instruct-Q4_1.gguf")
    assert "bytes kept" in first and "pull again to resume" in first
    assert (home / "codes").read_text().split() == ["first=2", "second=0", "same"]
    assert len(hub.ranges) == 1 and int(hub.ranges[0].removeprefix("bytes=").rstrip("-")) > 3_000_000


def test_a_catalog_file_the_repo_no_longer_has_is_said(hub: FakeHub, model_path: Path) -> None:
    entry = lookup("qwen3.5:0.8b")
    hub.repos[entry.repo] = FakeRepo({"renamed-Q4_K_M.gguf": FakeFile(model_path)})
    result = cli("pull", "qwen3.5:0.8b")
    assert result.code == 0, result.stderr
    assert f"the catalog names {entry.file}, which {entry.repo} no longer has: using renamed-Q4_K_M.gguf" in (
        result.stderr + result.stdout
    )
