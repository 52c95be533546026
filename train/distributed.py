"""Where a training process runs: the device (``auto`` | ``cpu`` | ``cuda``) and, under ``torchrun``, its rank
in the process group (NCCL on GPUs, Gloo on CPUs)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class Placement:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """The process that evaluates, saves and shows progress."""
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA GPU is visible to PyTorch (use device: auto or cpu)")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def place(device: str) -> Placement:
    """This process's device; under torchrun (WORLD_SIZE > 1) also joins the process group."""
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Placement(dev)
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    log.info("process %d of %d on %s", rank, world, dev)
    return Placement(dev, rank, world)


def leave() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
