"""MLflow registry webhooks: an alias move re-resolves the ModelDeployments at once.

MLflow (3.x) signs each delivery the Standard Webhooks way: ``X-MLflow-Signature:
v1,<base64 HMAC-SHA256>`` over ``"<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<body>"``
with the webhook's secret. ``verify`` checks exactly that (constant-time), refuses
timestamps outside ``REPLAY_WINDOW_S`` and delivery ids already seen within it, and
``Endpoint`` maps what it accepts to a re-check of the ModelDeployments that name the
model (``Controller.recheck_mlflow_model``; the next timer tick, <= 2 s, looks the alias
up again). Polling (``mlflowModel.pollSeconds``) stays the fallback for lost deliveries.

Bad input gets a 4xx and a fixed one-line reason: nothing from the request (nor the
secret) is ever echoed or logged. The secret is read from a mounted file on each request,
so a rotated Secret takes effect without a restart.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import http.server
import json
import logging
import pathlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
PATH = "/mlflow/webhook"
# MLflow's payloads are a few hundred bytes; anything far larger is not MLflow.
MAX_BODY_BYTES = 64 * 1024
MAX_SECRET_BYTES = 4096
# Standard Webhooks' recommended tolerance for clock skew and delayed retries.
REPLAY_WINDOW_S = 300
MAX_REMEMBERED = 10_000
# Registry events after which an alias may point elsewhere or a version may be refused.
ENTITIES = ("model_version", "model_version_tag", "model_version_alias")


class Rejected(Exception):
    """A delivery refused with ``status`` (4xx) and a fixed reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    if not value or len(value) > 256:
        raise Rejected(401, f"missing or oversized {name}")
    return value.strip()


class ReplayGuard:
    """Delivery ids seen within the replay window (bounded; oldest forgotten first)."""

    def __init__(self, window: float = REPLAY_WINDOW_S, limit: int = MAX_REMEMBERED) -> None:
        self.window, self.limit = window, limit
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str, now: float) -> bool:
        with self._lock:
            while self._seen and (
                len(self._seen) >= self.limit or next(iter(self._seen.values())) < now - self.window
            ):
                self._seen.popitem(last=False)
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now
            return True


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, now: float,
    window: float = REPLAY_WINDOW_S,
) -> str:  # fmt: skip
    """The delivery id of a delivery MLflow signed with ``secret``; Rejected otherwise."""
    delivery_id = _header(headers, DELIVERY_ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER)
    if not timestamp.isdigit():
        raise Rejected(400, f"{TIMESTAMP_HEADER} is not a Unix time")
    if abs(now - int(timestamp)) > window:
        raise Rejected(401, "timestamp outside the replay window")
    expected = sign(secret, delivery_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures.split():  # Standard Webhooks allows several, space-separated
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(value.encode(), expected.encode()):
            return delivery_id
    raise Rejected(401, "signature does not match")


def model_name(body: bytes) -> str | None:
    """The registered model a verified delivery is about, None for other entities."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(400, "body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise Rejected(400, "body is not an MLflow webhook payload")
    if payload.get("entity") not in ENTITIES:
        return None
    name = payload["data"].get("name")
    if not isinstance(name, str) or not name or len(name) > 256:
        raise Rejected(400, "payload names no registered model")
    return name


def read_secret(path: str) -> str:
    """The webhook secret from its mounted file (trailing newline dropped)."""
    raw = pathlib.Path(path).read_bytes()[: MAX_SECRET_BYTES + 1]
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError("webhook secret file is over 4 KiB")
    secret = raw.decode().strip()
    if not secret:
        raise ValueError("webhook secret file is empty")
    return secret


class Endpoint:
    """Verifies deliveries and hands the model's name to ``recheck`` (the number of
    ModelDeployments it re-checks is returned to MLflow)."""

    def __init__(
        self, secret: Callable[[], str], recheck: Callable[[str], int],
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.secret, self.recheck, self.clock = secret, recheck, clock
        self.replays = ReplayGuard()

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        delivery = verify(self.secret(), headers, body, now)
        name = model_name(body)
        if not self.replays.first_time(delivery, now):
            return 200, {"duplicate": True}
        if name is None:
            return 200, {"ignored": True}
        count = self.recheck(name)
        log.info("MLflow webhook for model %s: %d ModelDeployment(s) re-checked", name, count)
        return 200, {"rechecked": count}


def _handler(endpoint: Endpoint) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "thunderbolt-webhooks"
        sys_version = ""
        timeout = 10  # seconds per socket read: a slow sender cannot hold a thread

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            if self.path.split("?", 1)[0] != PATH:
                self._answer(404, {"error": "not found"})
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self._answer(411, {"error": "Content-Length required"})
                return
            if int(length) > MAX_BODY_BYTES:
                self.close_connection = True
                self._answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                return
            body = self.rfile.read(int(length))
            try:
                status, payload = endpoint.handle(dict(self.headers.items()), body)
            except Rejected as exc:
                status, payload = exc.status, {"error": exc.reason}
            except Exception:  # our fault (e.g. the secret file vanished): no detail out
                log.exception("MLflow webhook could not be handled")
                status, payload = 503, {"error": "not ready"}
            self._answer(status, payload)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(405, {"error": "POST only"})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("webhook %s", format % args)

    return Handler


def serve(endpoint: Endpoint, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """Start the endpoint on a daemon thread; the server (``shutdown()`` stops it)."""
    server = http.server.ThreadingHTTPServer((host, port), _handler(endpoint))
    server.daemon_threads = True
    server.timeout = 10
    threading.Thread(target=server.serve_forever, name="mlflow-webhooks", daemon=True).start()
    return server
