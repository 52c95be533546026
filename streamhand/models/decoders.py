"""Decoders from the latent z: MLP to keypoints (3D or 2D) and the transposed-convolution image decoder
of the supplementary Table 2 (Linear 4096 + BN + ReLU, reshape 256x4x4, ConvT 4x4 stride 2)."""

from __future__ import annotations

import torch
from torch import nn

from streamhand.models.encoders import mlp


class KeypointDecoder(nn.Module):
    """z (B, Z) -> keypoints (B, J, D)."""

    def __init__(self, z_dim: int, num_joints: int, dims: int, hidden: int = 512, layers: int = 2):
        super().__init__()
        self.num_joints, self.dims = num_joints, dims
        self.net = mlp(z_dim, hidden, layers, num_joints * dims)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.num_joints, self.dims)


class ImageDecoder(nn.Module):
    """z (B, Z) -> image (B, C, 4 * 2^n, 4 * 2^n) for n = len(channels) + 1 transposed convolutions."""

    def __init__(self, z_dim: int, out_channels: int = 3, channels: tuple[int, ...] = (128, 64, 32, 16, 8)):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(z_dim, 4096), nn.BatchNorm1d(4096), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        c = 256
        for co in channels:
            layers += [nn.ConvTranspose2d(c, co, 4, 2, 1), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]
            c = co
        layers.append(nn.ConvTranspose2d(c, out_channels, 4, 2, 1))
        self.deconv = nn.Sequential(*layers)

    @property
    def output_size(self) -> int:
        return 4 * 2 ** sum(isinstance(m, nn.ConvTranspose2d) for m in self.deconv)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, 256, 4, 4))
