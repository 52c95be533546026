"""Backend choice. ``auto`` picks the best backend this machine has and logs why (PyTorch for now:
the engines work adds ONNX Runtime and TensorRT ahead of it)."""

from __future__ import annotations

import logging

from streamhand.checkpoint import Checkpoint, load_checkpoint
from streamhand.infer.base import Backend
from streamhand.infer.torch_backend import TorchBackend

log = logging.getLogger(__name__)
BACKENDS = ("auto", "torch")


def make_backend(name: str = "auto", checkpoint: str | None = None, n_samples: int = 16, threads: int = 1) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    ckpt: Checkpoint = load_checkpoint(checkpoint)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    backend = TorchBackend(ckpt, device=device, n_samples=n_samples, threads=threads)
    log.info("backend: %s on %s (%s)", backend.describe(), device,
             "auto: PyTorch is the only backend built so far" if name == "auto" else "requested")  # fmt: skip
    return backend
