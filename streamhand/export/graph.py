"""The inference graph that every backend runs: a fixed modality set's encoders, the product of experts,
the 3D decoder at the fused mean, the per-joint spread over posterior samples and the experts' disagreement.

The posterior samples use fixed standard-normal noise stored in the graph (``K x max_batch x Z``; row b of
each sample belongs to hand b of a batch), the same noise as :class:`streamhand.infer.TorchBackend`. So the
spread is computed inside the graph, repeatably, in the same call as the pose: one engine call per frame, and
the K samples decode as one batched matrix product on a GPU. A graph takes at most ``max_batch`` hands a call;
backends split larger batches.
"""

from __future__ import annotations

import torch
from torch import nn

from streamhand.modalities import INPUTS as MODALITY_ORDER
from streamhand.modalities import has_expert as _has_expert
from streamhand.modalities import ordered
from streamhand.model_files import INPUT_NAMES, OUTPUT_NAMES
from streamhand.models import HandPoseModel

__all__ = ["INPUT_NAMES", "MODALITY_ORDER", "OUTPUT_NAMES", "InferenceGraph", "has_expert", "ordered"]


def has_expert(model: HandPoseModel, modalities: tuple[str, ...]) -> bool:
    """Whether the model gives at least one expert for these inputs (a joint encoder's second input alone
    gives none)."""
    return _has_expert(list(model.encoders), modalities)


class InferenceGraph(nn.Module):
    """``forward(*inputs)`` in :data:`MODALITY_ORDER` -> (joints (B,21,3), joint_std (B,21), disagreement (B,21))."""

    def __init__(self, model: HandPoseModel, modalities: tuple[str, ...], noise: torch.Tensor, half: bool = False):
        super().__init__()
        self.modalities = ordered(modalities)
        missing = [m for m in self.modalities if m not in model.modalities]
        if missing or not self.modalities or not has_expert(model, self.modalities):
            raise ValueError(f"model has no encoder for {missing or 'an empty set'}; it has {model.modalities}")
        self.model = model.eval()
        self.half = half
        self.register_buffer("noise", noise.clone())  # (K, max_batch, Z)
        if half:
            self.model.half()
            self.noise = self.noise.half()

    @property
    def max_batch(self) -> int:
        return int(self.noise.shape[1])

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs = {m: (x.half() if self.half else x) for m, x in zip(self.modalities, xs)}
        b = xs[0].shape[0]
        out = self.model(inputs, noise=self.noise[:, :b] if self.noise.shape[0] else None)
        res = (out.joints, out.joint_std, out.disagreement)
        return tuple(r.float() for r in res) if self.half else res  # type: ignore[return-value]
