"""Manifests for a ModelDeployment's children: one Deployment per live revision, Services, HTTPRoute.

Pure functions of the spec, the operator settings and a revision, so every field the pods
get (security context, probes, resources, env) is pinned by unit tests. Names are
deterministic (``<name>``, ``<name>-preview``, ``<name>-r<N>``) so creation is idempotent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from thunderbolt.api.meta import (
    API_VERSION,
    GROUP,
    MANAGED_BY,
    RUN_AS,
    owner_reference,
    restricted_container_security,
    restricted_pod_security,
)
from thunderbolt.api.modeldeployment import ModelDeploymentSpec, Revision, Shadow
from thunderbolt.api.serving import COMMAND, MirrorConfig, ServedModel, ServeFlags
from thunderbolt.cpu_threads import ThreadPlan, cpu_quantity, plan_threads

PLURAL = "modeldeployments"
KIND = "ModelDeployment"

LABEL_MD = f"{GROUP}/modeldeployment"
LABEL_REVISION = f"{GROUP}/revision"
ANNOTATION_TEMPLATE_HASH = f"{GROUP}/template-hash"
CREDENTIALS_DIR = "/var/run/secrets/thunderbolt/artifacts"
CONTAINER = "server"
UID = RUN_AS
# The server drains in-flight requests for 30 s on SIGTERM; give it a little more.
GRACE_SECONDS = 35


@dataclasses.dataclass(frozen=True)
class Owner:
    """The ModelDeployment the children belong to (garbage-collected with it)."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        ref = {"apiVersion": API_VERSION, "metadata": {"name": self.name, "uid": self.uid}}
        return owner_reference(ref, kind=KIND)


@dataclasses.dataclass(frozen=True)
class ServingDefaults:
    """What the operator supplies when the spec leaves it out."""

    image: str
    s3_endpoint_url: str | None = None
    credentials_secret: str | None = None
    mlflow_tracking_uri: str | None = None


def model_name(owner: Owner, spec: ModelDeploymentSpec) -> str:
    return spec.modelName or owner.name


def revision_name(owner: Owner, number: int) -> str:
    return f"{owner.name}-r{number}"


def preview_name(owner: Owner) -> str:
    return f"{owner.name}-preview"


def shadow_name(owner: Owner) -> str:
    """The Service a Shadow deployment's pods mirror to: it selects the candidate."""
    return f"{owner.name}-shadow"


# The shadow Service's revision while no shadow runs: it selects no pod.
NO_REVISION = "none"


def shadow_selector(owner: Owner, number: int | None) -> dict[str, str]:
    return {LABEL_MD: owner.name, LABEL_REVISION: NO_REVISION if number is None else str(number)}


def mirror_config(
    owner: Owner, spec: ModelDeploymentSpec, host: str | None = None
) -> MirrorConfig | None:
    """Where a Shadow deployment's server pods mirror answered requests (None otherwise).
    Every revision's pods get it, so a promoted candidate mirrors to the next one. ``host``:
    the shadow Service's ClusterIP (fixed for the Service's life: no DNS lookup per request,
    and no cluster DNS needed); without it, the Service's DNS name."""
    if spec.strategy.type != "Shadow":
        return None
    shadow = spec.strategy.shadow or Shadow()
    return MirrorConfig(
        url=f"http://{host or f'{shadow_name(owner)}.{owner.namespace}.svc'}:{spec.serving.port}",
        percent=shadow.percent,
        timeout_ms=shadow.timeoutMs,
        max_in_flight=shadow.maxInFlight,
        max_body_bytes=shadow.maxBodyBytes,
        tolerance=shadow.tolerance,
    )


def endpoint(service: str, namespace: str, port: int, model: str) -> str:
    return f"http://{service}.{namespace}.svc:{port}/v2/models/{model}"


def base_labels(owner: Owner) -> dict[str, str]:
    # Never app.kubernetes.io/instance: it is Argo CD's tracking label, and an Application
    # of the same name would then claim (and prune) these operator-made children.
    return {
        "app.kubernetes.io/name": "thunderbolt-server",
        **MANAGED_BY,
        LABEL_MD: owner.name,
    }


def revision_selector(owner: Owner, number: int) -> dict[str, str]:
    return {LABEL_MD: owner.name, LABEL_REVISION: str(number)}


def all_revisions_selector(owner: Owner) -> dict[str, str]:
    """Every live revision's pods: the canary split by replica counts relies on it."""
    return {LABEL_MD: owner.name}


def _metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }


def tracking_uri_for(
    revision: Revision, spec: ModelDeploymentSpec, defaults: ServingDefaults
) -> str | None:
    """The MLflow server a ``models:/`` revision is fetched from (spec, link, then operator)."""
    if not (revision.modelUri or "").startswith("models:/"):
        return None
    if spec.model.mlflowModel is not None and spec.model.mlflowModel.trackingUri:
        return spec.model.mlflowModel.trackingUri
    if revision.mlflowModelUrl and "/#/" in revision.mlflowModelUrl:
        return revision.mlflowModelUrl.split("/#/", 1)[0]
    return defaults.mlflow_tracking_uri


def _env(
    owner: Owner,
    spec: ModelDeploymentSpec,
    revision: Revision,
    defaults: ServingDefaults,
    mirror_host: str | None = None,
) -> list[dict[str, str]]:
    served = ServedModel(
        uri=revision.modelUri or "",
        name=model_name(owner, spec),
        version=str(revision.number),
        checksum=revision.modelChecksum,
    )
    env = [
        *served.env(),
        # Read-only root filesystem: every cache and temporary download goes to /tmp.
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
    ]
    s3 = spec.s3EndpointUrl or defaults.s3_endpoint_url
    if s3:
        env.append({"name": "AWS_ENDPOINT_URL", "value": s3})
    if spec.artifactsCredentialsSecret or defaults.credentials_secret:
        env.append(
            {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": f"{CREDENTIALS_DIR}/credentials"}
        )
    tracking = tracking_uri_for(revision, spec, defaults)
    if tracking:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": tracking})
    mirror = mirror_config(owner, spec, mirror_host)
    if mirror is not None:
        env.extend(mirror.env())
    return env


def thread_plan(spec: ModelDeploymentSpec) -> ThreadPlan:
    """Sized from the pod's CPU (``resources.cpu``): the pod has no CPU limit, so inside it
    the cgroup would show the node's cores and the server would oversize its pools."""
    t = spec.serving.threads
    try:
        cpus = cpu_quantity(spec.resources.cpu)
    except ValueError:  # a quantity the API pattern admits but no CPU count reads as ("1Ki")
        cpus = 1.0
    return plan_threads(cpus, t.intraOp, t.interOp, t.workers)


def _args(spec: ModelDeploymentSpec) -> list[str]:
    batching = spec.serving.batching
    plan = thread_plan(spec)
    return ServeFlags(
        port=spec.serving.port,
        batching=batching.enabled,
        max_batch_size=batching.maxBatchSize,
        max_delay_ms=batching.maxDelayMs,
        intra_op_threads=plan.intra_op,
        inter_op_threads=plan.inter_op,
        workers=plan.workers,
        grpc_port=spec.serving.grpcPort,
    ).args()


def _resources(spec: ModelDeploymentSpec) -> dict[str, Any]:
    res = spec.resources
    requests = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, Any] = {"memory": res.memory}
    if res.gpus > 0:
        limits["nvidia.com/gpu"] = str(res.gpus)
    return {"requests": requests, "limits": limits}


def named_ports(port: int, grpc_port: int = 0) -> list[tuple[str, int]]:
    """The pods' and Services' ports: ``http``, and ``grpc`` unless it is off (0)."""
    return [("http", port), *([("grpc", grpc_port)] if grpc_port else [])]


TMP_SIZE = "2Gi"  # a downloaded model and onnxruntime's scratch files


def pod_template(
    owner: Owner,
    spec: ModelDeploymentSpec,
    revision: Revision,
    defaults: ServingDefaults,
    mirror_host: str | None = None,
) -> dict[str, Any]:
    port = spec.serving.port
    # The server's only writable place (its root is read-only): bounded like every emptyDir.
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    secret = spec.artifactsCredentialsSecret or defaults.credentials_secret
    if secret:
        volumes.append({"name": "artifacts-credentials", "secret": {"secretName": secret}})
        mounts.append(
            {"name": "artifacts-credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True}
        )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image or defaults.image,
        "imagePullPolicy": spec.imagePullPolicy,
        "command": [COMMAND],
        "args": _args(spec),
        "env": _env(owner, spec, revision, defaults, mirror_host),
        "ports": [
            {"name": name, "containerPort": number, "protocol": "TCP"}
            for name, number in named_ports(port, spec.serving.grpcPort)
        ],
        "resources": _resources(spec),
        "securityContext": restricted_container_security(read_only_root=True),
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 2,
            "timeoutSeconds": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "containers": [container],
        "volumes": volumes,
    }
    if spec.resources.gpus > 0:
        pod_spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    labels = {**base_labels(owner), LABEL_REVISION: str(revision.number)}
    return {"metadata": {"labels": labels}, "spec": pod_spec}


def template_hash(template: dict[str, Any], replicas: int) -> str:
    """Lets the controller skip a patch when nothing changed."""
    blob = json.dumps({"t": template, "r": replicas}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    revision: Revision,
    replicas: int,
    defaults: ServingDefaults,
    mirror_host: str | None = None,
) -> dict[str, Any]:
    template = pod_template(owner, spec, revision, defaults, mirror_host)
    labels = {**base_labels(owner), LABEL_REVISION: str(revision.number)}
    meta = _metadata(owner, revision_name(owner, revision.number), labels)
    meta["annotations"] = {ANNOTATION_TEMPLATE_HASH: template_hash(template, replicas)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": revision_selector(owner, revision.number)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": template,
        },
    }


def service(
    owner: Owner, name: str, selector: dict[str, str], port: int, grpc_port: int = 0
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, base_labels(owner)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": name, "port": number, "targetPort": name, "protocol": "TCP"}
                for name, number in named_ports(port, grpc_port)
            ],
        },
    }


def http_route(
    owner: Owner,
    weights: dict[int, int],
    port: int,
    api_version: str = "gateway.networking.k8s.io/v1",
) -> dict[str, Any]:
    """Exact canary weights for a mesh (GAMMA): attached to the main Service, one backend
    per revision Service. Without a mesh it is inert and the replica split applies."""
    return {
        "apiVersion": api_version,
        "kind": "HTTPRoute",
        "metadata": _metadata(owner, owner.name, base_labels(owner)),
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": owner.name, "port": port}],
            "rules": [
                {
                    "backendRefs": [
                        {
                            "group": "",
                            "kind": "Service",
                            "name": revision_name(owner, number),
                            "port": port,
                            "weight": weight,
                        }
                        for number, weight in sorted(weights.items())
                    ]
                }
            ],
        },
    }
