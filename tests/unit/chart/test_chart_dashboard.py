"""The in-cluster dashboard (dashboard.enabled): read-only rights, a Service, no Ingress."""

from __future__ import annotations

from helm_render import NAMESPACE, by_kind, one, render
from pod_security import violations

FULLNAME = "tb-thunderbolt"
DASH = f"{FULLNAME}-dashboard"
READ = {"get", "list", "watch"}


def _dashboard_objects(objects):
    """Everything of the web dashboard (the Grafana dashboard ConfigMap shares the name)."""
    return [o for o in objects if o["metadata"]["name"] == DASH and o["kind"] != "ConfigMap"]


def test_off_by_default():
    assert _dashboard_objects(render()) == []


def test_read_only_role_per_watched_namespace():
    objects = render({"dashboard": {"enabled": True}, "watchNamespaces": ["team-a", "team-b"]})
    roles = [r for r in by_kind(objects, "Role") if r["metadata"]["name"] == DASH]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ, rule
            assert "secrets" not in rule["resources"] and "pods/exec" not in rule["resources"]
    bindings = [b for b in by_kind(objects, "RoleBinding") if b["metadata"]["name"] == DASH]
    assert {b["subjects"][0]["name"] for b in bindings} == {DASH}
    deployment = one(objects, "Deployment", DASH)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--watch-namespaces=team-a,team-b" in args
    assert not any("allow-actions" in a for a in args)


def test_cluster_wide_uses_a_read_only_cluster_role():
    objects = render({"dashboard": {"enabled": True}, "clusterWide": True})
    role = one(objects, "ClusterRole", DASH)
    assert all(set(rule["verbs"]) <= READ for rule in role["rules"])
    deployment = one(objects, "Deployment", DASH)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(a.startswith("--watch-namespaces") for a in args)


def test_service_without_ingress_and_pods_apart_from_the_operator():
    objects = render({"dashboard": {"enabled": True, "port": 9000}})
    assert by_kind(objects, "Ingress") == []
    service = one(objects, "Service", DASH)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == 9000
    deployment = one(objects, "Deployment", DASH)
    pod = deployment["spec"]["template"]
    assert violations(pod["spec"]) == []
    assert pod["spec"]["serviceAccountName"] == DASH
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "dashboard"
    operator_service = one(objects, "Service", FULLNAME)
    selector = operator_service["spec"]["selector"]
    assert not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert deployment["metadata"]["namespace"] == NAMESPACE


def test_schema_refuses_unknown_dashboard_keys():
    import pytest

    with pytest.raises(Exception, match="ingress|additional"):
        render({"dashboard": {"enabled": True, "ingress": {"enabled": True}}})
