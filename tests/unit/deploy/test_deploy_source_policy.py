"""The operator fetches models with its own network access: what it may reach, and what
it tells about a failure (never what a user-named server answered)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from thunderbolt.api.modeldeployment import ModelSource
from thunderbolt.deploy.sources import (
    MlflowSource,
    SourceNotReady,
    SourcePolicy,
    SourceRefused,
    failure,
)
from thunderbolt.settings import OperatorSettings

SECRET = "AKIA-SECRET-TOKEN-0123456789"


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every request with an error whose body looks like a secret."""

    def _answer(self) -> None:
        body = f'{{"error_code": "INTERNAL_ERROR", "message": "{SECRET}"}}'.encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _model(url: str) -> ModelSource:
    return ModelSource(mlflowModel={"name": "m", "version": "1", "trackingUri": url})


def test_a_hostile_servers_answer_never_reaches_the_status(hostile_url, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    source = MlflowSource(policy=SourcePolicy(hosts=("127.0.0.1",)))
    with pytest.raises(SourceNotReady) as err:
        source.resolve(_model(hostile_url))
    assert SECRET not in str(err.value) and SECRET not in err.value.reason
    assert "HTTP 500" in str(err.value) or "INTERNAL_ERROR" in str(err.value)


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("http://mlflow.thunderbolt-system.svc:5000", True),
        ("http://mlflow.thunderbolt-system.svc:5001", False),
        ("https://evil.example.com", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("file:///etc", False),
        ("/var/run/secrets", False),
        ("ftp://mlflow.thunderbolt-system.svc", False),
        ("http://user:pw@mlflow.thunderbolt-system.svc:5000", True),
    ],
)
def test_by_default_only_the_operators_own_mlflow_is_reachable(uri: str, allowed: bool) -> None:
    own = OperatorSettings(mlflow_tracking_uri="http://mlflow.thunderbolt-system.svc:5000")
    policy = SourcePolicy.from_settings(own)
    if allowed:
        policy.check(uri)
    else:
        with pytest.raises(SourceRefused) as err:
            policy.check(uri)
        assert err.value.reason == "SourceNotAllowed"


def test_allowed_hosts_and_file_sources_are_operator_settings() -> None:
    settings = OperatorSettings(model_source_hosts=("*.models.internal", "10.0.0.5:5000"))
    policy = SourcePolicy.from_settings(settings)
    policy.check("https://registry.models.internal")
    policy.check("http://10.0.0.5:5000")
    with pytest.raises(SourceRefused):
        policy.check("http://10.0.0.5:8080")
    SourcePolicy.from_settings(OperatorSettings(allow_file_sources=True)).check("file:///mlruns")
    with pytest.raises(SourceRefused):
        SourcePolicy.from_settings(OperatorSettings()).check("http://anything")


def test_failure_descriptions_carry_type_code_and_status_only() -> None:
    from mlflow.exceptions import MlflowException, RestException

    rest = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": SECRET})
    assert failure(rest) == "RestException RESOURCE_DOES_NOT_EXIST HTTP 404"
    assert SECRET not in failure(MlflowException(f"Response body: {SECRET}"))
    weird = RestException({"error_code": f"x {SECRET}", "message": "m"})
    assert SECRET not in failure(weird)
    assert failure(ValueError(SECRET)) == "ValueError"
