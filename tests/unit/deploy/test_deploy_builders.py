"""Manifests of a ModelDeployment's children: security, probes, resources, env, names."""

from __future__ import annotations

import pytest

from thunderbolt.api.modeldeployment import Revision, parse_spec
from thunderbolt.deploy import builders as b

OWNER = b.Owner(name="iris", namespace="ml", uid="uid-1")
DEFAULTS = b.ServingDefaults(image="thunderbolt-trainer:0.1.0")
CHECKSUM = "sha256:" + "a" * 64


def spec(**extra):
    return parse_spec({"model": {"uri": "s3://models/iris.onnx", "checksum": CHECKSUM}, **extra})


def revision(number=3, uri="s3://models/iris.onnx", **extra):
    return Revision(number=number, modelUri=uri, modelChecksum=CHECKSUM, **extra)


def container(dep):
    return dep["spec"]["template"]["spec"]["containers"][0]


def env(dep):
    return {e["name"]: e["value"] for e in container(dep)["env"]}


def test_deployment_is_named_and_selected_by_revision_and_owned():
    dep = b.deployment(OWNER, spec(replicas=2), revision(3), 2, DEFAULTS)
    assert dep["metadata"]["name"] == "iris-r3"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == {
        b.LABEL_MD: "iris",
        b.LABEL_REVISION: "3",
    }
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels[b.LABEL_REVISION] == "3" and labels[b.LABEL_MD] == "iris"
    (ref,) = dep["metadata"]["ownerReferences"]
    assert ref["kind"] == "ModelDeployment" and ref["uid"] == "uid-1" and ref["controller"]


def test_pods_meet_pod_security_restricted():
    dep = b.deployment(OWNER, spec(), revision(), 1, DEFAULTS)
    pod = dep["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(dep)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    # A read-only root needs a writable /tmp for downloads and caches.
    assert {"name": "tmp", "mountPath": "/tmp"} in container(dep)["volumeMounts"]
    assert env(dep)["TMPDIR"] == "/tmp"


def test_probes_use_the_v2_health_endpoints_on_the_serving_port():
    dep = b.deployment(OWNER, spec(serving={"port": 9000}), revision(), 1, DEFAULTS)
    c = container(dep)
    assert c["ports"][0] == {"name": "http", "containerPort": 9000, "protocol": "TCP"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["args"][:3] == ["serve", "--port", "9000"]


def test_model_reaches_the_server_through_env():
    dep = b.deployment(OWNER, spec(modelName="flowers"), revision(7), 1, DEFAULTS)
    e = env(dep)
    assert e["THUNDERBOLT_MODEL_URI"] == "s3://models/iris.onnx"
    assert e["THUNDERBOLT_MODEL_CHECKSUM"] == CHECKSUM
    assert e["THUNDERBOLT_MODEL_NAME"] == "flowers"
    assert e["THUNDERBOLT_MODEL_VERSION"] == "7"
    assert "MLFLOW_TRACKING_URI" not in e


def test_resources_without_gpu_have_no_gpu_limit_or_toleration():
    dep = b.deployment(
        OWNER, spec(resources={"cpu": "250m", "memory": "256Mi"}), revision(), 1, DEFAULTS
    )
    res = container(dep)["resources"]
    assert res == {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
    assert "tolerations" not in dep["spec"]["template"]["spec"]


def test_gpus_become_an_nvidia_limit_and_a_toleration():
    dep = b.deployment(OWNER, spec(resources={"gpus": 1}), revision(), 1, DEFAULTS)
    assert container(dep)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert dep["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_s3_credentials_are_a_mounted_file_and_endpoint_comes_from_spec_over_settings():
    defaults = b.ServingDefaults(
        image="img", s3_endpoint_url="http://op:9000", credentials_secret="op-creds"
    )
    dep = b.deployment(
        OWNER,
        spec(s3EndpointUrl="http://spec:9000", artifactsCredentialsSecret="md-creds"),
        revision(),
        1,
        defaults,
    )
    e = env(dep)
    assert e["AWS_ENDPOINT_URL"] == "http://spec:9000"
    assert e["AWS_SHARED_CREDENTIALS_FILE"] == f"{b.CREDENTIALS_DIR}/credentials"
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "artifacts-credentials", "secret": {"secretName": "md-creds"}} in volumes
    mount = next(m for m in container(dep)["volumeMounts"] if m["name"] == "artifacts-credentials")
    assert mount["readOnly"] is True
    # Never as environment variables.
    assert not any(name.startswith("AWS_SECRET") or name.startswith("AWS_ACCESS") for name in e)

    plain = b.deployment(OWNER, spec(), revision(), 1, defaults)
    assert env(plain)["AWS_ENDPOINT_URL"] == "http://op:9000"
    assert {"name": "artifacts-credentials", "secret": {"secretName": "op-creds"}} in plain["spec"][
        "template"
    ]["spec"]["volumes"]


def test_mlflow_revisions_get_the_tracking_uri_from_the_spec_or_the_version_link():
    ml = parse_spec(
        {
            "model": {
                "mlflowModel": {
                    "name": "iris",
                    "alias": "champion",
                    "trackingUri": "http://mlflow:5000",
                }
            }
        }
    )
    rev = revision(uri="models:/iris/3")
    assert (
        env(b.deployment(OWNER, ml, rev, 1, DEFAULTS))["MLFLOW_TRACKING_URI"]
        == "http://mlflow:5000"
    )
    linked = revision(
        uri="models:/iris/3", mlflowModelUrl="http://other:5000/#/models/iris/versions/3"
    )
    assert (
        env(b.deployment(OWNER, spec(), linked, 1, DEFAULTS))["MLFLOW_TRACKING_URI"]
        == "http://other:5000"
    )


def test_batching_flags_follow_the_spec():
    on = b.deployment(
        OWNER,
        spec(serving={"batching": {"maxBatchSize": 8, "maxDelayMs": 5}}),
        revision(),
        1,
        DEFAULTS,
    )
    assert container(on)["args"][3:7] == ["--max-batch-size", "8", "--max-delay-ms", "5"]
    off = b.deployment(
        OWNER, spec(serving={"batching": {"enabled": False}}), revision(), 1, DEFAULTS
    )
    assert container(off)["args"][3:4] == ["--no-batching"]
    assert "--max-batch-size" not in container(off)["args"]


def _flag(dep, name):
    args = container(dep)["args"]
    return args[args.index(name) + 1]


@pytest.mark.parametrize(
    ("cpu", "intra", "workers"),
    [("250m", "1", "1"), ("1", "1", "1"), ("1500m", "1", "1"), ("2", "2", "1"), ("8", "4", "2")],
)
def test_thread_flags_follow_the_pods_cpu(cpu, intra, workers):
    dep = b.deployment(OWNER, spec(resources={"cpu": cpu}), revision(), 1, DEFAULTS)
    assert _flag(dep, "--intra-op-threads") == intra
    assert _flag(dep, "--inter-op-threads") == "1"
    assert _flag(dep, "--workers") == workers


def test_thread_knobs_in_the_spec_win_over_the_cpu():
    threads = {"intraOp": 3, "interOp": 2, "workers": 3}
    dep = b.deployment(
        OWNER, spec(resources={"cpu": "8"}, serving={"threads": threads}), revision(), 1, DEFAULTS
    )
    flags = ("--intra-op-threads", "--inter-op-threads", "--workers")
    assert tuple(_flag(dep, f) for f in flags) == ("3", "2", "3")


def test_template_hash_changes_with_replicas_and_model_only():
    a = b.deployment(OWNER, spec(), revision(), 1, DEFAULTS)
    same = b.deployment(OWNER, spec(), revision(), 1, DEFAULTS)
    more = b.deployment(OWNER, spec(), revision(), 2, DEFAULTS)
    other = b.deployment(OWNER, spec(), revision(uri="s3://models/other.onnx"), 1, DEFAULTS)
    h = lambda d: d["metadata"]["annotations"][b.ANNOTATION_TEMPLATE_HASH]  # noqa: E731
    assert h(a) == h(same)
    assert len({h(a), h(more), h(other)}) == 3


def test_service_selects_given_pods_on_the_serving_port():
    svc = b.service(OWNER, "iris", b.revision_selector(OWNER, 4), 8080)
    assert svc["metadata"]["name"] == "iris"
    assert svc["spec"]["selector"] == {b.LABEL_MD: "iris", b.LABEL_REVISION: "4"}
    assert svc["spec"]["ports"][0]["port"] == 8080
    assert b.all_revisions_selector(OWNER) == {b.LABEL_MD: "iris"}
    assert b.endpoint("iris", "ml", 8080, "iris") == "http://iris.ml.svc:8080/v2/models/iris"


def test_httproute_attaches_to_the_service_with_exact_weights_per_revision():
    route = b.http_route(OWNER, {3: 90, 4: 10}, 8080)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [
        {"group": "", "kind": "Service", "name": "iris", "port": 8080}
    ]
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(x["name"], x["weight"]) for x in backends] == [("iris-r3", 90), ("iris-r4", 10)]
    assert b.http_route(OWNER, {1: 50, 2: 50}, 80, "gateway.networking.k8s.io/v1beta1")[
        "apiVersion"
    ].endswith("v1beta1")


def test_grpc_is_a_named_port_on_the_pods_and_the_service():
    dep = b.deployment(OWNER, spec(), revision(), 1, DEFAULTS)
    assert container(dep)["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert _flag(dep, "--grpc-port") == "8081"
    svc = b.service(OWNER, "iris", b.all_revisions_selector(OWNER), 8080, 8081)
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
        {"name": "grpc", "port": 8081, "targetPort": "grpc", "protocol": "TCP"},
    ]
    off = b.deployment(OWNER, spec(serving={"grpcPort": 0}), revision(), 1, DEFAULTS)
    assert [p["name"] for p in container(off)["ports"]] == ["http"]
    assert "--grpc-port" not in container(off)["args"]


@pytest.mark.parametrize(
    "serving", [{"grpcPort": 8080}, {"port": 9000, "grpcPort": 9000}, {"grpcPort": 80}]
)
def test_grpc_port_must_be_off_or_another_unprivileged_port(serving):
    with pytest.raises(ValueError, match="grpcPort"):
        spec(serving=serving)
