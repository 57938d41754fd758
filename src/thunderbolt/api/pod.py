"""Pod-level fields of the trial template: what real training code needs from its pod.

Typed where the operator must keep a guarantee (containers run restricted, volume types
restricted Pod Security allows, names that cannot shadow the operator's own volumes and
mounts); passed through as the API server's own types otherwise (affinity).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from thunderbolt.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    IMAGE_PATTERN,
    QUANTITY_PATTERN,
    UNTYPED,
    ApiModel,
)

ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# Volume sources the restricted Pod Security Standard allows (no hostPath, no NFS...).
ALLOWED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "secret",
        "emptyDir",
        "persistentVolumeClaim",
        "projected",
        "downwardAPI",
        "csi",
        "ephemeral",
    }
)
# What the operator mounts itself; user volumes and mounts may not take these.
RESERVED_VOLUMES = frozenset(
    {"config", "workspace", "tmp", "artifacts-credentials", "report-token", "dshm"}
)
RESERVED_MOUNT_PREFIXES = ("/etc/thunderbolt", "/var/run/secrets/thunderbolt.io", "/dev/shm")


class KeySelector(ApiModel):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    optional: bool | None = None


class FieldSelector(ApiModel):
    fieldPath: str = Field(max_length=256)
    apiVersion: str | None = Field(default=None, max_length=64)


class ResourceFieldSelector(ApiModel):
    resource: str = Field(max_length=64)
    containerName: str | None = Field(default=None, max_length=63)
    divisor: str | None = Field(default=None, max_length=32, pattern=QUANTITY_PATTERN)


class EnvVarSource(ApiModel):
    """Exactly one source, as in the core API."""

    secretKeyRef: KeySelector | None = None
    configMapKeyRef: KeySelector | None = None
    fieldRef: FieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        given = [k for k, v in self if v is not None]
        if len(given) != 1:
            raise ValueError(f"valueFrom takes exactly one source, got {given or 'none'}")
        return self


class EnvVar(ApiModel):
    name: str = Field(max_length=253, pattern=ENV_NAME_PATTERN)
    value: str | None = Field(default=None, max_length=4096)
    valueFrom: EnvVarSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.valueFrom is not None:
            raise ValueError(f"env {self.name}: give 'value' or 'valueFrom', not both")
        return self

    def manifest(self) -> dict[str, Any]:
        if self.valueFrom is not None:
            return {"name": self.name, "valueFrom": self.valueFrom.model_dump(exclude_none=True)}
        return {"name": self.name, "value": self.value or ""}


class VolumeMount(ApiModel):
    name: str = Field(max_length=63, pattern=DNS_LABEL_PATTERN)
    mountPath: str = Field(max_length=1024, pattern=r"^/")
    readOnly: bool | None = None
    subPath: str | None = Field(default=None, max_length=1024)

    @field_validator("mountPath")
    @classmethod
    def _not_reserved(cls, path: str) -> str:
        normalized = path.rstrip("/") or "/"
        if normalized == "/" or any(
            normalized == p or normalized.startswith(p + "/") for p in RESERVED_MOUNT_PREFIXES
        ):
            raise ValueError(f"mountPath {path} is reserved for the operator")
        return path


class Toleration(ApiModel):
    key: str | None = Field(default=None, max_length=317)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None


class ContainerResources(ApiModel):
    cpu: str = Field(default="100m", max_length=32, pattern=QUANTITY_PATTERN)
    memory: str = Field(default="128Mi", max_length=32, pattern=QUANTITY_PATTERN)


class Container(ApiModel):
    """An init container or sidecar; it runs under the same restricted security context."""

    name: str = Field(max_length=63, pattern=DNS_LABEL_PATTERN)
    image: str = Field(max_length=512, min_length=1, pattern=IMAGE_PATTERN)
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    command: list[str] | None = Field(default=None, max_length=32)
    args: list[str] | None = Field(default=None, max_length=64)
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    volumeMounts: list[VolumeMount] = Field(default_factory=list, max_length=32)
    workingDir: str | None = Field(default=None, max_length=1024, pattern=r"^/")
    resources: ContainerResources = Field(default_factory=ContainerResources)


Volume = dict[str, Any]


def check_volume(volume: Volume) -> Volume:
    """A core/v1 Volume with a name and exactly one source of an allowed type."""
    name = volume.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("every volume needs a 'name'")
    if name in RESERVED_VOLUMES:
        raise ValueError(f"volume name {name!r} is reserved for the operator")
    sources = [k for k in volume if k != "name"]
    if len(sources) != 1:
        raise ValueError(f"volume {name!r}: exactly one source, got {sources or 'none'}")
    if sources[0] not in ALLOWED_VOLUME_SOURCES:
        raise ValueError(
            f"volume {name!r}: {sources[0]} is not allowed under restricted Pod Security "
            f"(allowed: {', '.join(sorted(ALLOWED_VOLUME_SOURCES))})"
        )
    if not isinstance(volume[sources[0]], dict):
        raise ValueError(f"volume {name!r}: {sources[0]} must be an object")
    return volume


VOLUME_SCHEMA: dict[str, Any] = {
    "items": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 63}},
        **UNTYPED,
    }
}
AFFINITY_KEYS = frozenset({"nodeAffinity", "podAffinity", "podAntiAffinity"})
AFFINITY_SCHEMA: dict[str, Any] = {
    "properties": {key: {"type": "object", **UNTYPED} for key in sorted(AFFINITY_KEYS)},
    "additionalProperties": False,
}
