"""Every PromQL expression the chart ships (Grafana panels, alert rules) names metrics and
labels the code really registers, so a renamed metric or label fails here, not on a wall
display. Expressions are parsed by a real PromQL parser (promql-parser, Prometheus's
grammar), metric names come from the prometheus_client registries the code fills.
"""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser as pq
import pytest
from helm_render import by_kind, one, render

FULLNAME = "tb-thunderbolt"
MONITORING = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)
# Labels Prometheus adds at scrape time. The operator's ServiceMonitor honours the series'
# own labels (its namespace is the Experiment's); the serving PodMonitor adds the pod's
# namespace and relabels the revision labels.
SCRAPE_LABELS = {"job", "instance", "pod", "service", "container", "endpoint"}
SERVING_SCRAPE_LABELS = SCRAPE_LABELS | {"namespace", "modeldeployment", "revision"}
# Grafana template variables, replaced by what Grafana would put there.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": ".*"}


def _exposed(registry: Any, extra_labels: set[str]) -> dict[str, set[str]]:
    """Exposition name (with _total/_bucket/_sum/_count) -> the label names it carries."""
    names: dict[str, set[str]] = {}
    for name, collector in registry._names_to_collectors.items():
        labels = set(getattr(collector, "_labelnames", ()))
        if name.endswith("_bucket"):
            labels.add("le")
        names[name] = labels | extra_labels
    return names


@pytest.fixture(scope="module")
def registered() -> dict[str, set[str]]:
    from prometheus_client import REGISTRY

    import thunderbolt.deploy.metrics
    import thunderbolt.operator.metrics
    import thunderbolt.reports.metrics  # noqa: F401 -- they register into REGISTRY
    from thunderbolt.serving.metrics import ServingMetrics

    names = {
        n: labels
        for n, labels in _exposed(REGISTRY, SCRAPE_LABELS).items()
        if n.startswith("thunderbolt_")
    }
    serving = _exposed(ServingMetrics().registry, SERVING_SCRAPE_LABELS)
    assert not set(names) & set(serving), "a serving metric shadows an operator metric"
    return names | serving


def _selectors(expr: Any) -> list[Any]:
    """Every vector selector under ``expr``."""
    if isinstance(expr, pq.VectorSelector):
        return [expr]
    if isinstance(expr, pq.MatrixSelector):
        return [expr.vector_selector]
    found = []
    for attr in ("expr", "lhs", "rhs", "param"):
        child = getattr(expr, attr, None)
        if isinstance(child, pq.Expr):
            found += _selectors(child)
    for arg in getattr(expr, "args", None) or []:
        found += _selectors(arg)
    return found


def _problems(text: str, registered: dict[str, set[str]]) -> list[str]:
    """What in ``text`` does not exist: metric names, matcher labels, grouping labels."""
    problems: list[str] = []

    def available(expr: Any) -> set[str]:
        labels: set[str] = set()
        for selector in _selectors(expr):
            labels |= registered.get(selector.name, set())
        return labels

    def visit(expr: Any) -> None:
        if isinstance(expr, pq.VectorSelector | pq.MatrixSelector):
            selector = expr if isinstance(expr, pq.VectorSelector) else expr.vector_selector
            if selector.name not in registered:
                problems.append(f"unknown metric {selector.name}")
                return
            for matcher in selector.matchers.matchers:
                if matcher.name not in registered[selector.name]:
                    problems.append(f"{selector.name} has no label {matcher.name}")
            return
        if isinstance(expr, pq.AggregateExpr) and expr.modifier is not None:
            missing = set(expr.modifier.labels) - available(expr.expr)
            problems.extend(f"grouping by {label}, which no input has" for label in missing)
        if isinstance(expr, pq.BinaryExpr) and expr.modifier and expr.modifier.matching:
            both = available(expr.lhs) & available(expr.rhs)
            missing = set(expr.modifier.matching.labels) - both
            problems.extend(f"matching on {label}, missing on one side" for label in missing)
        for attr in ("expr", "lhs", "rhs", "param"):
            child = getattr(expr, attr, None)
            if isinstance(child, pq.Expr):
                visit(child)
        for arg in getattr(expr, "args", None) or []:
            visit(arg)

    visit(pq.parse(text))
    return problems


def _dashboard_expressions() -> list[tuple[str, str]]:
    config_map = one(render(), "ConfigMap", f"{FULLNAME}-dashboard")
    dashboard = json.loads(config_map["data"]["thunderbolt.json"])
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']}"
            found.append((panel["title"], expr))
    return found


def _rule_expressions() -> list[tuple[str, str]]:
    objects = render({"prometheusRule": {"enabled": True}}, api_versions=MONITORING)
    rule = one(objects, "PrometheusRule", FULLNAME)
    return [(r["alert"], r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]]


def test_every_dashboard_expression_names_registered_metrics(registered):
    expressions = _dashboard_expressions()
    assert len(expressions) >= 15
    for title, expr in expressions:
        assert _problems(expr, registered) == [], (title, expr)


def test_every_alert_expression_names_registered_metrics(registered):
    expressions = _rule_expressions()
    assert {name for name, _ in expressions} == {
        "ThunderboltReconcileErrors",
        "ThunderboltExperimentStalled",
        "ThunderboltServingErrorRate",
        "ThunderboltServingLatencyP99",
        "ThunderboltRolledBack",
    }
    for name, expr in expressions:
        assert _problems(expr, registered) == [], (name, expr)


def test_the_checker_catches_renamed_metrics_and_labels(registered):
    assert _problems("sum(rate(thunderbolt_trials_total[5m]))", registered) == [
        "unknown metric thunderbolt_trials_total"
    ]
    assert _problems("max by (experiment) (thunderbolt_experiment_best_objective)", registered)
    assert _problems('thunderbolt_reconcile_errors_total{sampler="tpe"}', registered) == [
        "thunderbolt_reconcile_errors_total has no label sampler"
    ]
    assert _problems("sum by (model) (thunderbolt_trials)", registered) == [
        "grouping by model, which no input has"
    ]
    # histogram and counter suffixes are what is exposed; the bare counter name is not
    assert _problems("thunderbolt_reconcile_duration_seconds_bucket", registered) == []
    assert _problems("thunderbolt_reconcile_duration_seconds_count", registered) == []
    assert _problems("thunderbolt_inference_requests_total", registered) == []


def test_dashboard_covers_the_operator_serving_and_rollout_metrics():
    used = {
        name
        for _, expr in _dashboard_expressions()
        for name in re.findall(r"thunderbolt_[a-z_]+", expr)
    }
    for needed in (
        "thunderbolt_reconcile_duration_seconds_bucket",
        "thunderbolt_suggestion_duration_seconds_bucket",
        "thunderbolt_reports_total",
        "thunderbolt_report_ingest_seconds_bucket",
        "thunderbolt_inference_requests_total",
        "thunderbolt_inference_request_duration_seconds_bucket",
        "thunderbolt_rollout_outcomes_total",
    ):
        assert needed in used


def test_rules_take_their_thresholds_from_values():
    values = {
        "prometheusRule": {
            "enabled": True,
            "stalledMinutes": 45,
            "serving": {"maxErrorRate": 0.05, "maxP99Seconds": 0.25},
        }
    }
    rule = one(render(values, api_versions=MONITORING), "PrometheusRule", FULLNAME)
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "[45m]" in rules["ThunderboltExperimentStalled"]["expr"]
    assert rules["ThunderboltServingErrorRate"]["expr"].rstrip().endswith("> 0.05")
    assert rules["ThunderboltServingLatencyP99"]["expr"].rstrip().endswith("> 0.25")


def test_rules_off_by_default_and_only_with_the_api():
    assert by_kind(render(api_versions=MONITORING), "PrometheusRule") == []
    assert by_kind(render({"prometheusRule": {"enabled": True}}), "PrometheusRule") == []


def test_pod_monitor_relabels_the_revision_of_serving_pods():
    monitor = one(render(api_versions=MONITORING), "PodMonitor", f"{FULLNAME}-serving")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "http"
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"modeldeployment", "revision"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["thunderbolt-system"]}
    service_monitor = one(render(api_versions=MONITORING), "ServiceMonitor", FULLNAME)
    assert service_monitor["spec"]["endpoints"][0]["honorLabels"] is True
