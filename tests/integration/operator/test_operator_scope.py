"""An excluded namespace is never acted in, even when the operator watches it.

The chart's cluster-wide mode excludes the system namespaces by default
(``excludeNamespaces``); here the operator watches the test namespace and excludes it by
glob, so the Experiment must stay untouched: no Trials, no status, no Kopf marks. The
same operator without the exclusion then runs it, so the test cannot pass by accident.
"""

from __future__ import annotations

import time

import pytest
from operator_helpers import Cluster, experiment, wait_for


@pytest.fixture
def kube(kube_api, namespace, crds) -> Cluster:
    return Cluster(kube_api, namespace)


def test_an_excluded_namespace_is_left_alone_and_a_watched_one_is_not(
    kube, namespace, base_image, operator_process
):
    glob = namespace[:-3] + "*"  # matches this namespace by pattern, not by its exact name
    op = operator_process(
        namespace,
        env={"THUNDERBOLT_EXCLUDE_NAMESPACES": glob, "THUNDERBOLT_RESYNC_SECONDS": "1"},
    )
    kube.apply(experiment("scoped", base_image, max_trials=1, parallel=1, sleep=0.5))
    time.sleep(8)  # several resync rounds and every watch event for the new object
    exp = kube.experiment("scoped")
    assert kube.trials("scoped") == []
    assert "status" not in exp or not exp["status"], exp.get("status")
    meta = exp["metadata"]
    assert not meta.get("finalizers"), meta.get("finalizers")
    assert not any("thunderbolt.io" in k for k in (meta.get("annotations") or {})), meta

    op.stop()
    operator_process(namespace, env={"THUNDERBOLT_RESYNC_SECONDS": "1"})
    wait_for(lambda: kube.trials("scoped"), 60, "the unexcluded operator to create a trial")
