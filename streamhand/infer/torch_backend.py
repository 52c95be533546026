"""PyTorch backend: the checkpoint's :class:`HandPoseModel`, fixed posterior noise for repeatable spreads.

On CUDA each (modality set, batch size) seen is captured once as a CUDA graph and replayed after that: the
model is small, so launching its kernels one by one costs more than running them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from streamhand.checkpoint import Checkpoint, load_checkpoint
from streamhand.gpu.cuda_graphs import GraphReplay
from streamhand.infer.base import Backend, BackendOutput
from streamhand.infer.noise import DEFAULT_SEED, posterior_noise
from streamhand.models.config import input_shape

log = logging.getLogger(__name__)


def _span(r: range) -> str:
    return f"{r.start}-{r.stop - 1}" if len(r) > 1 else str(r.start)


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        checkpoint: str | Path | Checkpoint | None = None,
        device: str = "cpu",
        n_samples: int = 16,
        max_batch: int = 8,
        seed: int = DEFAULT_SEED,
        threads: int | None = None,
        cuda_graphs: bool = True,
    ):
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.checkpoint = ckpt
        self.device = torch.device(device)
        self.model = ckpt.model.to(self.device).eval()
        self.modalities = tuple(self.model.modalities)
        self.image_size, self.cloud_points = self.model.cfg.image_size, self.model.cfg.cloud_points
        self.crop_view = self.model.cfg.crop_view
        self.model_id = ckpt.model_id
        self.std_calibration = ckpt.meta.get("std_calibration")
        self.error_model = ckpt.meta.get("error_model")
        if threads is not None:
            torch.set_num_threads(threads)
        self.n_samples, self.seed = n_samples, seed
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self._graphs = GraphReplay(self.device)
        self._noise = posterior_noise(n_samples, max_batch, self.model.cfg.z_dim, seed).to(self.device)

    def _noise_for(self, b: int) -> torch.Tensor:
        if b > self._noise.shape[1]:  # the table is prefix-stable: a longer one starts with the same draws
            self._noise = posterior_noise(self.n_samples, b, self.model.cfg.z_dim, self.seed).to(self.device)
        return self._noise[:, :b]

    @torch.inference_mode()
    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        if self.cuda_graphs:
            return self._graphed(inputs)
        t = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(self.device) for k, v in inputs.items()}
        b = next(iter(t.values())).shape[0]
        out = self.model(t, noise=self._noise_for(b))
        dis = None if out.disagreement is None else out.disagreement.cpu().numpy()
        return BackendOutput(out.joints.cpu().numpy(), out.joint_std.cpu().numpy(), dis)

    def warm_up(self, modalities: tuple[str, ...], batch_sizes: range) -> None:
        """On CUDA, capture the graph of each batch size now: a first capture costs the GPU's first use of those
        kernels too, which mid-run would stall the frame it falls on."""
        if not self.cuda_graphs:
            return
        mods = tuple(m for m in modalities if m in self.modalities and m != "3d")
        if not mods:
            return
        t0 = time.perf_counter()
        for b in batch_sizes:
            self.infer({m: np.zeros(input_shape(self.model.cfg, m, b), np.float32) for m in mods})
        log.info("%s: CUDA graphs for batch %s captured in %.1f s", self.name, _span(batch_sizes),
                 time.perf_counter() - t0)  # fmt: skip

    def describe(self) -> str:
        where = f"{self.device.type}{', CUDA graphs' if self.cuda_graphs else ''}"
        return f"{self.name}[{where}] ({self.model_id}, modalities {','.join(self.modalities)})"

    def _graphed(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        """The model through its CUDA graph for this modality set and batch size: one host-to-device and one
        device-to-host transfer (:meth:`GraphReplay.host`)."""
        mods = tuple(sorted(inputs))
        b = inputs[mods[0]].shape[0]

        def make_forward():
            noise = self._noise_for(b).clone()  # the graph keeps reading the tensor it was captured with

            def forward(*xs):
                out = self.model(dict(zip(mods, xs)), noise=noise)
                return out.joints, out.joint_std, out.disagreement

            return forward

        arrays = [np.ascontiguousarray(inputs[m], dtype=np.float32) for m in mods]
        joints, std, dis = self._graphs.host((mods, b), make_forward, *arrays)
        return BackendOutput(joints, std, dis)
