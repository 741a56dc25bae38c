"""A real HTTP server on 127.0.0.1 that fails the way servers do (llama_cpp.server never does these): busy
(429 with Retry-After), overloaded (503), an unknown model (404), a stream event that is not JSON, an error event
mid-reply, a stream that stops with no finish reason, and an API base that answers HTML. It serves no model: the
two words it streams before failing are fixed, only there to be kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ("busy", "overloaded", "gone", "garbled", "failing", "cut")
BEFORE_FAILING = ("Hello", " there")


class Handler(BaseHTTPRequestHandler):
    bodies: list[dict] = []  # what each chat request asked for

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/html/"):
            self.answer(200, b"<html>a web page</html>", "text/html")
        elif self.path == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "someone"} for m in MODELS]
            self.answer(200, json.dumps({"object": "list", "data": data}).encode())
        else:
            self.answer(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.answer(404, b'{"error": {"message": "not found"}}')
            return
        Handler.bodies.append(body)
        model = body.get("model")
        if model == "busy":
            self.answer(429, b'{"error": {"message": "slow down"}}', headers={"Retry-After": "7"})
        elif model == "overloaded":
            self.answer(503, b'{"error": {"message": "overloaded"}}')
        elif model == "gone":
            self.answer(404, b'{"error": {"message": "model not found"}}')
        else:
            self.stream(model)

    def stream(self, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for text in BEFORE_FAILING:
            chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if model == "garbled":
            self.wfile.write(b"data: <html>502 Bad Gateway</html>\n\n")
        elif model == "failing":
            self.wfile.write(b'data: {"error": {"message": "the GPU ran out of memory"}}\n\n')
        self.wfile.flush()  # "cut": the stream ends here, with no finish reason and no [DONE]

    def answer(self, status: int, body: bytes, kind: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def faulty_server() -> Iterator[str]:
    """The server's API base (http://127.0.0.1:PORT/v1) while it runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
