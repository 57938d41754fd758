"""The bad manifests the structural schema can catch, against the real API server.

Server-side dry run with client validation off (``--validate=false``), as a GitOps tool
would apply them: the CRD's OpenAPI schema must refuse each, and accept the examples.
Needs the cluster (run under the cluster lock).
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.crds import crds  # noqa: F401  (fixture)
from tests.hostile.conftest import Figures
from tests.hostile.manifests import BAD, GOOD, bad_manifest
from tests.integration.conftest import Kubectl
from tests.integration.conftest import cluster as cluster  # noqa: F401  (fixtures)
from tests.integration.conftest import kube_api as kube_api  # noqa: F401
from tests.integration.conftest import kubectl as kubectl  # noqa: F401
from tests.integration.conftest import namespace as namespace  # noqa: F401

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]
SCHEMA_CASES = [name for name, (_k, _m, layers) in BAD.items() if "schema" in layers]


def _apply(kubectl: Kubectl, namespace: str, doc: dict) -> tuple[int, str]:
    doc = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
    done = kubectl(
        "apply", "--dry-run=server", "--validate=false", "-f", "-", input=json.dumps(doc)
    )
    return done.returncode, done.stderr


def test_schema_cases_refused_and_examples_accepted(
    request: pytest.FixtureRequest, figures: Figures
) -> None:
    kubectl: Kubectl = request.getfixturevalue("kubectl")
    namespace: str = request.getfixturevalue("namespace")
    for kind, doc in GOOD.items():
        code, err = _apply(kubectl, namespace, doc)
        assert code == 0, f"{kind} example refused: {err}"
    accepted = []
    for name in SCHEMA_CASES:
        code, err = _apply(kubectl, namespace, bad_manifest(name))
        figures.record("bad manifest (API server)", "refused" if code else "ACCEPTED")
        if code == 0:
            accepted.append(name)
        else:
            assert "Invalid" in err or "invalid" in err or "error" in err.lower(), err
    assert not accepted, f"the API server accepted {accepted}"
