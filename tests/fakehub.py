"""A fake Hugging Face Hub on 127.0.0.1, for the real huggingface_hub client (HF_ENDPOINT points here).

It serves real bytes (the SmolLM2 test model) with the hub's URL layout, LFS metadata, Range requests, and
the hub's error headers (X-Error-Code). Knobs: `cut_after` drops the connection after N bytes of a response;
`stall_after` sends N bytes, then nothing, with the connection open; `ignore_range` answers 200 with the whole
file to a Range request; `corrupt` serves other bytes than the LFS hash promises; `gated` answers like a gated
repo without a token; a file with `lfs=False` is listed without a sha256, as the hub lists small files.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class FakeFile:
    source: Path | bytes
    size_override: int | None = None  # claim another size in the listing (disk-space checks)
    lfs: bool = True

    def data(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()


@dataclass
class FakeRepo:
    files: dict[str, FakeFile]
    downloads: int = 100
    gated: bool = False


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    cut_after: int | None = None  # bytes; applies to the next file responses until reset
    stall_after: int | None = None  # bytes; then silence until `release` is set
    release: threading.Event = field(default_factory=threading.Event)
    ignore_range: bool = False
    corrupt: bool = False
    throttle_s: float = 0.0  # pause after each MiB sent (for interrupting a transfer midway)
    requests: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    _hashes: dict[tuple[str, str], str] = field(default_factory=dict)
    _blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def blob(self, repo: str, name: str) -> bytes:
        key = (repo, name)
        if key not in self._blobs:
            self._blobs[key] = self.repos[repo].files[name].data()
            self._hashes[key] = hashlib.sha256(self._blobs[key]).hexdigest()
        return self._blobs[key]

    def sha256(self, repo: str, name: str) -> str:
        self.blob(repo, name)
        return self._hashes[(repo, name)]

    def sibling(self, repo: str, name: str) -> dict:
        file = self.repos[repo].files[name]
        size = file.size_override or len(self.blob(repo, name))
        if not file.lfs:
            return {"rfilename": name, "size": size}
        return {
            "rfilename": name,
            "size": size,
            "lfs": {"sha256": self.sha256(repo, name), "size": size, "pointerSize": 134},
        }


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            self._send(
                status, json.dumps({"error": code}).encode(), {"X-Error-Code": code, "Content-Type": "application/json"}
            )

        def _json(self, payload: object) -> None:
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            hub.requests.append(path)
            if path == "/api/models":
                return self._search(parse_qs(url.query))
            match = re.fullmatch(r"/api/models/([^/]+/[^/]+?)(?:/revision/[^/]+)?", path)
            if match:
                return self._info(match.group(1))
            match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", path)
            if match:
                return self._file(match.group(1), match.group(2))
            self._error(404, "EntryNotFound")

        def _repo(self, name: str) -> FakeRepo | None:
            repo = hub.repos.get(name)
            if repo is None:
                self._error(404, "RepoNotFound")
                return None
            if repo.gated and "authorization" not in {k.lower() for k in self.headers}:
                self._error(401, "GatedRepo")
                return None
            return repo

        def _info(self, name: str) -> None:
            repo = self._repo(name)
            if repo is not None:
                siblings = [hub.sibling(name, f) for f in repo.files]
                self._json({"id": name, "sha": "0" * 40, "downloads": repo.downloads, "siblings": siblings})

        def _search(self, query: dict[str, list[str]]) -> None:
            term = query.get("search", [""])[0].lower()
            found = [(n, r) for n, r in hub.repos.items() if term in n.lower()]
            found.sort(key=lambda item: -item[1].downloads)
            self._json(
                [{"id": n, "downloads": r.downloads, "siblings": [{"rfilename": f} for f in r.files]} for n, r in found]
            )

        def _file(self, name: str, filename: str) -> None:
            repo = self._repo(name)
            if repo is None:
                return
            if filename not in repo.files:
                return self._error(404, "EntryNotFound")
            data = hub.blob(name, filename)
            if hub.corrupt:
                data = bytes(b ^ 0xFF for b in data[:4096]) + data[4096:]
            start = 0
            status = 200
            headers = {"ETag": f'"{hub.sha256(name, filename)}"', "Accept-Ranges": "bytes"}
            requested = None if hub.ignore_range else self.headers.get("Range")
            if requested:
                hub.ranges.append(requested)
                start = int(re.match(r"bytes=(\d+)-", requested).group(1))
                if start >= len(data):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if hub.stall_after is not None:
                self.wfile.write(body[: hub.stall_after])
                self.wfile.flush()
                hub.release.wait(120)  # silent, the connection open
                self.close_connection = True
                return
            if hub.cut_after is not None:
                self.wfile.write(body[: hub.cut_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the connection drops mid-transfer
                return
            if not hub.throttle_s:
                self.wfile.write(body)
                return
            for offset in range(0, len(body), 1 << 20):
                try:
                    self.wfile.write(body[offset : offset + (1 << 20)])
                except OSError:
                    return  # the client went away
                time.sleep(hub.throttle_s)

    return Handler


class FakeHubServer:
    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHubServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
