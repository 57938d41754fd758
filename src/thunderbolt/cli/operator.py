"""`thunderbolt operator`: run the Kubernetes operator."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the operator (Experiments, Trials, ModelDeployments)",
        description="Run the operator. Flags override the THUNDERBOLT_* environment variables; "
        "a port of 0 picks a free one and logs it.",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable); default: THUNDERBOLT_NAMESPACES or all",
    )
    parser.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        dest="exclude_namespaces",
        metavar="GLOB",
        help="never act in namespaces matching this glob (repeatable, e.g. 'kube-*');"
        " default: THUNDERBOLT_EXCLUDE_NAMESPACES",
    )
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (8080)")
    parser.add_argument("--report-port", type=int, help="live-report endpoint port (8081)")
    parser.add_argument("--health-port", type=int, help="liveness /healthz port (8082)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster or KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "--report-url", help="how pods reach the report endpoint (THUNDERBOLT_REPORT_URL)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace, env: dict[str, str] | None = None) -> Any:
    """Environment first, then the flags that were given."""
    from thunderbolt.settings import load_settings

    overrides = {
        "namespaces": () if args.all_namespaces else args.namespaces,
        "exclude_namespaces": args.exclude_namespaces,
        "metrics_port": args.metrics_port,
        "report_port": args.report_port,
        "health_port": args.health_port,
        "kubeconfig": args.kubeconfig,
        "kube_context": args.context,
        "report_url": args.report_url,
    }
    return load_settings(overrides, env=env)


def run(args: argparse.Namespace) -> int:
    import logging

    from thunderbolt.main import run as run_operator

    settings = settings_from_args(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run_operator(settings)
    return 0
