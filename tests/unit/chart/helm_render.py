"""Render the chart with the real Helm engine (Helm v4's Go SDK, via helm-python-sdk).

``helm template`` equivalent, offline. The Python wrapper does not expose
``--api-versions``; the native render call takes it in its options, so we pass it
there to exercise ``.Capabilities.APIVersions.Has`` branches.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import yaml

CHART = pathlib.Path(__file__).resolve().parents[3] / "charts" / "thunderbolt"
RELEASE = "tb"
NAMESPACE = "thunderbolt-system"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"


def render_files(
    values: dict[str, Any] | None = None,
    *,
    api_versions: tuple[str, ...] = (),
    namespace: str = NAMESPACE,
) -> dict[str, str]:
    """Template path -> rendered text. Raises helm_python errors on schema or template failure."""
    import helm_python as helm
    from helm_python import _native

    opts = {
        "name": RELEASE,
        "namespace": namespace,
        "is_install": True,
        "api_versions": list(api_versions),
    }
    with helm.Chart.load(str(CHART)) as chart:
        raw = _native.call_string(
            "helm_render",
            chart._raw(),
            None if values is None else json.dumps(values),
            json.dumps(opts),
        )
    files: dict[str, str] = json.loads(raw)
    return files


def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders (NOTES.txt excluded)."""
    objects = []
    for path, text in sorted(render_files(values, **kwargs).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]
