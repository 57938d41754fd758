"""HTTP client for live reports: the training side (SDK scripts and the built-in
trainer) of ``thunderbolt.reports``.

Reporting must never hurt training: every call has short timeouts and a few retries,
swallows every error, and after repeated failures stops retrying (one attempt per
report) so an unreachable operator costs at most a couple of seconds per epoch. The
final result still reaches the operator through the termination message.

Standard library only (urllib), so it works in any image that has the SDK.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from thunderbolt.api.report_schema import CONTENT_TYPE, MAX_BACKLOG, REPORT_ADAPTER, report_url
from thunderbolt.api.trainer_config import TrainerConfig, TrainResult

log = logging.getLogger(__name__)

# Statuses worth another try: rate-limited, or the operator/API server briefly away.
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
# Epoch values are kept until a reply says they are stored on the Trial (at most the
# wire's MAX_BACKLOG).


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    """Only finite numbers: a NaN loss is reported by the final result, not mid-run."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out


class HttpReporter:
    """``TrainingReporter`` over HTTP: start, per-epoch (answers "prune?"), stop."""

    def __init__(
        self,
        config: TrainerConfig,
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        backoff: float = 0.25,
        give_up_after: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if config.report is None:
            raise ValueError("config.report is not set")
        ident = config.identity
        self.url = report_url(config.report.url, ident.namespace, ident.trial)
        self.token_file = config.report.tokenFile
        self.objective_metric = config.objective.metric
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.give_up_after = give_up_after
        self._sleep = sleep
        self._failures = 0  # consecutive reports that never got through
        self._last_step = 0
        self._token: str | None = None
        # step -> value sent but not yet confirmed stored (replies carry ``storedStep``):
        # re-sent with later reports, so an operator replica that acknowledged and then
        # crashed, or was unreachable, does not cost the Trial its curve.
        self._unstored: dict[int, float] = {}

    # --- TrainingReporter -----------------------------------------------------------
    def start(self) -> None:
        self._send({"kind": "start", "step": 0})

    def epoch(self, step: int, metrics: dict[str, float]) -> bool:
        self._last_step = max(self._last_step, int(step))
        body: dict[str, Any] = {"kind": "epoch", "step": int(step), "metrics": _finite(metrics)}
        value = body["metrics"].get(self.objective_metric)
        if value is None:
            return False  # no finite objective this epoch: nothing the pruner could use
        body["backlog"] = self._backlog(before=step)
        reply = self._send(body)
        self._unstored[int(step)] = float(value)
        self._settle(reply)
        while len(self._unstored) > MAX_BACKLOG:
            del self._unstored[min(self._unstored)]
        return bool(reply and reply.get("prune") is True)

    def _backlog(self, before: int) -> list[dict[str, Any]]:
        points = [{"step": s, "value": v} for s, v in sorted(self._unstored.items()) if s < before]
        return points[-MAX_BACKLOG:]

    def _settle(self, reply: dict[str, Any] | None) -> None:
        """Forget what the operator says is stored (or will never take)."""
        if reply is None:
            return
        if reply.get("error") == "trial_finished":
            self._unstored.clear()
            return
        stored = reply.get("storedStep")
        if isinstance(stored, int) and not isinstance(stored, bool):
            self._unstored = {s: v for s, v in self._unstored.items() if s > stored}

    def stop(self, result: TrainResult) -> None:
        body: dict[str, Any] = {
            "kind": "stop",
            "step": max(self._last_step, int(result.epochs or 0)),
            "status": result.status,
            "metrics": _finite(result.metrics),
        }
        if result.objective is not None and math.isfinite(result.objective):
            body["objective"] = float(result.objective)
        if result.reason and result.reason.isalnum():
            body["reason"] = result.reason[:64]
        if result.message:
            body["message"] = result.message[:1024]
        backlog = self._backlog(before=body["step"] + 1)
        if backlog:
            body["backlog"] = backlog
        self._settle(self._send(body))

    # --- transport ------------------------------------------------------------------
    def _read_token(self, refresh: bool = False) -> str | None:
        if self._token is None or refresh:
            try:
                with open(self.token_file, encoding="utf-8") as fh:
                    self._token = fh.read().strip() or None
            except OSError as exc:
                log.warning("report token unreadable (%s); reports are skipped", exc)
                self._token = None
        return self._token

    def _send(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST with retries; the reply as a dict, or None. Never raises."""
        try:
            return self._send_unsafe(body)
        except Exception as exc:  # noqa: BLE001 — reporting must not break training
            log.warning("report %s failed: %s", body.get("kind"), exc)
            return None

    def _send_unsafe(self, body: dict[str, Any]) -> dict[str, Any] | None:
        token = self._read_token()
        if token is None:
            return None
        REPORT_ADAPTER.validate_python(body)  # what the endpoint would reject never leaves
        data = json.dumps(body, allow_nan=False).encode()
        attempts = 1 if self._failures >= self.give_up_after else self.attempts
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.backoff * (2 ** (attempt - 1)))
            status, reply = self._post(data, token)
            if status == 200:
                self._failures = 0
                return reply
            if status in (401, 403) and attempt == 0:
                token = self._read_token(refresh=True) or token  # a rotated Secret
                continue
            if status is not None and status not in RETRYABLE:
                # A definite "no" (stale step, finished trial): retrying cannot help.
                log.info("report %s rejected: %s %s", body["kind"], status, reply)
                self._failures = 0
                return {"error": reply.get("error", str(status)), "prune": False}
        self._failures += 1
        return None

    def _post(self, data: bytes, token: str) -> tuple[int | None, dict[str, Any]]:
        request = urllib.request.Request(
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (OSError, ValueError) as exc:  # refused, reset, timeout, bad URL
            log.debug("report endpoint unreachable: %s", exc)
            return None, {}


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
