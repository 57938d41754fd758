"""Pod Security Standards "restricted" profile, as a pure function over a Pod spec.

The admission controller is not available on the local 1.20 cluster, and chart
templates should fail in unit tests, not at install. The rules follow
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline +
restricted, latest); each violation is a readable string naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("Kind/name", pod spec) for every object that runs pods."""
    for obj in objects:
        path = POD_TEMPLATE_PATHS.get(obj.get("kind", ""))
        if path is None:
            continue
        node: Any = obj
        for key in path:
            node = (node or {}).get(key)
        yield f"{obj['kind']}/{obj.get('metadata', {}).get('name')}", node or {}


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def violations(spec: dict[str, Any]) -> list[str]:
    """Every way ``spec`` (a PodSpec) breaks the restricted profile; empty when it passes."""
    found: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(f"{flag} must not be true")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume.get('name')!r} has a disallowed type {sorted(kinds)}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl.get('name')!r} is not in the safe set")
    found += _check_context("pod", pod_sc)
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        found.append(f"pod seccompProfile.type {pod_seccomp!r} is not RuntimeDefault/Localhost")
    for container in _containers(spec):
        where = f"container {container.get('name')!r}"
        sc = container.get("securityContext") or {}
        found += _check_context(where, sc)
        if sc.get("privileged"):
            found.append(f"{where}: privileged must not be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot")):
            found.append(f"{where}: runAsNonRoot must be true (pod or container)")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
            found.append(f"{where}: seccompProfile.type {seccomp!r} is not allowed")
        if (seccomp or pod_seccomp) not in ALLOWED_SECCOMP:
            found.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{where}: capabilities.drop must include ALL")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            found.append(f"{where}: capabilities.add {sorted(extra)} not allowed")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{where}: hostPort {port['hostPort']} not allowed")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{where}: procMount must be Default")
    return found


def _check_context(where: str, sc: dict[str, Any]) -> list[str]:
    found = []
    if sc.get("runAsUser") == 0:
        found.append(f"{where}: runAsUser must not be 0")
    selinux = sc.get("seLinuxOptions") or {}
    if selinux.get("user") or selinux.get("role"):
        found.append(f"{where}: seLinuxOptions user/role must not be set")
    if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES:
        found.append(f"{where}: seLinuxOptions.type {selinux['type']!r} not allowed")
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor == "Unconfined":
        found.append(f"{where}: appArmorProfile must not be Unconfined")
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        found.append(f"{where}: windowsOptions.hostProcess must not be true")
    return found
