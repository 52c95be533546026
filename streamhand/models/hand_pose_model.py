"""HandPoseModel: encoders for any subset of modalities, fused by a product of experts, and decoders.

Inputs (all batched, in the normalised frames of :mod:`streamhand.skeleton`):
``"2d"`` (B, 21, 2), ``"world"`` (B, 21, 3) a detector's own metric 3D (:func:`streamhand.codec.encode_world`),
``"3d"`` (B, 21, 3), ``"rgb"`` (B, 3, S, S) in [-0.5, 0.5], ``"depth"`` (B, 1, S, S), ``"cloud"`` (B, N, 3) points of
the depth crop (:func:`streamhand.codec.encode_cloud`). Decoders also make ``"heatmap"`` (B, 21, H, H) maps of the
2D keypoints in the crop (a training target).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from streamhand.models.config import ModelConfig
from streamhand.models.decoders import FoldingDecoder, HeatmapDecoder, ImageDecoder, KeypointDecoder
from streamhand.models.encoders import (
    CompactEncoder,
    EnsembleEncoder,
    JointEncoder,
    MLPEncoder,
    PointCloudEncoder,
    ResNetEncoder,
)
from streamhand.models.poe import product_of_experts

_DIMS = {"2d": 2, "world": 3, "3d": 3}
JOINT = "rgb+cloud"
_CHANNELS = {"rgb": 3, "depth": 1}


@dataclass
class PoseOutput:
    joints: torch.Tensor  # (B, 21, 3) normalised 3D joints decoded from the fused posterior mean
    joint_std: torch.Tensor  # (B, 21) spread of each joint over posterior samples (normalised units)
    mu: torch.Tensor  # (B, Z) fused posterior mean
    logvar: torch.Tensor  # (B, Z) fused posterior log-variance
    #: (B, 21) root-mean-square distance of each expert's own decoded joints from the fused ones (normalised
    #: units); zeros with one expert. Experts that disagree on a joint flag it as likely wrong.
    disagreement: torch.Tensor | None = None


def posterior_spread(decode, mu: torch.Tensor, logvar: torch.Tensor, joints: torch.Tensor, n_samples: int = 0,
                     noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """(B, J) spread of the 3D decoded from posterior samples (``noise`` (K, B, Z), or ``n_samples`` drawn here)
    over x, y, z; zeros without samples."""
    if noise is None and n_samples > 0:
        noise = torch.randn(n_samples, *mu.shape, device=mu.device, dtype=mu.dtype)
    if noise is None or noise.shape[0] == 0:
        return torch.zeros_like(joints[..., 0])  # shaped like the joints (an exported graph: no shape arithmetic)
    k, b, zd = noise.shape
    z = mu.unsqueeze(0) + noise * torch.exp(0.5 * logvar).unsqueeze(0)
    samples = decode(z.reshape(k * b, zd), "3d").view(k, b, -1, 3)
    return samples.var(dim=0, unbiased=False).sum(-1).clamp_min(0).sqrt()


class HandPoseModel(nn.Module):
    """Cross-modal VAE (Spurr et al.) with product-of-experts fusion (Yang et al.)."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        c = self.cfg
        enc: dict[str, nn.Module] = {}
        for m in c.encoders:
            if m in _DIMS:
                enc[m] = MLPEncoder(c.num_joints * _DIMS[m], c.z_dim, c.hidden, c.hidden_layers)
            elif m == "cloud":
                enc[m] = PointCloudEncoder(c.z_dim)
            elif m == JOINT:
                enc[m] = JointEncoder(self._image_encoder("rgb"), PointCloudEncoder(c.z_dim), c.z_dim)
            else:
                enc[m] = self._image_encoder(m)
        dec: dict[str, nn.Module] = {}
        for t in c.decoders:
            if t in _DIMS:
                dec[t] = KeypointDecoder(c.z_dim, c.num_joints, _DIMS[t], c.hidden, c.hidden_layers)
            elif t == "cloud":
                dec[t] = FoldingDecoder(c.z_dim, c.cloud_points)
            elif t == "heatmap":
                dec[t] = HeatmapDecoder(c.z_dim, c.num_joints, c.heatmap_size)
            else:
                dec[t] = ImageDecoder(c.z_dim, _CHANNELS[t], tuple(c.image_decoder_channels))
        self.encoders = nn.ModuleDict(enc)
        self.decoders = nn.ModuleDict(dec)
        if "3d" not in self.decoders:
            raise ValueError("a HandPoseModel needs a 3d decoder")

    def _image_encoder(self, m: str) -> nn.Module:
        c = self.cfg
        if c.image_ensemble > 1:
            return EnsembleEncoder([self._one_image_encoder(m) for _ in range(c.image_ensemble)])
        return self._one_image_encoder(m)

    def _one_image_encoder(self, m: str) -> nn.Module:
        c = self.cfg
        if c.image_encoder == "compact":
            return CompactEncoder(_CHANNELS[m], c.z_dim, c.image_size)
        if c.image_encoder == "mediapipe":
            from streamhand.models.mediapipe_trunk import MediaPipeTrunkEncoder

            return MediaPipeTrunkEncoder(c.z_dim, c.hidden)
        return ResNetEncoder(_CHANNELS[m], c.z_dim)

    @property
    def modalities(self) -> list[str]:
        """The inputs the model takes (a joint encoder's two count as theirs)."""
        out = [m for m in self.encoders if m != JOINT]
        return out + [m for m in JOINT.split("+") if JOINT in self.encoders and m not in out]

    def encode_each(self, inputs: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each given modality's own Gaussian expert (without the prior). Given both the RGB crop and the point
        cloud, a joint ``rgb+cloud`` encoder gives one expert for the pair instead of the RGB expert."""
        unknown = set(inputs) - set(self.modalities)
        if unknown:
            raise KeyError(f"model has no encoder for {sorted(unknown)}; it has {self.modalities}")
        joint = JOINT in self.encoders and all(m in inputs for m in JOINT.split("+"))
        out = {m: self.encoders[m](x) for m, x in inputs.items() if m in self.encoders and not (joint and m == "rgb")}
        if joint:
            out[JOINT] = self.encoders[JOINT](inputs["rgb"], inputs["cloud"])
        return out

    def encode(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused posterior over the given modalities (the N(0, I) prior included once)."""
        experts = self.encode_each(inputs)
        if not experts:
            raise ValueError("encode needs at least one modality")
        return product_of_experts([e[0] for e in experts.values()], [e[1] for e in experts.values()])

    def decode(self, z: torch.Tensor, target: str = "3d") -> torch.Tensor:
        return self.decoders[target](z)

    def forward(
        self, inputs: dict[str, torch.Tensor], n_samples: int = 0, noise: torch.Tensor | None = None
    ) -> PoseOutput:
        """Mean 3D joints and per-joint standard deviation from ``n_samples`` posterior samples.

        ``noise`` (K, B, Z) can be given for deterministic sampling; otherwise it is drawn here.
        """
        experts = self.encode_each(inputs)
        if not experts:
            raise ValueError("forward needs at least one modality")
        mus, logvars = [e[0] for e in experts.values()], [e[1] for e in experts.values()]
        mu, logvar = product_of_experts(mus, logvars)
        if len(experts) > 1:  # the fused mean and each expert with the prior at its own: one decoder pass (the
            # decoder's weights read once, not twice: at batch 1 reading them is most of its time)
            own = [product_of_experts([m], [lv])[0] for m, lv in zip(mus, logvars)]
            n_joints = self.decoders["3d"].num_joints  # a constant: an exported graph reshapes without shape arithmetic
            every = self.decode(torch.cat([mu, *own]), "3d").view(len(mus) + 1, -1, n_joints, 3)
            joints, each = every[0], every[1:]
            disagreement = ((each - joints.unsqueeze(0)) ** 2).sum(-1).mean(0).sqrt()
        else:
            joints = self.decode(mu, "3d")
            disagreement = torch.zeros_like(joints[..., 0])  # shaped like the joints, without shape arithmetic
        joint_std = posterior_spread(self.decode, mu, logvar, joints, n_samples, noise)
        return PoseOutput(joints, joint_std, mu, logvar, disagreement)
