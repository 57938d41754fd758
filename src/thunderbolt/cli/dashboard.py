"""`thunderbolt dashboard`: a local web dashboard of searches, trials and deployments.

It uses your kubeconfig and your permissions (like `kubectl argo rollouts dashboard`),
binds 127.0.0.1 unless told otherwise and is read-only unless started with
--allow-actions (raise maxTrials, roll a ModelDeployment back), which then act with
your own Kubernetes permissions. See docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio

from thunderbolt.cli.kube import CliError, add_kube_args, api_errors, connect, friendly


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="web dashboard (experiments, trials, deployments)", description=__doc__
    )
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument(
        "--allow-actions",
        action="store_true",
        help="enable write actions (raise maxTrials, rollback) with your own permissions",
    )
    parser.add_argument(
        "--watch-namespaces",
        default="",
        metavar="NS[,NS]",
        help="watch these namespaces (the Helm chart sets it); default: -n, else all you may list",
    )
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    from thunderbolt.dashboard.run import serve_forever, watch_scope

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: use 1-65535")
    explicit = [n for n in args.watch_namespaces.split(",") if n] or (
        [args.namespace] if args.namespace else []
    )
    kube = connect(args)
    try:
        scope = watch_scope(kube.api_client, explicit, kube.namespace)
    except api_errors() as exc:
        raise CliError(f"cannot list experiments: {getattr(exc, 'reason', None) or exc}") from exc
    try:
        asyncio.run(
            serve_forever(kube.api_client, scope, args.address, args.port, args.allow_actions)
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.address}:{args.port}: {exc.strerror or exc}"
        ) from exc
    except KeyboardInterrupt:
        pass
    return 0
