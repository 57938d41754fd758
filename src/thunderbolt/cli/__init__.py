"""The `thunderbolt` command.

Each subcommand lives in its own module with a ``register(subparsers)`` function.
Modules are imported only when listed here and must keep heavy imports (torch,
onnxruntime, kopf) inside their handlers, so `thunderbolt serve` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module name under thunderbolt.cli -> registers one or more subcommands
COMMAND_MODULES: list[str] = [
    "crds",
    "train",
    "operator",
    "serve",
    "get",
    "describe",
    "leaderboard",
    "compare",
    "logs",
    "rollback",
    "dashboard",
    "validate",
    "approve",
    "history",
    "check",
    "gate",
    "artifacts",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thunderbolt",
        description="Hyperparameter search to served ONNX models on Kubernetes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"thunderbolt.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
