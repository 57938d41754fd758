"""`thunderbolt artifacts delete`: delete Trials' artifacts (inside a cleanup Job).

The operator holds no store credentials: it decides what goes (``operator.retention``)
and runs this command in a short Job with the Trials' own credential Secret. Each
PREFIX is deleted recursively (``file://`` or ``s3://``), except what lies under a
``--keep`` prefix (models a ModelDeployment serves or has served). Deleting a prefix
that is already gone is not an error, so a retried Job finishes what a failed one began.
Prints one JSON line per prefix; exit 1 if any prefix could not be deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "artifacts", help="manage artifacts in the store (used by cleanup Jobs)"
    )
    sub = parser.add_subparsers(dest="artifacts_command", metavar="ACTION", required=True)
    delete = sub.add_parser("delete", help="delete everything under prefixes", description=__doc__)
    delete.add_argument("prefixes", nargs="+", metavar="PREFIX", help="file:///… or s3://bucket/…")
    delete.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PREFIX",
        help="never delete what lies under this prefix (repeatable)",
    )
    delete.add_argument(
        "--s3-endpoint-url",
        default=None,
        help="S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)",
    )
    delete.set_defaults(func=run_delete)


def run_delete(args: argparse.Namespace) -> int:
    from thunderbolt.artifacts import ArtifactError, store_for
    from thunderbolt.serving.source import redact

    endpoint = args.s3_endpoint_url or os.environ.get("THUNDERBOLT_S3_ENDPOINT_URL") or None
    failed = 0
    for prefix in args.prefixes:
        line: dict[str, object] = {"prefix": redact(prefix)}
        try:
            line["deleted"] = store_for(prefix, s3_endpoint_url=endpoint).delete_prefix(
                prefix, keep=args.keep
            )
        except ArtifactError as exc:
            failed += 1
            line["error"] = str(exc)[:1024]
        print(json.dumps(line), flush=True)
    if failed:
        print(f"{failed} of {len(args.prefixes)} prefixes could not be deleted", file=sys.stderr)
    return 1 if failed else 0
