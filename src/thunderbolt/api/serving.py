"""The contract between the deploy controller and the inference server it starts.

The controller writes a pod spec (``thunderbolt serve`` flags plus ``THUNDERBOLT_MODEL_*``
variables); ``thunderbolt serve`` reads them back, and later the controller reads the
pods' request metrics for canary analysis. Both sides use these names, so a renamed
flag, variable or metric cannot leave the pods of one side behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

COMMAND = "thunderbolt"
SUBCOMMAND = "serve"

ENV_MODEL_URI = "THUNDERBOLT_MODEL_URI"
ENV_MODEL_NAME = "THUNDERBOLT_MODEL_NAME"
ENV_MODEL_VERSION = "THUNDERBOLT_MODEL_VERSION"
ENV_MODEL_CHECKSUM = "THUNDERBOLT_MODEL_CHECKSUM"
ENV_PORT = "THUNDERBOLT_PORT"
ENV_GRPC_PORT = "THUNDERBOLT_GRPC_PORT"
ENV_LOG_LEVEL = "THUNDERBOLT_LOG_LEVEL"

# What the controller's canary analysis reads from each server pod's /metrics.
METRIC_REQUESTS = "thunderbolt_inference_requests_total"
METRIC_DURATION = "thunderbolt_inference_request_duration_seconds"

# Shadow mirroring (``thunderbolt.serving.mirror``): set on a Shadow strategy's pods.
ENV_MIRROR_URL = "THUNDERBOLT_MIRROR_URL"
ENV_MIRROR_PERCENT = "THUNDERBOLT_MIRROR_PERCENT"
ENV_MIRROR_TIMEOUT_MS = "THUNDERBOLT_MIRROR_TIMEOUT_MS"
ENV_MIRROR_MAX_IN_FLIGHT = "THUNDERBOLT_MIRROR_MAX_IN_FLIGHT"
ENV_MIRROR_MAX_BODY = "THUNDERBOLT_MIRROR_MAX_BODY_BYTES"
ENV_MIRROR_TOLERANCE = "THUNDERBOLT_MIRROR_TOLERANCE"
# Marks a mirrored request: its receiver never mirrors it again.
MIRROR_HEADER = "X-Thunderbolt-Mirror"
# What the stable pods count about their mirrored requests, by model and candidate version
# (the version the shadow answered with; "unknown" before any answer).
METRIC_MIRRORS = "thunderbolt_shadow_mirrored_total"  # label result
METRIC_MIRROR_ROWS = "thunderbolt_shadow_rows_total"  # label agree: "true" | "false"
MIRROR_RESULTS = ("answered", "failed", "timeout", "unreachable", "dropped", "skipped")

FLAG_PORT = "--port"
FLAG_MAX_BATCH_SIZE = "--max-batch-size"
FLAG_MAX_DELAY_MS = "--max-delay-ms"
FLAG_NO_BATCHING = "--no-batching"
FLAG_INTRA_OP_THREADS = "--intra-op-threads"
FLAG_INTER_OP_THREADS = "--inter-op-threads"
FLAG_WORKERS = "--workers"
FLAG_GRPC_PORT = "--grpc-port"


@dataclass(frozen=True)
class ServedModel:
    """Which model one server loads: its ``THUNDERBOLT_MODEL_*`` variables."""

    uri: str
    name: str
    version: str
    checksum: str | None = None

    def env(self) -> list[dict[str, str]]:
        env = [
            {"name": ENV_MODEL_URI, "value": self.uri},
            {"name": ENV_MODEL_NAME, "value": self.name},
            {"name": ENV_MODEL_VERSION, "value": self.version},
        ]
        if self.checksum:
            env.append({"name": ENV_MODEL_CHECKSUM, "value": self.checksum})
        return env


@dataclass(frozen=True)
class ServeFlags:
    """How one server listens, batches and uses threads: its ``thunderbolt serve`` arguments."""

    port: int
    batching: bool = True
    max_batch_size: int = 32
    max_delay_ms: float = 2.0
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    workers: int = 1
    grpc_port: int = 0  # 0: no gRPC

    def args(self) -> list[str]:
        args = [SUBCOMMAND, FLAG_PORT, str(self.port)]
        if self.batching:
            args += [
                FLAG_MAX_BATCH_SIZE,
                str(self.max_batch_size),
                FLAG_MAX_DELAY_MS,
                f"{self.max_delay_ms:g}",
            ]
        else:
            args.append(FLAG_NO_BATCHING)
        args += [FLAG_INTRA_OP_THREADS, str(self.intra_op_threads)]
        args += [FLAG_INTER_OP_THREADS, str(self.inter_op_threads)]
        args += [FLAG_WORKERS, str(self.workers)]
        if self.grpc_port:
            args += [FLAG_GRPC_PORT, str(self.grpc_port)]
        return args


@dataclass(frozen=True)
class MirrorConfig:
    """Where and how much a server mirrors (``THUNDERBOLT_MIRROR_*``): written by the
    controller for a Shadow strategy, read by ``thunderbolt serve``."""

    url: str  # http://<shadow Service>:<port>
    percent: int = 100
    timeout_ms: int = 1000
    max_in_flight: int = 16
    max_body_bytes: int = 1024 * 1024
    tolerance: float = 0.01

    def env(self) -> list[dict[str, str]]:
        return [
            {"name": ENV_MIRROR_URL, "value": self.url},
            {"name": ENV_MIRROR_PERCENT, "value": str(self.percent)},
            {"name": ENV_MIRROR_TIMEOUT_MS, "value": str(self.timeout_ms)},
            {"name": ENV_MIRROR_MAX_IN_FLIGHT, "value": str(self.max_in_flight)},
            {"name": ENV_MIRROR_MAX_BODY, "value": str(self.max_body_bytes)},
            {"name": ENV_MIRROR_TOLERANCE, "value": f"{self.tolerance:g}"},
        ]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MirrorConfig | None:
        """None without a URL; raises ValueError on a value that is not a number in range."""
        url = environ.get(ENV_MIRROR_URL, "").strip()
        if not url:
            return None
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{ENV_MIRROR_URL} must be an http(s) URL")
        config = cls(
            url=url.rstrip("/"),
            percent=int(environ.get(ENV_MIRROR_PERCENT, "100")),
            timeout_ms=int(environ.get(ENV_MIRROR_TIMEOUT_MS, "1000")),
            max_in_flight=int(environ.get(ENV_MIRROR_MAX_IN_FLIGHT, "16")),
            max_body_bytes=int(environ.get(ENV_MIRROR_MAX_BODY, str(1024 * 1024))),
            tolerance=float(environ.get(ENV_MIRROR_TOLERANCE, "0.01")),
        )
        if not (0 <= config.percent <= 100 and config.timeout_ms > 0 and config.max_in_flight > 0
                and config.max_body_bytes > 0 and 0 <= config.tolerance <= 1):  # fmt: skip
            raise ValueError(f"{ENV_MIRROR_URL[:-4]}_* settings out of range: {config}")
        return config
