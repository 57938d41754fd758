"""`thunderbolt crds`: print the CRDs (pipe to `kubectl apply -f -`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("crds", help="print the CustomResourceDefinitions as YAML")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from thunderbolt.api.crdgen import KINDS, render

    print("---\n".join(render(kind) for kind in KINDS), end="")
    return 0
