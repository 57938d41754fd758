"""``thunderbolt train``: one training run, as the Trial's Job runs it.

torch is imported only inside the handler so other subcommands stay light.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from thunderbolt.api.trainer_config import CONFIG_PATH, OUTPUT_DIR


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one model from a trainer config, export ONNX, write result.json",
        description=(
            "Train the model a TrainerConfig describes, export it to ONNX verified with "
            "onnxruntime, upload it, and write DIR/result.json. Exit code 0 on success "
            "or when pruned; otherwise non-zero with a one-line reason."
        ),
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("THUNDERBOLT_CONFIG", CONFIG_PATH),
        help="TrainerConfig JSON (default: $THUNDERBOLT_CONFIG or %(default)s)",
    )
    parser.add_argument("--output", default=OUTPUT_DIR, help="output directory (%(default)s)")
    parser.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="processes for DistributedDataParallel under torchrun "
        "(default: the number of visible GPUs when more than one, else 1)",
    )
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from thunderbolt.trainer import distributed, run

    nproc = args.nproc
    if nproc is None:
        import torch

        nproc = torch.cuda.device_count() if torch.cuda.device_count() > 1 else 1
    if nproc > 1 and not distributed.under_torchrun():
        argv = distributed.torchrun_argv(nproc, ["--config", args.config, "--output", args.output])
        os.execv(argv[0], argv)  # replaces this process; torchrun runs the ranks
    return run.main(args.config, args.output)
