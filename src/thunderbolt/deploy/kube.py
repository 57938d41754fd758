"""The API calls that carry a rollout plan out, each idempotent.

Children have deterministic names, so "create, and on 409 patch to the desired state" is
safe to repeat (crate-operator's rule). Deployments carry a hash of their desired pod
template and replica count, so an unchanged child costs no write. Status is replaced
with the resourceVersion read at the start of the tick: a concurrent writer makes the
tick fail with 409 and the next tick starts over from fresh state.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

from kubernetes import client

from thunderbolt.api.meta import GROUP, VERSION
from thunderbolt.deploy import builders as b
from thunderbolt.deploy.rollout import Observed
from thunderbolt.kubeclient import JSON_PATCH, MERGE_PATCH, applied, deleted, or_none

GATEWAY_GROUP = "gateway.networking.k8s.io"


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.apis = client.ApisApi(api)
        self.batch = client.BatchV1Api(api)
        self._gateway: tuple[float, str | None] | None = None

    # ModelDeployments, Trials, Experiments
    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        obj: Any = or_none(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        )
        return None if obj is None else dict(obj)

    def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> bool:
        """Write the whole status, guarded by the object's resourceVersion; False on conflict."""
        meta = obj["metadata"]
        body = {**obj, "status": status}
        return applied(
            lambda: self.custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], b.PLURAL, meta["name"], body
            )
        )

    def patch_modeldeployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, b.PLURAL, name, patch,
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    # Deployments
    def revisions(self, namespace: str, md: str) -> dict[int, tuple[Observed, dict[str, Any]]]:
        """The revision Deployments of ``md``, by number, with what they report."""
        found = self.apps.list_namespaced_deployment(namespace, label_selector=f"{b.LABEL_MD}={md}")
        result: dict[int, tuple[Observed, dict[str, Any]]] = {}
        items: list[Any] = list(found.items)
        for dep in items:
            label = (dep.metadata.labels or {}).get(b.LABEL_REVISION, "")
            if not label.isdigit():
                continue
            st = dep.status
            observed = Observed(
                replicas=dep.spec.replicas or 0,
                ready=(st.ready_replicas or 0) if st else 0,
                updated=(st.updated_replicas or 0) if st else 0,
                current_generation=bool(
                    st and (st.observed_generation or 0) >= (dep.metadata.generation or 0)
                ),
            )
            result[int(label)] = (observed, {"annotations": dep.metadata.annotations or {}})
        return result

    def ensure_deployment(self, body: dict[str, Any], existing: dict[str, Any] | None) -> bool:
        """Create, or bring an existing one to ``body``; True when something was written."""
        meta: dict[str, Any] = body["metadata"]
        payload: Any = body
        want_hash = meta["annotations"][b.ANNOTATION_TEMPLATE_HASH]
        if (
            existing is not None
            and existing["annotations"].get(b.ANNOTATION_TEMPLATE_HASH) == want_hash
        ):
            return False
        if existing is None and applied(
            lambda: self.apps.create_namespaced_deployment(meta["namespace"], payload)
        ):
            return True
        ops = [
            {"op": "replace", "path": "/spec/replicas", "value": body["spec"]["replicas"]},
            {"op": "replace", "path": "/spec/template", "value": body["spec"]["template"]},
            {"op": "replace", "path": "/metadata/annotations", "value": meta["annotations"]},
        ]
        self.apps.patch_namespaced_deployment(
            meta["name"], meta["namespace"], ops, _content_type=JSON_PATCH
        )
        return True

    def delete_deployment(self, namespace: str, name: str) -> None:
        deleted(
            lambda: self.apps.delete_namespaced_deployment(
                name, namespace, propagation_policy="Background"
            )
        )

    # Services
    def services(self, namespace: str, md: str) -> dict[str, dict[str, Any]]:
        found = self.core.list_namespaced_service(namespace, label_selector=f"{b.LABEL_MD}={md}")
        items: list[Any] = list(found.items)
        return {
            s.metadata.name: {
                "selector": s.spec.selector or {},
                "ip": s.spec.cluster_ip,
                "ports": [(p.name, p.port) for p in s.spec.ports or []],
            }
            for s in items
        }

    def ensure_service(self, body: dict[str, Any], existing: dict[str, Any] | None) -> None:
        meta, spec = body["metadata"], body["spec"]
        payload: Any = body
        ports = [(p["name"], p["port"]) for p in spec["ports"]]
        if (
            existing is not None
            and existing["selector"] == spec["selector"]
            and existing.get("ports", ports) == ports
        ):
            return
        if existing is None and applied(
            lambda: self.core.create_namespaced_service(meta["namespace"], payload)
        ):
            return
        # A JSON patch replaces the selector map; a merge patch would keep removed keys.
        ops = [
            {"op": "replace", "path": "/spec/selector", "value": spec["selector"]},
            {"op": "replace", "path": "/spec/ports", "value": spec["ports"]},
        ]
        self.core.patch_namespaced_service(
            meta["name"], meta["namespace"], ops, _content_type=JSON_PATCH
        )

    def delete_service(self, namespace: str, name: str) -> None:
        deleted(lambda: self.core.delete_namespaced_service(name, namespace))

    def ready_pod_ips(self, namespace: str, md: str, revision: int) -> list[str]:
        selector = f"{b.LABEL_MD}={md},{b.LABEL_REVISION}={revision}"
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector)
        ips = []
        items: list[Any] = list(pods.items)
        for pod in items:
            conditions = (pod.status.conditions or []) if pod.status else []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            if ready and pod.status.pod_ip and pod.metadata.deletion_timestamp is None:
                ips.append(pod.status.pod_ip)
        return ips

    # Quality-gate Jobs
    def ensure_job(self, body: dict[str, Any]) -> None:
        """Create the Job; one that exists already (409) is the same Job."""
        meta: dict[str, Any] = body["metadata"]
        payload: Any = body
        applied(lambda: self.batch.create_namespaced_job(meta["namespace"], payload))

    def job_outcome(self, namespace: str, name: str) -> tuple[str, str | None] | None:
        """("Complete" | "Failed", the pod's termination message or the Job's reason), or
        None while it runs (or does not exist)."""
        job: Any = or_none(lambda: self.batch.read_namespaced_job(name, namespace))
        if job is None or job.status is None:
            return None
        state = None
        for cond in job.status.conditions or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                state, reason = cond.type, cond.reason
        if state is None:
            return None
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}")
        items: list[Any] = list(pods.items)
        for pod in items:
            for cs in (pod.status.container_statuses or []) if pod.status else []:
                terminated = cs.state.terminated if cs.state else None
                if terminated is not None and terminated.message:
                    return state, str(terminated.message)
        return state, reason

    def gate_jobs(self, namespace: str, md: str) -> list[str]:
        found = self.batch.list_namespaced_job(namespace, label_selector=f"{b.LABEL_MD}={md}")
        items: list[Any] = list(found.items)
        return [j.metadata.name for j in items]

    def delete_job(self, namespace: str, name: str) -> None:
        deleted(
            lambda: self.batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background"
            )
        )

    # Gateway API
    def gateway_version(self, ttl: float = 300.0) -> str | None:
        """``gateway.networking.k8s.io/<version>`` when the API server serves it (cached)."""
        now = time.monotonic()
        if self._gateway is not None and now - self._gateway[0] < ttl:
            return self._gateway[1]
        version = None
        groups: list[Any] = list(self.apis.get_api_versions().groups or [])
        for group in groups:
            if group.name == GATEWAY_GROUP:
                version = group.preferred_version.group_version
        self._gateway = (now, version)
        return version

    def ensure_route(self, body: dict[str, Any]) -> None:
        group, version = body["apiVersion"].split("/")
        meta = body["metadata"]
        if not applied(
            lambda: self.custom.create_namespaced_custom_object(
                group, version, meta["namespace"], "httproutes", body
            )
        ):
            ops = [{"op": "replace", "path": "/spec", "value": body["spec"]}]
            self.custom.patch_namespaced_custom_object(
                group, version, meta["namespace"], "httproutes", meta["name"], ops,
                _content_type=JSON_PATCH,
            )  # fmt: skip

    def delete_route(self, api_version: str, namespace: str, name: str) -> None:
        group, version = api_version.split("/")
        deleted(
            lambda: self.custom.delete_namespaced_custom_object(
                group, version, namespace, "httproutes", name
            )
        )


def scrape(ip: str, port: int, timeout: float = 3.0) -> str:
    """One pod's ``/metrics`` text (the operator reaches pod IPs directly)."""
    with urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=timeout) as response:
        text: str = response.read().decode()
    return text
