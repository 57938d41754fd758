"""Shared pieces for SDK tests: a stand-in report endpoint and a clean environment."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def no_pod_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests decide what the "pod" looks like; the runner's env must not leak in."""
    for name in ("THUNDERBOLT_CONFIG", "THUNDERBOLT_OUTPUT_DIR", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THUNDERBOLT_TERMINATION_MESSAGE_PATH", str(tmp_path / "no-such-file"))
    monkeypatch.setenv("THUNDERBOLT_CPU_THREADS", "1")
    monkeypatch.chdir(tmp_path)


@dataclass
class Endpoint:
    """What the stand-in operator received, and its base URL and token file."""

    url: str
    token_file: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.received]


@pytest.fixture
def report_endpoint(tmp_path: Path) -> Iterator[Callable[[Callable[[dict], bool]], Endpoint]]:
    """``report_endpoint(prune_when)``: an HTTP server answering ``{"prune": prune_when(body)}``."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(prune_when: Callable[[dict], bool]) -> Endpoint:
        token = tmp_path / "token"
        token.write_text("secret-token\n")
        endpoint = Endpoint(url="", token_file=str(token))

        class Operator(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.received.append(
                    body | {"auth": self.headers["Authorization"], "path": self.path}
                )
                reply = json.dumps({"prune": bool(prune_when(body))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Operator)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
        return endpoint

    yield start
    for server in servers:
        server.shutdown()
