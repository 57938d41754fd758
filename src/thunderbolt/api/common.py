"""Types shared by every kind: conditions, resources, schema helpers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Kubernetes quantities ("500m", "2Gi", "1.5"), kept as strings as the API server does.
QUANTITY_PATTERN = r"^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
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


class Resources(ApiModel):
    """Per-pod resources. ``gpus`` becomes an ``nvidia.com/gpu`` limit."""

    gpus: int = Field(default=0, ge=0, le=16)
    cpu: str = Field(default="1", max_length=32, pattern=QUANTITY_PATTERN)
    memory: str = Field(default="1Gi", max_length=32, pattern=QUANTITY_PATTERN)


class EnvVar(ApiModel):
    name: str = Field(max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str = Field(default="", max_length=4096)
