"""MLflow registry webhooks: deliveries signed by MLflow's own code are accepted, anything
else gets a 4xx that echoes nothing; an accepted alias move marks the ModelDeployments
naming that model for a lookup on their next tick."""

from __future__ import annotations

import http.client
import json
import time
import uuid

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from thunderbolt.deploy import builders as b
from thunderbolt.deploy import webhooks
from thunderbolt.deploy.kube import Kube
from thunderbolt.deploy.reconcile import Controller

SECRET = "webhook-secret-0123456789"


def delivery(payload: dict, secret: str = SECRET, at: float | None = None):
    """Headers and body exactly as MLflow's ``_send_webhook_request`` builds them."""
    body = json.dumps(payload)
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time() if at is None else at))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, timestamp, body),
    }
    return headers, body.encode()


ALIAS = {"entity": "model_version_alias", "action": "created", "timestamp": "2026-01-01T00:00:00",
         "data": {"name": "iris-mlp", "alias": "champion", "version": "3"}}  # fmt: skip


def test_our_signature_is_mlflows_and_verify_accepts_it():
    headers, body = delivery(ALIAS)
    assert webhooks.sign(SECRET, headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"],
                         body) == headers["X-MLflow-Signature"]  # fmt: skip
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert webhooks.verify(SECRET, lower, body, time.time()) == headers["X-MLflow-Delivery-Id"]
    assert webhooks.model_name(body) == "iris-mlp"


@pytest.mark.parametrize(
    "tamper",
    ["other secret", "body", "delivery id", "timestamp", "no signature", "v2 scheme",
     "not base64", "old", "future", "timestamp text"],
)  # fmt: skip
def test_anything_but_mlflows_signature_is_refused_with_a_4xx(tamper):
    headers, body = delivery(ALIAS, secret="wrong" if tamper == "other secret" else SECRET,
                             at=time.time() + {"old": -301, "future": 301}.get(tamper, 0))  # fmt: skip
    sig = headers["X-MLflow-Signature"]
    if tamper == "body":
        body = body.replace(b"champion", b"challenger")
    elif tamper == "delivery id":
        headers["X-MLflow-Delivery-Id"] = str(uuid.uuid4())
    elif tamper == "timestamp":
        headers["X-MLflow-Timestamp"] = str(int(headers["X-MLflow-Timestamp"]) - 1)
    elif tamper == "no signature":
        del headers["X-MLflow-Signature"]
    elif tamper == "v2 scheme":
        headers["X-MLflow-Signature"] = "v2," + sig.split(",", 1)[1]
    elif tamper == "not base64":
        headers["X-MLflow-Signature"] = "v1,!!!" + sig[3:]
    elif tamper == "timestamp text":
        headers["X-MLflow-Timestamp"] = "soon"
    with pytest.raises(webhooks.Rejected) as refused:
        webhooks.verify(SECRET, headers, body, time.time())
    assert 400 <= refused.value.status < 500
    assert SECRET not in refused.value.reason and "champion" not in refused.value.reason


def test_one_of_several_signatures_may_match():
    headers, body = delivery(ALIAS)
    headers["X-MLflow-Signature"] = "v1,AAAA " + headers["X-MLflow-Signature"]
    assert webhooks.verify(SECRET, headers, body, time.time())


def test_replays_within_the_window_change_nothing_and_memory_is_bounded():
    guard = webhooks.ReplayGuard(window=300, limit=3)
    assert guard.first_time("a", 1000) and not guard.first_time("a", 1100)
    assert guard.first_time("b", 1000) and guard.first_time("c", 1000)
    assert guard.first_time("d", 1000) and len(guard._seen) == 3  # "a" forgotten first
    assert guard.first_time("b", 1400)  # outside the window (its timestamp is refused anyway)


def post(port: int, body: bytes, headers: dict, path: str = webhooks.PATH):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    answer = resp.status, resp.read().decode()
    conn.close()
    return answer


@pytest.fixture
def endpoint(tmp_path):
    """The endpoint on a real socket, re-checking a real controller's ModelDeployments."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    controller = Controller(Kube(), b.ServingDefaults(image="img"))
    served = webhooks.Endpoint(lambda: webhooks.read_secret(str(secret)),
                               controller.recheck_mlflow_model)  # fmt: skip
    server = webhooks.serve(served, "127.0.0.1", 0)
    yield server.server_address[1], controller, secret
    server.shutdown()


def body_of(uid: str, name: str) -> dict:
    return {"metadata": {"uid": uid, "generation": 1},
            "spec": {"model": {"mlflowModel": {"name": name, "alias": "champion",
                                               "pollSeconds": 3600}}},
            "status": {"phase": "Available", "observedGeneration": 1, "history": []}}  # fmt: skip


def test_an_alias_webhook_marks_only_the_deployments_of_that_model(endpoint):
    port, controller, _ = endpoint
    for uid, name in (("u1", "iris-mlp"), ("u2", "iris-mlp"), ("u3", "other")):
        state = controller.state(uid)
        state.mlflow_model, state.last_tick, state.resolved_at = name, time.monotonic(), 1e12
    assert not controller.due(body_of("u1", "iris-mlp"))  # polled an hour from now

    headers, body = delivery(ALIAS)
    assert post(port, body, headers) == (200, json.dumps({"rechecked": 2}))
    assert controller.due(body_of("u1", "iris-mlp")) and controller.due(body_of("u2", "iris-mlp"))
    assert not controller.due(body_of("u3", "other"))
    assert post(port, body, headers) == (200, json.dumps({"duplicate": True}))

    other = dict(ALIAS, entity="prompt_alias")
    headers, body = delivery(other)
    assert post(port, body, headers) == (200, json.dumps({"ignored": True}))


def test_bad_requests_get_4xx_without_echo(endpoint, tmp_path):
    port, controller, secret = endpoint
    headers, body = delivery(ALIAS)
    unsigned = {k: v for k, v in headers.items() if k != "X-MLflow-Signature"}
    status, text = post(port, body, unsigned)
    assert status == 401 and "iris-mlp" not in text
    status, _ = post(port, body, headers, path="/other")
    assert status == 404
    status, _ = post(port, b"x" * (webhooks.MAX_BODY_BYTES + 1), headers)
    assert status == 413
    headers, body = delivery({"entity": "model_version"})  # signed, but not a payload
    assert post(port, body, headers)[0] == 400
    headers, _ = delivery(ALIAS)
    garbage = b"{not json"
    headers["X-MLflow-Signature"] = _generate_hmac_signature(
        SECRET, headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], garbage.decode()
    )
    status, text = post(port, garbage, headers)
    assert status == 400 and "{not" not in text
    # A rotated secret takes effect at once; the old one no longer verifies.
    secret.write_text("rotated-secret")
    headers, body = delivery(ALIAS)
    assert post(port, body, headers)[0] == 401
    headers, body = delivery(ALIAS, secret="rotated-secret")
    assert post(port, body, headers)[0] == 200


def test_a_missing_or_empty_secret_file_is_an_error(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ValueError):
        webhooks.read_secret(str(empty))
    with pytest.raises(OSError):
        webhooks.read_secret(str(tmp_path / "absent"))
