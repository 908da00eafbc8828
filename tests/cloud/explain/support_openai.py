"""A scripted OpenAI-compatible HTTP server on loopback (stdlib, no torch).

A STAND-IN, used only where a real server cannot be made to do what a test needs: fail on
purpose (503, a refused prompt embedding, an unknown model), answer slowly to show N requests in
flight, or record the headers it was sent. The real engine (vLLM CPU) runs in
test_explain_vllm.py. Each request is answered by `reply(path, body)`, which returns (status,
JSON body); the server records every request and the most requests it had at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


def chat_ok(text: str, delay_s: float = 0.0) -> Reply:
    """Every request answers `text` (as a chat message and as completion text) after a delay."""

    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        time.sleep(delay_s)
        choice = {"index": 0, "text": text, "message": {"role": "assistant", "content": text}}
        return 200, {"object": "chat.completion", "choices": [choice]}

    return reply


class StubServer:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.active = self.max_active = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.removeprefix("/v1")
                with stub._lock:
                    stub.requests.append((path, body, dict(self.headers)))
                    stub.active += 1
                    stub.max_active = max(stub.max_active, stub.active)
                try:
                    status, answer = stub.reply(path, body)
                finally:
                    with stub._lock:
                        stub.active -= 1
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # /v1/models: one model, "served-name"
                data = json.dumps({"data": [{"id": "served-name", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def stub_server(reply: Reply) -> Iterator[StubServer]:
    stub = StubServer(reply)
    thread = threading.Thread(target=stub.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.httpd.shutdown()
        stub.httpd.server_close()
