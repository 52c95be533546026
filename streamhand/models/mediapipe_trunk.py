"""An RGB expert on MediaPipe's hand landmark network: its convolutional trunk, trained on real photographs of
hands, frozen, and a small head of our own trained on renders.

MediaPipe's ``hand_landmark_full`` network (bundled with the mediapipe package, Apache-2.0) reads a 224 x 224 crop
of one hand and pools it into 1 152 features, from which single linear layers give its 2D landmarks, its world
landmarks, the handedness and the presence score. :class:`LandmarkTrunk` is that network up to the pooled features
(converted from the installed package by :mod:`streamhand.detect.tflite_convert`; its weights are
buffers, so a checkpoint carries them, and nothing trains them). :class:`MediaPipeTrunkEncoder` puts a fully
connected head on them that gives the expert's Gaussian (mu, logvar) in the model's latent space.

Why: an image expert learned from our renders alone errs three times as much on real hands as on renders, while
features learned from real hands carry over (docs/figures.md, "An RGB expert on MediaPipe's trunk"). Because the
trunk is frozen, training can compute its features once per rendered crop and train the head on them
(:meth:`MediaPipeTrunkEncoder.forward` takes (B, 1152) features as well as (B, 3, 224, 224) crops).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

#: the landmark network's input side and its pooled features' size
TRUNK_INPUT = 224
TRUNK_FEATURES = 1152


def trunk_description(network: dict[str, Any]) -> dict[str, Any]:
    """A converted landmark network (:func:`streamhand.detect.tflite_convert.describe`) cut after the tensor its
    fully connected heads read (the global mean pool), with only the constants those ops use."""
    ops = network["ops"]
    heads = [op for op in ops if op["op"] == "linear"]
    if not heads:
        raise ValueError("not MediaPipe's landmark network: no fully connected output heads")
    feat = heads[0]["x"]
    end = next(i for i, op in enumerate(ops) if op["out"] == feat)
    kept = ops[: end + 1]
    used = {v for op in kept for k, v in op.items() if k not in ("op", "out") and isinstance(v, str)}
    consts = {k: v for k, v in network["consts"].items() if k in used}
    return {**network, "ops": kept, "consts": consts, "outputs": [feat], "output_labels": ["features"]}


@lru_cache(maxsize=1)
def load_trunk_description() -> dict[str, Any]:
    """The trunk's description, converted in memory from the landmark network of the installed mediapipe package
    (about a second, once a process; nothing is written; :class:`~streamhand.detect.tflite_net.TFLiteNet` copies
    what it keeps)."""
    from streamhand.detect.tflite_convert import LANDMARK, describe

    return trunk_description(describe(LANDMARK))


class LandmarkTrunk(nn.Module):
    """MediaPipe's landmark network up to its pooled features: (B, 3, 224, 224) crops in [-0.5, 0.5] (the image
    encoders' input) -> (B, 1152)."""

    def __init__(self, description: dict[str, Any] | None = None):
        super().__init__()
        from streamhand.detect.tflite_net import TFLiteNet

        self.net = TFLiteNet(description if description is not None else load_trunk_description())
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (TRUNK_INPUT, TRUNK_INPUT):
            raise ValueError(f"MediaPipe's trunk reads {TRUNK_INPUT}x{TRUNK_INPUT} crops, got {tuple(x.shape[-2:])}")
        return self.net((x + 0.5).permute(0, 2, 3, 1))[0]


class MediaPipeTrunkEncoder(nn.Module):
    """The RGB expert: :class:`LandmarkTrunk` (frozen) and a head (dropout, two hidden layers) -> (mu, logvar)."""

    def __init__(self, z_dim: int, hidden: int = 1024, description: dict[str, Any] | None = None):
        super().__init__()
        self.trunk = LandmarkTrunk(description)
        self.head = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(TRUNK_FEATURES, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * z_dim),
        )  # fmt: skip

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen trunk's (B, 1152) features of crops (no gradient: nothing of it trains)."""
        with torch.no_grad():
            return self.trunk(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = x if x.dim() == 2 else self.trunk(x)  # (B, 1152): features computed ahead (training)
        mu, logvar = self.head(f).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)
