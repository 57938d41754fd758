"""The contract between the deploy controller and the inference server it starts.

The controller writes a pod spec (``thunderbolt serve`` flags plus ``THUNDERBOLT_MODEL_*``
variables); ``thunderbolt serve`` reads them back, and later the controller reads the
pods' request metrics for canary analysis. Both sides use these names, so a renamed
flag, variable or metric cannot leave the pods of one side behind.
"""

from __future__ import annotations

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
