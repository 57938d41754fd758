"""The restricted-profile checker itself: it passes a compliant pod and names each breach."""

from __future__ import annotations

import copy

import pytest
from pod_security import pod_specs, violations

GOOD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "x",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def mutate(path: str, value):
    spec = copy.deepcopy(GOOD)
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[keys[-1]] = value
    return spec


def test_compliant_pod_passes():
    assert violations(GOOD) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("hostNetwork", True, "hostNetwork"),
        ("securityContext.runAsNonRoot", False, "runAsNonRoot"),
        ("securityContext.runAsUser", 0, "runAsUser must not be 0"),
        ("securityContext.seccompProfile", {"type": "Unconfined"}, "seccompProfile"),
        ("containers.0.securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("containers.0.securityContext.privileged", True, "privileged"),
        ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "drop must include"),
        (
            "containers.0.securityContext.capabilities",
            {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
            "SYS_ADMIN",
        ),
        ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "hostPort"),
        ("volumes", [{"name": "root", "hostPath": {"path": "/"}}], "disallowed type"),
        ("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "sysctl"),
    ],
)
def test_each_breach_is_named(path, value, expected):
    found = violations(mutate(path, value))
    assert any(expected in v for v in found), found


def test_missing_security_context_fails_on_every_rule():
    found = violations({"containers": [{"name": "bare", "image": "x"}]})
    assert len(found) == 4, found  # escalation, non-root, seccomp, capabilities


def test_container_level_settings_satisfy_pod_level_rules():
    spec = {
        "containers": [
            {
                "name": "c",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                },
            }
        ]
    }
    assert violations(spec) == []


def test_pod_specs_finds_templates_of_workloads():
    objs = [
        {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": GOOD}}},
        {
            "kind": "CronJob",
            "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": GOOD}}}},
        },
        {"kind": "ConfigMap", "metadata": {"name": "cm"}},
    ]
    assert [name for name, _ in pod_specs(objs)] == ["Deployment/d", "CronJob/c"]
