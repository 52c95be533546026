"""The disentangled cross-modal latent space (DCMLS, Gu et al.): two VAEs, one for the input modality x (2D
keypoints or the RGB crop) and one for the target y (3D joints), each latent z = [z_h, z_c] split into a hand-pose
part z_h (a share ``pose_ratio`` of ``z_dim``) and a context part z_c. A discriminator D_h makes the two pose
parts alike; a translator T maps x's context to y's, with a discriminator D_c. Inference: z_h from x's encoder,
context through T, then y's decoder.

The model speaks :class:`~streamhand.models.HandPoseModel`'s interface (``forward`` to a
:class:`~streamhand.models.PoseOutput`, ``modalities``, ``encoders``, ``decoders``, ``encode_each``, ``decode``),
so checkpoints, ONNX export, every backend and ``streamhand run --model`` take it unchanged. The ablation
switches are ``disentangle`` (off: z_h is the whole latent, no T), ``pose_discriminator`` (D_h) and
``context_discriminator`` (D_c). Training: ``train/dcmls.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from streamhand.models.config import ModelConfig
from streamhand.models.decoders import KeypointDecoder
from streamhand.models.encoders import CompactEncoder, MLPEncoder, ResNetEncoder, mlp

_DIMS = {"2d": 2, "world": 3, "3d": 3}


class Translator(nn.Module):
    """T: x's context z_c^x -> a Gaussian over y's context (mean, log-variance): 5 fully connected layers."""

    def __init__(self, zc: int, hidden: int):
        super().__init__()
        self.net = mlp(zc, hidden, 4, 2 * zc)

    def forward(self, zc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(zc).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


def discriminator(dim: int, hidden: int) -> nn.Sequential:
    """4 fully connected layers to one logit (the sigmoid is in the loss: BCE with logits)."""
    return mlp(dim, hidden, 3, 1)


class DisentangledModel(nn.Module):
    """DCMLS with an ``x`` encoder/decoder (the first of ``cfg.encoders`` that is not ``3d``) and the 3D VAE."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = c = cfg
        xs = [m for m in c.encoders if m != "3d"]
        if len(xs) != 1 or "3d" not in c.encoders or c.decoders != ["3d"]:
            raise ValueError("a dcmls model has encoders [x, 3d] (x: 2d, world or rgb) and decoders [3d]")
        self.x = xs[0]
        self.zh = max(1, min(c.z_dim - 1, round(c.pose_ratio * c.z_dim))) if c.disentangle else c.z_dim
        self.zc = c.z_dim - self.zh
        enc: dict[str, nn.Module] = {"3d": MLPEncoder(c.num_joints * 3, c.z_dim, c.hidden, c.hidden_layers)}
        if self.x in _DIMS:
            enc[self.x] = MLPEncoder(c.num_joints * _DIMS[self.x], c.z_dim, c.hidden, c.hidden_layers)
            x_dec: nn.Module = KeypointDecoder(c.z_dim, c.num_joints, _DIMS[self.x], c.hidden, c.hidden_layers)
        elif self.x == "rgb":
            enc["rgb"] = (CompactEncoder(3, c.z_dim, c.image_size) if c.image_encoder == "compact"
                          else ResNetEncoder(3, c.z_dim))  # fmt: skip
            x_dec = None  # the image's self-reconstruction is left out for RGB (no image decoder)
        else:
            raise ValueError(f"dcmls takes 2d, world or rgb as its input, not {self.x}")
        self.encoders = nn.ModuleDict({self.x: enc[self.x], "3d": enc["3d"]})
        dec = {"3d": KeypointDecoder(c.z_dim, c.num_joints, 3, c.hidden, c.hidden_layers)}
        self.decoders = nn.ModuleDict(dec)
        self.x_decoder = x_dec  # self-reconstruction of x (Eq. 3), training only
        self.translator = Translator(self.zc, c.hidden) if self.zc else None
        self.pose_discriminator = discriminator(self.zh, c.hidden)
        self.context_discriminator = discriminator(self.zc, c.hidden) if self.zc else None

    @property
    def modalities(self) -> list[str]:
        return [self.x, "3d"]

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[..., : self.zh], z[..., self.zh :]

    def translate(self, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x's posterior -> the posterior of y's latent used for the 3D: x's pose part, T's context."""
        if self.translator is None:
            return mu, logvar
        mh, mc = self.split(mu)
        lh, _ = self.split(logvar)
        tm, tl = self.translator(mc)
        return torch.cat([mh, tm], -1), torch.cat([lh, tl], -1)

    def encode_each(self, inputs: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The posterior of y's latent from each given input: x through T, 3D through its own encoder."""
        unknown = set(inputs) - set(self.modalities)
        if unknown:
            raise KeyError(f"model has no encoder for {sorted(unknown)}; it has {self.modalities}")
        out = {}
        if self.x in inputs:
            out[self.x] = self.translate(*self.encoders[self.x](inputs[self.x]))
        if "3d" in inputs:
            out["3d"] = self.encoders["3d"](inputs["3d"])
        return out

    def decode(self, z: torch.Tensor, target: str = "3d") -> torch.Tensor:
        return self.decoders[target](z)

    def forward(self, inputs: dict[str, torch.Tensor], n_samples: int = 0, noise: torch.Tensor | None = None):
        """3D joints from x (or from 3D, when x is not given) and their spread over ``noise`` (K, B, Z) samples."""
        from streamhand.models.hand_pose_model import PoseOutput, posterior_spread

        posts = self.encode_each(inputs)
        if not posts:
            raise ValueError("forward needs at least one modality")
        mu, logvar = posts.get(self.x, posts.get("3d"))
        joints = self.decode(mu)
        joint_std = posterior_spread(self.decode, mu, logvar, joints, n_samples, noise)
        zeros = torch.zeros(joints.shape[:2], device=mu.device, dtype=mu.dtype)
        return PoseOutput(joints, joint_std, mu, logvar, zeros)
