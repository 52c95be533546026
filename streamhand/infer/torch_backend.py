"""PyTorch backend: the checkpoint's :class:`HandPoseModel`, fixed posterior noise for repeatable spreads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from streamhand.checkpoint import Checkpoint, load_checkpoint
from streamhand.infer.base import Backend, BackendOutput


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        checkpoint: str | Path | Checkpoint | None = None,
        device: str = "cpu",
        n_samples: int = 16,
        max_batch: int = 8,
        seed: int = 0,
        threads: int | None = None,
    ):
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.checkpoint = ckpt
        self.device = torch.device(device)
        self.model = ckpt.model.to(self.device).eval()
        self.modalities = tuple(self.model.modalities)
        self.image_size = self.model.cfg.image_size
        self.model_id = ckpt.model_id
        self.std_calibration = ckpt.meta.get("std_calibration")
        if threads is not None:
            torch.set_num_threads(threads)
        g = torch.Generator().manual_seed(seed)
        self._noise = torch.randn(n_samples, max_batch, self.model.cfg.z_dim, generator=g).to(self.device)

    def _noise_for(self, b: int) -> torch.Tensor:
        if b > self._noise.shape[1]:  # grow deterministically
            k, _, z = self._noise.shape
            g = torch.Generator().manual_seed(b)
            extra = torch.randn(k, b - self._noise.shape[1], z, generator=g).to(self.device)
            self._noise = torch.cat([self._noise, extra], 1)
        return self._noise[:, :b]

    @torch.inference_mode()
    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        t = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(self.device) for k, v in inputs.items()}
        b = next(iter(t.values())).shape[0]
        out = self.model(t, noise=self._noise_for(b))
        return BackendOutput(out.joints.cpu().numpy(), out.joint_std.cpu().numpy(), out.disagreement.cpu().numpy())
