"""The Helm chart, rendered by the real Helm engine with several value sets."""

from __future__ import annotations

import pytest
from helm_render import NAMESPACE, SERVICE_MONITOR_API, by_kind, one, render, render_files
from pod_security import pod_specs, violations

FULLNAME = "tb-thunderbolt"
VALUE_SETS = {
    "defaults": {},
    "clusterWide": {"clusterWide": True},
    "mlflow-disabled": {"mlflow": {"enabled": False, "externalUri": "http://mlflow.example:5000"}},
    "ha": {"ha": {"enabled": True}, "replicas": 2},
    "watch-two": {"watchNamespaces": ["team-a", "team-b"]},
    "everything": {
        "clusterWide": True,
        "ha": {"enabled": True},
        "replicas": 3,
        "artifacts": {
            "uri": "s3://models/tb",
            "s3Endpoint": "http://minio:9000",
            "credentialsSecret": "s3-creds",
        },
        "mlflow": {"persistence": {"enabled": False}},
    },
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request):
    return request.param, render(VALUE_SETS[request.param], api_versions=(SERVICE_MONITOR_API,))


def env_of(deployment):
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container.get("env", [])}


def test_every_pod_passes_pod_security_restricted(rendered):
    name, objects = rendered
    specs = list(pod_specs(objects))
    assert specs, "no workloads rendered"
    for where, spec in specs:
        assert violations(spec) == [], f"{name}: {where}"


def test_no_wildcards_in_rbac(rendered):
    _, objects = rendered
    roles = by_kind(objects, "Role") + by_kind(objects, "ClusterRole")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            assert "nonResourceURLs" not in rule


def test_no_secret_values_in_env_and_no_secret_objects(rendered):
    _, objects = rendered
    assert by_kind(objects, "Secret") == []
    for _, spec in pod_specs(objects):
        for container in spec["containers"]:
            for env in container.get("env", []):
                assert "valueFrom" not in env, env  # secrets are mounted files, never env
                assert not any(w in env["name"] for w in ("PASSWORD", "SECRET_ACCESS", "TOKEN"))


def test_crds_carry_keep_policy(rendered):
    _, objects = rendered
    crds = [
        c
        for c in by_kind(objects, "CustomResourceDefinition")
        if "thunderbolt.io" in c["metadata"]["name"]
    ]
    assert {c["metadata"]["name"] for c in crds} == {
        "experiments.thunderbolt.io",
        "trials.thunderbolt.io",
        "modeldeployments.thunderbolt.io",
    }
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_crds_can_be_left_out():
    objects = render({"crds": {"enabled": False}})
    assert by_kind(objects, "CustomResourceDefinition") == []


def test_default_is_one_namespaced_role_single_replica_recreate():
    objects = render()
    assert by_kind(objects, "ClusterRoleBinding")  # only the read-only framework role
    cluster_roles = by_kind(objects, "ClusterRole")
    assert [r["metadata"]["name"] for r in cluster_roles] == [f"{FULLNAME}-framework"]
    for rule in cluster_roles[0]["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
    roles = by_kind(objects, "Role")
    assert [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles] == [
        (NAMESPACE, FULLNAME)
    ]
    deployment = one(objects, "Deployment", FULLNAME)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert env_of(deployment)["THUNDERBOLT_PEERING"]["value"] == "false"
    assert env_of(deployment)["THUNDERBOLT_NAMESPACES"]["value"] == NAMESPACE


def test_one_role_per_watched_namespace():
    objects = render(VALUE_SETS["watch-two"])
    roles = {r["metadata"]["namespace"] for r in by_kind(objects, "Role")}
    bindings = by_kind(objects, "RoleBinding")
    assert roles == {"team-a", "team-b"}
    assert {b["metadata"]["namespace"] for b in bindings} == roles
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
        ]
    deployment = one(objects, "Deployment", FULLNAME)
    assert env_of(deployment)["THUNDERBOLT_NAMESPACES"]["value"] == "team-a,team-b"


def test_cluster_wide_uses_a_cluster_role_and_watches_all():
    objects = render(VALUE_SETS["clusterWide"])
    assert by_kind(objects, "Role") == []
    names = {r["metadata"]["name"] for r in by_kind(objects, "ClusterRole")}
    assert names == {FULLNAME, f"{FULLNAME}-framework"}
    deployment = one(objects, "Deployment", FULLNAME)
    assert env_of(deployment)["THUNDERBOLT_NAMESPACES"]["value"] == ""
    # The system namespaces stay out of scope by default, and the list can be changed.
    excluded = env_of(deployment)["THUNDERBOLT_EXCLUDE_NAMESPACES"]["value"]
    assert excluded == "kube-system,kube-public,kube-node-lease"
    objects = render({"clusterWide": True, "excludeNamespaces": ["kube-*", "billing"]})
    env = env_of(one(objects, "Deployment", FULLNAME))
    assert env["THUNDERBOLT_EXCLUDE_NAMESPACES"]["value"] == "kube-*,billing"


def test_operator_rights_are_what_it_needs(rendered):
    _, objects = rendered
    role = (by_kind(objects, "Role") or [one(objects, "ClusterRole", FULLNAME)])[0]
    rights = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for needed in [
        ("thunderbolt.io", "trials", "create"),
        ("thunderbolt.io", "experiments/status", "patch"),
        ("thunderbolt.io", "modeldeployments/finalizers", "update"),
        ("batch", "jobs", "create"),
        ("apps", "deployments", "patch"),
        ("", "services", "create"),
        ("", "configmaps", "create"),
        ("", "secrets", "create"),
        ("", "secrets", "delete"),
        ("", "pods", "list"),
        ("", "events", "create"),
        ("", "pods/log", "get"),
    ]:
        assert needed in rights
    # Secrets: only what per-trial tokens need; never list or watch all of them.
    assert {v for g, r, v in rights if r == "secrets"} == {"get", "create", "delete"}
    assert not any(
        r in {"nodes", "namespaces", "roles", "rolebindings", "pods/exec"} for _, r, _ in rights
    )
    assert {v for g, r, v in rights if r == "pods/log"} == {"get"}


def test_probes_use_the_health_port_and_metrics_port_is_exposed(rendered):
    _, objects = rendered
    deployment = one(objects, "Deployment", FULLNAME)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "reports": 8081, "health": 8082}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["resources"]["limits"] and container["resources"]["requests"]


def test_ha_rolls_with_peering():
    objects = render(VALUE_SETS["ha"])
    deployment = one(objects, "Deployment", FULLNAME)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert env_of(deployment)["THUNDERBOLT_PEERING"]["value"] == "true"
    peering = by_kind(objects, "KopfPeering")
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peering] == [
        (NAMESPACE, "default")
    ]
    rules = one(objects, "Role", FULLNAME)["rules"]
    assert any("kopfpeerings" in r["resources"] for r in rules)


def test_mlflow_on_by_default_wired_into_the_operator():
    objects = render()
    mlflow = one(objects, "Deployment", f"{FULLNAME}-mlflow")
    command = mlflow["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--serve-artifacts" in command
    assert "--backend-store-uri=sqlite:////data/mlflow.db" in command
    assert one(objects, "PersistentVolumeClaim", f"{FULLNAME}-mlflow")
    env = env_of(one(objects, "Deployment", FULLNAME))
    assert env["THUNDERBOLT_MLFLOW_URI"]["value"] == (
        f"http://{FULLNAME}-mlflow.{NAMESPACE}.svc:5000"
    )
    assert env["THUNDERBOLT_ARTIFACTS_URI"]["value"] == "mlflow"
    assert env["THUNDERBOLT_REPORT_URL"]["value"] == f"http://{FULLNAME}.{NAMESPACE}.svc:8081"


def test_mlflow_disabled_uses_external_uri():
    objects = render(VALUE_SETS["mlflow-disabled"])
    assert [d["metadata"]["name"] for d in by_kind(objects, "Deployment")] == [FULLNAME]
    assert by_kind(objects, "PersistentVolumeClaim") == []
    env = env_of(one(objects, "Deployment", FULLNAME))
    assert env["THUNDERBOLT_MLFLOW_URI"]["value"] == "http://mlflow.example:5000"
    assert env["THUNDERBOLT_ARTIFACTS_URI"]["value"] == ""


def test_artifacts_secret_is_passed_by_name():
    objects = render(VALUE_SETS["everything"])
    env = env_of(one(objects, "Deployment", FULLNAME))
    assert env["THUNDERBOLT_ARTIFACTS_SECRET"]["value"] == "s3-creds"
    assert env["THUNDERBOLT_S3_ENDPOINT"]["value"] == "http://minio:9000"
    assert env["THUNDERBOLT_ARTIFACTS_URI"]["value"] == "s3://models/tb"


def test_service_monitor_only_when_the_api_exists():
    assert by_kind(render(), "ServiceMonitor") == []
    with_api = render(api_versions=(SERVICE_MONITOR_API,))
    monitor = one(with_api, "ServiceMonitor", FULLNAME)
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    off = {"monitoring": {"serviceMonitor": {"enabled": False}}}
    assert by_kind(render(off, api_versions=(SERVICE_MONITOR_API,)), "ServiceMonitor") == []


def test_grafana_dashboard_is_valid_json():
    import json

    config_map = one(render(), "ConfigMap", f"{FULLNAME}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["thunderbolt.json"])
    assert dashboard["uid"] == "thunderbolt" and dashboard["panels"]


def test_network_policies_admit_watched_namespaces_only():
    objects = render(VALUE_SETS["watch-two"])
    policy = one(objects, "NetworkPolicy", FULLNAME)
    reports = policy["spec"]["ingress"][0]
    selector = reports["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert set(selector["values"]) == {"team-a", "team-b", NAMESPACE}
    assert one(objects, "NetworkPolicy", f"{FULLNAME}-mlflow")
    assert by_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []


def test_mlflow_admits_only_training_serving_and_operator_pods():
    """The bundled MLflow has no authentication: a pod of a watched namespace that is not
    a Trial's or a ModelDeployment's must not reach it."""
    cases = (
        (VALUE_SETS["watch-two"], {"team-a", "team-b", NAMESPACE}),
        ({}, {NAMESPACE}),
        ({"clusterWide": True}, None),  # every namespace, still only those pods
    )
    for values, namespaces in cases:
        policy = one(render(values), "NetworkPolicy", f"{FULLNAME}-mlflow")
        peers = policy["spec"]["ingress"][0]["from"]
        keys = []
        for peer in peers:
            assert "podSelector" in peer, f"a peer admits whole namespaces: {peer}"
            expressions = peer["podSelector"].get("matchExpressions") or []
            keys += [e["key"] for e in expressions if e["operator"] == "Exists"]
            if expressions:
                selected = peer["namespaceSelector"].get("matchExpressions")
                assert (set(selected[0]["values"]) if selected else None) == namespaces
            else:  # the operator's own pods, in the release namespace
                assert "namespaceSelector" not in peer
                assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "thunderbolt"
        assert sorted(keys) == ["thunderbolt.io/modeldeployment", "thunderbolt.io/trial"]


def test_notes_render():
    notes = render_files()["thunderbolt/templates/NOTES.txt"]
    assert "watches: thunderbolt-system" in notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 2}, "replicas"),
        ({"bogus": True}, "bogus"),
        (
            {
                "securityContext": {
                    "allowPrivilegeEscalation": True,
                    "capabilities": {"drop": ["ALL"]},
                }
            },
            "allowPrivilegeEscalation",
        ),
        (
            {
                "podSecurityContext": {
                    "runAsNonRoot": False,
                    "seccompProfile": {"type": "RuntimeDefault"},
                }
            },
            "runAsNonRoot",
        ),
        (
            {
                "podSecurityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "Unconfined"},
                }
            },
            "seccompProfile",
        ),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"excludeNamespaces": ["Bad Glob!"]}, "excludeNamespaces"),
        ({"operator": {"ports": {"metrics": 0, "reports": 8081, "health": 8082}}}, "metrics"),
        (
            {
                "operator": {
                    "extraEnv": [
                        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                    ]
                }
            },
            "extraEnv",
        ),
        ({"mlflow": {"enabled": False}, "artifacts": {"uri": "mlflow"}}, "uri"),
        ({"artifacts": {"uri": "gs://bucket"}}, "uri"),
        ({"image": {"repository": ""}}, "repository"),
    ],
)
def test_schema_rejects_bad_values(values, message):
    import helm_python

    with pytest.raises(helm_python.HelmError) as error:
        render(values)
    assert message in str(error.value)


def test_helm_lint_strict_finds_no_warnings():
    import helm_python as helm
    from helm_render import CHART

    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
