"""Multi-GPU training in one pod: DistributedDataParallel under torchrun.

``thunderbolt train`` re-executes itself under torchrun (one process per GPU) when it
sees more than one GPU, or when ``--nproc N`` asks for it; torchrun's env vars (RANK,
WORLD_SIZE, LOCAL_RANK) tell each process its place. Rank 0 alone tracks, reports,
checkpoints, exports and uploads. On CPU, ``--nproc`` uses the gloo backend, which is
how the path is exercised without GPUs.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import torch


@dataclasses.dataclass(frozen=True)
class Placement:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup() -> Placement:
    """Join the process group when launched by torchrun; pick this process's device."""
    cuda = torch.cuda.is_available()
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return Placement(0, 1, torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if cuda:
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return Placement(torch.distributed.get_rank(), torch.distributed.get_world_size(), device)


def teardown(*, finished: bool) -> None:
    """Leave the process group; ranks that finished meet at a barrier first.

    Rank 0 exports and uploads after the last collective while the others are done;
    a rank that destroyed its gloo pairs then, while rank 0 still held them open, was
    seen to abort under load (SIGABRT, "terminate called without an active
    exception"). A rank that failed skips the barrier (its peers may sit in another
    collective) and closes its connections, so a peer waiting at the barrier fails
    fast instead of hanging.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if finished:
        try:
            torch.distributed.barrier()
        except RuntimeError:  # a peer failed or left: nothing to wait for
            pass
    torch.distributed.destroy_process_group()


def torchrun_argv(nproc: int, train_args: list[str]) -> list[str]:
    """The command that runs this same training under torchrun with ``nproc`` processes."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "thunderbolt.trainer",
        *train_args,
    ]
