"""The operator image, run in the cluster with a namespaced Role, drives a search.

Skipped until `make images` has imported thunderbolt-operator:0.1.0 into containerd.
"""

from __future__ import annotations

import pytest
from operator_helpers import Cluster, containerd_image, dump, experiment, wait_for

OPERATOR_IMAGE = "thunderbolt-operator:0.1.0"
RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: thunderbolt-operator}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: thunderbolt-operator}
rules:
- apiGroups: [thunderbolt.io]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [batch, apps]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [""]
  resources: [pods, configmaps, secrets, services, events]
  verbs: ["*"]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: thunderbolt-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: thunderbolt-operator}
subjects: [{kind: ServiceAccount, name: thunderbolt-operator, namespace: NAMESPACE}]
"""


def test_operator_image_runs_a_search_in_cluster(kube_api, namespace, crds, kubectl, base_image):
    image = containerd_image(OPERATOR_IMAGE)
    if image is None:
        pytest.skip(f"{OPERATOR_IMAGE} is not in the cluster's containerd (run `make images`)")
    kube = Cluster(kube_api, namespace)
    applied = kubectl(
        "apply", "-n", namespace, "-f", "-", input=RBAC.replace("NAMESPACE", namespace)
    )
    assert applied.returncode == 0, applied.stderr
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator", "labels": {"app": "thunderbolt-operator"}},
        "spec": {
            "serviceAccountName": "thunderbolt-operator",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "operator",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": ["--namespace", namespace],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8082}},
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                }
            ],
        },
    }
    kube.core.create_namespaced_pod(namespace, pod)
    kube.apply(experiment("incluster", base_image, max_trials=2, parallel=2))

    def finished():
        exp = kube.experiment("incluster")
        return exp if (exp.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    try:
        exp = wait_for(finished, 240, "the in-cluster operator to finish the search")
    except AssertionError:
        logs = kubectl("logs", "-n", namespace, "operator", "--tail=60")
        raise AssertionError(logs.stdout + logs.stderr) from None
    assert exp["status"]["phase"] == "Succeeded", dump(exp["status"])
    assert exp["status"]["trials"]["succeeded"] == 2
    operator_pod = kube.core.read_namespaced_pod("operator", namespace)
    assert operator_pod.status.container_statuses[0].restart_count == 0
