"""Forged reports against the real report endpoint (aiohttp over loopback, in-memory store).

None may change a Trial; every answer is a 4xx with the JSON error shape; a flood of
reports naming random Trials costs a bounded number of Secret reads.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.hostile.conftest import Figures, ReportEndpoint

NS = "team-a"
EPOCH = {"kind": "epoch", "step": 1, "metrics": {"val_accuracy": 0.5}}


def _post(
    base: str, path: str, body: bytes, headers: dict[str, str], source: str | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _path(trial: str, namespace: str = NS) -> str:
    return f"/v1/namespaces/{namespace}/trials/{trial}/reports"


def _json(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# name -> (trial, body, headers or a function of the endpoint's tokens, accepted codes)
FORGED: dict[str, tuple[str, bytes, Any, set[int]]] = {
    "no token": ("exp-0", json.dumps(EPOCH).encode(), _json(None), {401}),
    "empty bearer": ("exp-0", json.dumps(EPOCH).encode(), {"Authorization": "Bearer ", "Content-Type": "application/json"}, {401}),  # noqa: E501
    "basic auth": ("exp-0", json.dumps(EPOCH).encode(), {"Authorization": "Basic YWRtaW46YWRtaW4=", "Content-Type": "application/json"}, {401}),  # noqa: E501
    "wrong token": ("exp-0", json.dumps(EPOCH).encode(), _json("A" * 43), {401, 403}),
    "token 4k chars": ("exp-0", json.dumps(EPOCH).encode(), _json("A" * 4_000), {400, 401, 403}),
    "token with newline": ("exp-0", json.dumps(EPOCH).encode(), _json("A" * 20 + "%0a" + "B" * 20), {401, 403}),  # noqa: E501
    "other trial's token": ("exp-1", json.dumps(EPOCH).encode(), lambda t: _json(t["exp-0"]), {401, 403}),  # noqa: E501
    "finished trial": ("exp-done", json.dumps(EPOCH).encode(), lambda t: _json(t["exp-done"]), {409}),  # noqa: E501
    "unknown trial": ("ghost", json.dumps(EPOCH).encode(), _json("F" * 43), {401, 403, 404, 429}),
    "other namespace": ("exp-0", json.dumps(EPOCH).encode(), lambda t: _json(t["exp-0"]), {401, 403, 404}),  # noqa: E501
    "path traversal": ("..%2f..%2fsecrets", json.dumps(EPOCH).encode(), _json("F" * 43), {400, 401, 403, 404, 429}),  # noqa: E501
    "malformed json": ("exp-0", b"{nope", lambda t: _json(t["exp-0"]), {400}),
    "json array": ("exp-0", b"[1]", lambda t: _json(t["exp-0"]), {400, 422}),
    "NaN metric": ("exp-0", json.dumps(EPOCH).replace("0.5", "NaN").encode(), lambda t: _json(t["exp-0"]), {400, 422}),  # noqa: E501
    "negative step": ("exp-0", json.dumps({**EPOCH, "step": -5}).encode(), lambda t: _json(t["exp-0"]), {400, 422}),  # noqa: E501
    "unknown kind": ("exp-0", json.dumps({**EPOCH, "kind": "rm -rf"}).encode(), lambda t: _json(t["exp-0"]), {400, 422}),  # noqa: E501
    "deeply nested": ("exp-0", b"[" * 100_000 + b"]" * 100_000, lambda t: _json(t["exp-0"]), {400, 413}),  # noqa: E501
    "oversize body": ("exp-0", b'{"x":"' + b"a" * (2 * 2**20) + b'"}', lambda t: _json(t["exp-0"]), {413}),  # noqa: E501
    "wrong content type": ("exp-0", json.dumps(EPOCH).encode(), lambda t: {**_json(t["exp-0"]), "Content-Type": "text/plain"}, {415}),  # noqa: E501
}  # fmt: skip


@pytest.mark.parametrize("name", list(FORGED))
def test_forged_report(report_endpoint: ReportEndpoint, figures: Figures, name: str) -> None:
    trial, body, headers, accepted = FORGED[name]
    world = report_endpoint.world
    before = json.dumps(world.get("exp-0")["status"]) + json.dumps(world.get("exp-1")["status"])
    if callable(headers):
        headers = headers(world.tokens)
    namespace = "other-ns" if name == "other namespace" else NS
    status, reply = _post(report_endpoint.base, _path(trial, namespace), body, headers)
    figures.record("forged report", status)
    assert status in accepted, (status, reply)
    assert isinstance(reply, dict) and reply.get("error"), reply
    after = json.dumps(world.get("exp-0")["status"]) + json.dumps(world.get("exp-1")["status"])
    assert after == before, "a forged report changed a Trial"


def test_a_flood_naming_random_trials_reads_few_secrets(
    report_endpoint: ReportEndpoint, figures: Figures
) -> None:
    store = report_endpoint.world.store
    reads: list[str] = []
    original = store.get_secret

    async def counting(namespace: str, name: str) -> Any:
        reads.append(name)
        return await original(namespace, name)

    store.get_secret = counting  # type: ignore[method-assign]
    try:
        codes = [
            _post(report_endpoint.base, _path(f"ghost-{i}"), json.dumps(EPOCH).encode(), _json("F" * 43))[0]  # noqa: E501
            for i in range(200)
        ]  # fmt: skip
    finally:
        store.get_secret = original  # type: ignore[method-assign]
    for code in codes:
        figures.record("forged report flood", code)
    assert set(codes) <= {401, 403, 404, 429}
    assert codes.count(429) >= 150
    assert len(reads) <= 20, len(reads)


@pytest.mark.xfail(
    strict=True,
    reason="the report server answers aiohttp's own text/plain 400 for a header over 8 KiB "
    "(the inference server's GuardedRequestHandler turns these into JSON; the report "
    "server has no such handler yet)",
)
def test_a_header_over_8k_gets_a_json_error(report_endpoint: ReportEndpoint) -> None:
    status, _reply = _post(
        report_endpoint.base, _path("exp-0"), json.dumps(EPOCH).encode(), _json("A" * 10_000)
    )
    assert status == 400
