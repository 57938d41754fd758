"""The chart's operator Role grants every Kubernetes call the operator's code makes.

Scans the operator, deploy and reports packages for kubernetes-client calls
(``create_namespaced_job`` ...) and Kopf handler registrations, maps each to
(apiGroup, resource, verb), and checks the rendered Role. A new call without a matching
rule fails here, not with a 403 in someone's cluster.
"""

from __future__ import annotations

import pathlib
import re

import pytest
from helm_render import by_kind, render

SRC = pathlib.Path(__file__).resolve().parents[3] / "src" / "thunderbolt"
PACKAGES = ("operator", "deploy", "reports", "collectors")
SHARED = ("kubeclient.py",)  # the client layer those packages call through
THUNDERBOLT_PLURALS = ("experiments", "trials", "modeldeployments")
VERBS = {"create": "create", "patch": "patch", "delete": "delete", "read": "get",
         "get": "get", "list": "list", "replace": "update", "watch": "watch"}  # fmt: skip
KINDS = {
    "job": ("batch", "jobs"),
    "deployment": ("apps", "deployments"),
    "service": ("", "services"),
    "config_map": ("", "configmaps"),
    "secret": ("", "secrets"),
    "pod": ("", "pods"),
    "pod_log": ("", "pods/log"),
    "event": ("", "events"),
}
CLIENT_CALL = re.compile(
    r"\.(create|patch|delete|read|get|list|replace)_namespaced_([a-z_]+?)(_status)?\b"
)
KOPF_HANDLER = re.compile(
    r"@kopf\.(?:on\.(create|update|resume|delete|event|field)|timer|daemon)\(\s*([^,]+),\s*[^,]+,\s*([^,)\s]+)"
)
NAMES = {"GROUP": "thunderbolt.io", "b.GROUP": "thunderbolt.io", "b.PLURAL": "modeldeployments"}


def sources() -> str:
    files = [p for pkg in PACKAGES for p in sorted((SRC / pkg).glob("*.py"))]
    return "\n".join(p.read_text() for p in files + [SRC / name for name in SHARED])


def needed() -> set[tuple[str, str, str]]:
    text = sources()
    rights: set[tuple[str, str, str]] = set()
    for verb, kind, status in CLIENT_CALL.findall(text):
        if kind == "custom_object":
            # The plural is a variable: every thunderbolt kind must allow the verb.
            for plural in THUNDERBOLT_PLURALS:
                rights.add(("thunderbolt.io", plural + ("/status" if status else ""), VERBS[verb]))
            continue
        group, resource = KINDS[kind]
        rights.add((group, resource + ("/status" if status else ""), VERBS[verb]))
    for event, group, plural in KOPF_HANDLER.findall(text):
        group = NAMES.get(group.strip(), group.strip().strip("\"'"))
        plural = NAMES.get(plural.strip(), plural.strip().strip("\"'"))
        rights |= {(group, plural, "list"), (group, plural, "watch")}
        if event != "event":  # Kopf stores handler progress and finalizers on the object
            rights.add((group, plural, "patch"))
    if '"httproutes"' in text:
        rights |= {("gateway.networking.k8s.io", "httproutes", v) for v in ("create", "patch")}
    return rights


def granted(role: dict) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_scanner_finds_the_operators_calls():
    rights = needed()
    # If these vanish the regexes broke, not the operator.
    assert ("batch", "jobs", "create") in rights
    assert ("thunderbolt.io", "trials", "watch") in rights
    assert ("", "pods", "watch") in rights
    assert ("", "secrets", "get") in rights  # report tokens, read back by the endpoint
    assert ("thunderbolt.io", "experiments", "get") in rights
    assert len(rights) > 20


@pytest.mark.parametrize("values", [{}, {"clusterWide": True}], ids=["namespaced", "clusterWide"])
def test_role_grants_every_call(values):
    objects = render(values)
    role = (
        by_kind(objects, "Role")
        or [
            o
            for o in by_kind(objects, "ClusterRole")
            if not o["metadata"]["name"].endswith("-framework")
        ]
    )[0]
    missing = sorted(needed() - granted(role))
    assert missing == [], f"the chart's Role lacks {missing}"
