"""Generate the CRDs from the pydantic models: the one schema source.

Pydantic emits JSON Schema (2020-12 flavoured, with ``$ref``s); Kubernetes wants a
*structural* OpenAPI v3 schema: everything inlined, a type on every node, no nulls, no
``additionalProperties: false``. This module does that translation and nothing else.
``make crds`` writes ``crds/`` and the Helm chart's copy; ``make verify`` fails on drift.
"""

from __future__ import annotations

import argparse
import copy
import pathlib
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel

from thunderbolt.api import trial_columns
from thunderbolt.api.experiment import ExperimentSpec, ExperimentStatus
from thunderbolt.api.meta import GROUP, VERSION
from thunderbolt.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from thunderbolt.api.trial import TrialSpec, TrialStatus

CATEGORY = "thunderbolt"
_DROP_KEYS = {"title", "$defs", "discriminator"}


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


KINDS: list[Kind] = [
    Kind(
        "Experiment",
        "experiments",
        "tbexp",
        ExperimentSpec,
        ExperimentStatus,
        [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
            {"name": "Best", "type": "number", "jsonPath": ".status.bestTrial.objective"},
            {
                "name": "Best-Trial",
                "type": "string",
                "jsonPath": ".status.bestTrial.name",
                "priority": 1,
            },
            {
                "name": "Pareto-Front",
                "type": "integer",
                "jsonPath": ".status.paretoFrontSize",
                "priority": 1,
            },
            _age(),
        ],
    ),
    Kind(
        "Trial",
        "trials",
        "tbtrial",
        TrialSpec,
        TrialStatus,
        trial_columns.printer_columns(),
    ),
    Kind(
        "ModelDeployment",
        "modeldeployments",
        "tbmd",
        ModelDeploymentSpec,
        ModelDeploymentStatus,
        [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Revision", "type": "integer", "jsonPath": ".status.currentRevision.number"},
            {"name": "Canary-Weight", "type": "integer", "jsonPath": ".status.canary.weight"},
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
            _age(),
        ],
    ),
]


def _resolve_ref(ref: str, defs: dict[str, Any]) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[-1]
    return copy.deepcopy(defs[name])


def _is_null(node: dict[str, Any]) -> bool:
    return node.get("type") == "null"


def structural(node: Any, defs: dict[str, Any]) -> Any:
    """Translate one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = _resolve_ref(node.pop("$ref"), defs)
        target.update(node)  # sibling keys (description, default) win
        node = target
    if "anyOf" in node and "properties" not in node:
        options = [o for o in node.pop("anyOf") if not _is_null(o)]
        if len(options) == 1:
            merged = (
                _resolve_ref(options[0]["$ref"], defs) if "$ref" in options[0] else dict(options[0])
            )
            merged.update(node)
            node = merged
        elif {o.get("type") for o in options} <= {"integer", "number"}:
            node["type"] = "number"
        else:  # a union of scalar types: leave the value untyped
            node = {k: v for k, v in node.items() if k in ("description",)}
            node["x-kubernetes-preserve-unknown-fields"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    # Kubernetes 1.20 rejects an empty-string default as "null"; "" needs no default anyway.
    if node.get("default", 0) in (None, "") or node.get("x-kubernetes-preserve-unknown-fields"):
        node.pop("default", None)
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node and not isinstance(node[bound], bool):
            node["minimum" if bound == "exclusiveMinimum" else "maximum"] = node[bound]
            node[bound] = True
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = value
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    defs = raw.get("$defs", {})
    return structural(raw, defs)


def crd(kind: Kind) -> dict[str, Any]:
    spec_schema = model_schema(kind.spec)
    status_schema = model_schema(kind.status)
    spec_schema["description"] = (kind.spec.__doc__ or f"{kind.kind} spec").strip().splitlines()[0]
    status_schema["description"] = f"Observed state of the {kind.kind}, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "thunderbolt"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = "# Generated by `make crds` from src/thunderbolt/api. Do not edit.\n"


def render(kind: Kind) -> str:
    return HEADER + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


def render_chart_template(kind: Kind) -> str:
    """The chart's copy: behind crds.enabled, kept on `helm uninstall`."""
    body = crd(kind)
    body["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
    text = yaml.safe_dump(body, sort_keys=False, width=100)
    return HEADER + "{{- if .Values.crds.enabled }}\n" + text + "{{- end }}\n"


def write_all(out_dir: pathlib.Path, chart_dir: pathlib.Path | None) -> list[pathlib.Path]:
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        path = out_dir / f"{kind.plural}.yaml"
        path.write_text(render(kind))
        written.append(path)
        if chart_dir is not None:
            tdir = chart_dir / "templates" / "crds"
            tdir.mkdir(parents=True, exist_ok=True)
            tpath = tdir / f"{kind.plural}.yaml"
            tpath.write_text(render_chart_template(kind))
            written.append(tpath)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="crds", type=pathlib.Path)
    parser.add_argument("--chart", default=None, type=pathlib.Path)
    args = parser.parse_args(argv)
    for path in write_all(args.out, args.chart):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
