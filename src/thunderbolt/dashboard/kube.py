"""The few API calls a page makes beyond the shared watches (Events, a log tail, canary
figures, and the write actions), all with the credentials the dashboard was started with:
the user's kubeconfig locally, the read-only ServiceAccount in the cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thunderbolt.api.meta import GROUP, VERSION

LOG_TAIL_LINES = 200
KIND_NAMES = {"trials": "Trial", "experiments": "Experiment", "modeldeployments": "ModelDeployment"}

# The field manager of decisions taken in the dashboard (recorded in the history).
DASHBOARD_FIELD_MANAGER = "thunderbolt-dashboard"


class ActionRefused(ValueError):
    """A write the API server or the dashboard refused; the message is safe to show.

    ``status`` is the HTTP status the dashboard answers with: 403 when Kubernetes RBAC
    refused the caller, 404 when the object is gone, 400 for a change that is invalid.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Kube:
    api_client: Any

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    def events(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events about one object; none when they cannot be read (a page still renders)."""
        selector = f"involvedObject.name={name},involvedObject.kind={KIND_NAMES[kind]}"
        try:
            result = self.core.list_namespaced_event(
                namespace, field_selector=selector, limit=100, _preload_content=False
            )
        except Exception:  # noqa: BLE001 -- forbidden, gone, no connection: show none
            return []
        import json

        items: list[dict[str, Any]] = json.loads(result.data).get("items", [])
        return items

    def log_tail(self, namespace: str, trial: dict[str, Any]) -> str | None:
        """The last lines of the newest pod of the Trial's Job (what `thunderbolt logs` reads)."""
        from thunderbolt.cli.logs import job_name, newest_first

        try:
            pods = self.core.list_namespaced_pod(
                namespace, label_selector=f"job-name={job_name(trial)}"
            ).items
            if not pods:
                return None
            pod = newest_first(list(pods))[0]
            text: str = self.core.read_namespaced_pod_log(
                pod.metadata.name, namespace, tail_lines=LOG_TAIL_LINES
            )
        except Exception:  # noqa: BLE001 -- no pod yet, forbidden, container gone
            return None
        return text

    def canary_figures(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The canary pods' error rate and p99 judged against spec.strategy.analysis, read
        through the API server's pod proxy and judged by the controller's own code."""
        from thunderbolt.api.modeldeployment import Analysis
        from thunderbolt.deploy.analysis import judge, parse

        status = deployment.get("status") or {}
        spec = deployment.get("spec") or {}
        canary = status.get("canary")
        limits = (spec.get("strategy") or {}).get("analysis")
        if not canary or limits is None:
            return None
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        port = int((spec.get("serving") or {}).get("port") or 8080)
        selector = f"{GROUP}/modeldeployment={name},{GROUP}/revision={canary.get('revision')}"
        try:
            pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
            texts = [
                self.core.connect_get_namespaced_pod_proxy_with_path(
                    f"{p.metadata.name}:{port}", namespace, "metrics"
                )
                for p in pods
                if p.status.pod_ip
            ]
            analysis = Analysis.model_validate(limits)
        except Exception:  # noqa: BLE001 -- no proxy rights, pods starting: no figures
            return None
        sample = parse(texts, spec.get("modelName") or name)
        verdict = judge(sample, analysis)
        return {
            "pods": len(texts),
            "requests": sample.requests,
            "errorRate": sample.error_rate(),
            "p99Ms": sample.p99_ms,
            "maxErrorRate": analysis.maxErrorRate,
            "maxLatencyP99Ms": analysis.maxLatencyP99Ms,
            "minRequests": analysis.minRequests,
            "passed": verdict.passed,
            "verdict": verdict.message,
        }

    # -- write actions (only with --allow-actions, with the caller's own credentials) --

    def _patch(
        self,
        plural: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        field_manager: str | None = None,
    ) -> None:
        from kubernetes.client.exceptions import ApiException

        extra = {"field_manager": field_manager} if field_manager else {}
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, body, **extra
            )
        except ApiException as exc:
            if exc.status in (401, 403):
                raise ActionRefused(
                    "the Kubernetes API refused: your account may not do this", 403
                ) from exc
            if exc.status == 404:
                raise ActionRefused("not found", 404) from exc
            if exc.status in (400, 409, 422):
                raise ActionRefused("the Kubernetes API rejected the change as invalid") from exc
            raise

    def set_max_trials(self, namespace: str, name: str, value: int) -> None:
        self._patch("experiments", namespace, name, {"spec": {"maxTrials": value}})

    def decide(
        self,
        namespace: str,
        name: str,
        deployment: dict[str, Any],
        decision: str,
        revision: int | None,
        reason: str,
    ) -> int:
        """Approve or reject a revision waiting for approval: the same annotation as
        `thunderbolt approve|reject`, written with the caller's own credentials."""
        from thunderbolt.cli.approve import DECISIONS, target_revision
        from thunderbolt.cli.kube import CliError
        from thunderbolt.deploy import approval

        try:
            number = target_revision(deployment, decision, revision)
        except CliError as exc:
            raise ActionRefused(str(exc)) from exc
        key, value = approval.annotation(number, DECISIONS[decision], reason, None)
        self._patch(
            "modeldeployments",
            namespace,
            name,
            {"metadata": {"annotations": {key: value}}},
            field_manager=DASHBOARD_FIELD_MANAGER,
        )
        return number

    def rollback(
        self, namespace: str, name: str, deployment: dict[str, Any], to: int | None
    ) -> int:
        from thunderbolt.cli.kube import CliError
        from thunderbolt.cli.rollback import rollback_target

        try:
            target = rollback_target(deployment, to)
        except CliError as exc:
            raise ActionRefused(str(exc)) from exc
        self._patch("modeldeployments", namespace, name, {"spec": {"rollbackTo": target}})
        return target
