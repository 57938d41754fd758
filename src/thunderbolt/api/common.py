"""Types shared by every kind: conditions, resources, schema helpers."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Kubernetes quantities ("500m", "2Gi", "1.5", "1e3"), kept as strings as the API server
# does: one number, then at most one binary, decimal or exponent suffix ("1.2.3" and "5MGT"
# would pass the schema and fail Job creation with 422 forever).
QUANTITY_PATTERN = r"^[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# DNS-1123 subdomain: PriorityClass, Secret and ConfigMap names, label key prefixes.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Label keys ([prefix/]name, name at most 63) and values (at most 63, may be empty).
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# Container image references as the distribution spec defines them:
# [registry[:port]/]path[:tag][@digest]; "My Image:LATEST!" is not one.
IMAGE_PATTERN = (
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*"
    r"(:[0-9]+)?/)?"
    r"[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
# An S3 URI names a bucket and a key or prefix: "s3://" alone is no place. (S3-compatible
# stores accept shorter bucket names than AWS's 3-63, so only the characters are checked.)
S3_BUCKET = r"s3://[a-z0-9][-a-z0-9._]{0,62}"
S3_URI_PATTERN = S3_BUCKET + r"/[^\s]+"
# Parameter names become label keys (thunderbolt.io/param.<name>) and env-safe JSON keys.
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
CHECKSUM_PATTERN = r"^sha256:[a-f0-9]{64}$"
# A marker json_schema_extra understood by the CRD generator: keep this node's value
# untyped in the OpenAPI schema (mixed-type scalars such as categorical choices).
UNTYPED: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}

ScalarValue = bool | int | float | str


class ApiModel(BaseModel):
    """Base of every API type: unknown fields are an error, like a strict API server."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(ApiModel):
    """Standard Kubernetes condition, readable by `kubectl wait` and Argo CD."""

    type: str = Field(max_length=128)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=32768)
    lastTransitionTime: str | None = None
    observedGeneration: int | None = None


# Field name -> what the user meant; one hint per name across all kinds.
_MISPLACED_HINTS: dict[str, str] = {}


def misplaced(name: str, hint: str) -> Any:
    """A name users put where it does not belong, declared only to be refused.

    Kubernetes before 1.25 (and ``kubectl apply --validate=false``) drops unknown fields
    silently, so a misplaced ``canary`` would roll out to 100% with no canary. A property
    whose schema nothing satisfies (``not: {}``) is refused at ``kubectl apply`` on every
    server version; pydantic refuses it with the hint.
    Use as ``canary: Misplaced = misplaced("canary", "it belongs under spec.strategy")``.
    """
    if _MISPLACED_HINTS.setdefault(name, hint) != hint:
        raise ValueError(f"two different hints for the misplaced name {name!r}")
    return Field(
        default=None,
        exclude=True,
        description=f"Not a field: {hint}. Always refused.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True, "not": {}},
    )


def _refuse(value: Any, info: Any) -> Any:
    hint = _MISPLACED_HINTS.get(info.field_name, "see `kubectl explain`")
    raise ValueError(f"{info.field_name} is not a field here: {hint}")


# The type of a ``misplaced`` field: any value is an error (the hint is in the schema).
Misplaced = Annotated[Any, AfterValidator(_refuse)]


class Resources(ApiModel):
    """Per-pod resources. ``gpus`` becomes an ``nvidia.com/gpu`` limit."""

    gpus: int = Field(default=0, ge=0, le=16)
    gpu: Misplaced = misplaced("gpu", "the GPU count is 'gpus'")
    cpu: str = Field(default="1", max_length=32, pattern=QUANTITY_PATTERN)
    memory: str = Field(default="1Gi", max_length=32, pattern=QUANTITY_PATTERN)


def label_selector_field(description: str) -> Any:
    """A label map (nodeSelector-like): values checked by the schema, keys by CEL/pydantic."""
    return Field(
        default_factory=dict,
        description=description,
        json_schema_extra={
            "maxProperties": 32,
            "additionalProperties": {
                "type": "string",
                "maxLength": 63,
                "pattern": LABEL_VALUE_PATTERN,
            },
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, k.matches('{LABEL_KEY_PATTERN}'))",
                    "message": "keys must be label keys: [prefix/]name, name at most 63 "
                    "characters of [A-Za-z0-9_.-] starting and ending alphanumeric",
                }
            ],
        },
    )


def check_labels(labels: dict[str, str], where: str) -> dict[str, str]:
    """The pydantic twin of label_selector_field's rules (API servers without CEL)."""
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not re.match(LABEL_KEY_PATTERN, key) or len(name) > 63 or len(prefix) > 253:
            raise ValueError(f"{where}: {key!r} is not a valid label key")
        if len(value) > 63 or not re.match(LABEL_VALUE_PATTERN, value):
            raise ValueError(f"{where}[{key!r}]: {value!r} is not a valid label value")
    return labels
