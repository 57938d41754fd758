"""`thunderbolt serve`: the inference server a ModelDeployment's pods run.

Flags default to ``THUNDERBOLT_MODEL_*`` environment variables so the pod spec can set
them from the deployment; credentials come only from the environment or mounted files
and are never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
from typing import Any

from thunderbolt.api import serving as sv

_CHECKSUM = re.compile(r"^sha256:[0-9a-fA-F]{64}$")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _memory(value: str | int) -> int:
    from thunderbolt.serving.memory import memory_quantity

    if isinstance(value, int):
        return value
    try:
        return memory_quantity(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _checksum(value: str) -> str:
    if not _CHECKSUM.match(value):
        raise argparse.ArgumentTypeError("must look like sha256:<64 hex digits>")
    return value


def register(subparsers: Any) -> None:
    env = os.environ.get
    parser = subparsers.add_parser(
        sv.SUBCOMMAND,
        help="serve an ONNX model over the Open Inference Protocol (V2)",
        description="Serve one ONNX model with onnxruntime over HTTP (Open Inference Protocol V2).",
    )
    parser.add_argument(
        "--model-uri",
        default=env(sv.ENV_MODEL_URI),
        help="file://, s3:// or models:/name/version | models:/name@alias "
        "(default: $THUNDERBOLT_MODEL_URI)",
    )
    parser.add_argument(
        "--checksum",
        type=_checksum,
        default=env(sv.ENV_MODEL_CHECKSUM) or None,
        help="expected sha256:HEX of the model file (default: $THUNDERBOLT_MODEL_CHECKSUM)",
    )
    parser.add_argument(
        "--model-name",
        default=env(sv.ENV_MODEL_NAME),
        help="name in /v2/models/{name} (default: $THUNDERBOLT_MODEL_NAME)",
    )
    parser.add_argument(
        "--model-version",
        default=env(sv.ENV_MODEL_VERSION, "1"),
        help="version reported and accepted in /versions/{v}/ paths (default: 1)",
    )
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument(sv.FLAG_PORT, type=int, default=int(env(sv.ENV_PORT, "8080")))
    parser.add_argument(
        sv.FLAG_GRPC_PORT,
        type=int,
        default=int(env(sv.ENV_GRPC_PORT, "0")),
        help="also serve V2 over gRPC (inference.GRPCInferenceService) on this port (0: off)",
    )
    parser.add_argument(sv.FLAG_MAX_BATCH_SIZE, type=_positive_int, default=32)
    parser.add_argument(sv.FLAG_MAX_DELAY_MS, type=float, default=2.0)
    parser.add_argument(
        sv.FLAG_NO_BATCHING, action="store_true", help="one onnxruntime call per request"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=None,
        help="larger bodies get 413 (default: the memory limit / 32, at most 16 MiB)",
    )
    parser.add_argument(
        "--memory-limit",
        type=_memory,
        default=env("THUNDERBOLT_SERVING_MEMORY_LIMIT") or None,
        help="memory the requests' budget is derived from, e.g. 512Mi; 0: no budget "
        "(default: $THUNDERBOLT_SERVING_MEMORY_LIMIT, else the container's cgroup limit)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds a client has to send a request's headers, from connecting or from "
        "its first byte; then the connection is closed",
    )
    parser.add_argument(
        "--body-timeout",
        type=_positive_float,
        default=30.0,
        help="seconds a client has to send a request's whole body; then 408 and closed",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=_positive_float,
        default=75.0,
        help="seconds an idle kept-alive connection stays open",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to finish in-flight requests on SIGTERM",
    )
    parser.add_argument(
        "--fail-linger",
        type=float,
        default=0.0,
        help="seconds to keep answering (not ready, /metrics) after a failed load before exiting 1",
    )
    parser.add_argument(
        sv.FLAG_INTRA_OP_THREADS,
        type=_non_negative_int,
        default=0,
        help="onnxruntime intra-op threads per worker (0: the container's CPUs / workers)",
    )
    parser.add_argument(
        sv.FLAG_INTER_OP_THREADS,
        type=_non_negative_int,
        default=0,
        help="onnxruntime inter-op threads (0: 1; only parallel graphs use them)",
    )
    parser.add_argument(
        sv.FLAG_WORKERS,
        type=_non_negative_int,
        default=0,
        help="server processes sharing the port, one batcher each (0: from the container's CPUs)",
    )
    parser.add_argument(
        "--spinning",
        action="store_true",
        help="let idle onnxruntime threads spin (off: they sleep, saving the pod's CPU quota)",
    )
    parser.add_argument(
        "--s3-endpoint-url", default=None, help="default: $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL"
    )
    parser.add_argument("--log-level", default=env(sv.ENV_LOG_LEVEL, "INFO"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from thunderbolt.cpu_threads import container_cpus, plan_threads
    from thunderbolt.serving.batching import BatchingConfig
    from thunderbolt.serving.server import ServeOptions, serve

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    missing = [
        flag
        for flag, value in (("--model-uri", args.model_uri), ("--model-name", args.model_name))
        if not value
    ]
    if missing:
        logging.getLogger("thunderbolt.serve").error(
            "missing %s (or its THUNDERBOLT_* variable)", ", ".join(missing)
        )
        return 2
    if args.max_delay_ms < 0:
        logging.getLogger("thunderbolt.serve").error("--max-delay-ms must not be negative")
        return 2
    try:
        mirror = sv.MirrorConfig.from_env(os.environ)
    except ValueError as exc:
        logging.getLogger("thunderbolt.serve").error("%s", exc)
        return 2
    cpus = container_cpus()
    plan = plan_threads(cpus, args.intra_op_threads, args.inter_op_threads, args.workers)
    logging.getLogger("thunderbolt.serve").info(
        "%.2g CPUs available: %d worker(s), each %d intra-op, %d inter-op threads, spinning %s",
        cpus,
        plan.workers,
        plan.intra_op,
        plan.inter_op,
        "on" if args.spinning else "off",
    )
    opts = ServeOptions(
        model_uri=args.model_uri,
        model_name=args.model_name,
        checksum=args.checksum,
        model_version=args.model_version,
        host=args.host,
        port=args.port,
        grpc_port=args.grpc_port,
        batching=BatchingConfig(
            enabled=not args.no_batching,
            max_batch_size=args.max_batch_size,
            max_delay_s=args.max_delay_ms / 1000.0,
        ),
        max_body_bytes=args.max_body_bytes,
        memory_limit=args.memory_limit,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        drain_timeout_s=args.drain_timeout,
        fail_linger_s=args.fail_linger,
        intra_op_threads=plan.intra_op,
        inter_op_threads=plan.inter_op,
        spinning=args.spinning,
        s3_endpoint_url=args.s3_endpoint_url,
        mirror=mirror,
    )
    if plan.workers > 1:
        from thunderbolt.serving.workers import run_workers

        return run_workers(opts, plan.workers)
    code = asyncio.run(serve(opts))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a late SIGTERM must not turn exit 0 into -15
    return code
