"""Decoders from the latent z: MLP to keypoints (3D or 2D), the transposed-convolution image decoder of the
supplementary Table 2 (Linear 4096 + BN + ReLU, reshape 256x4x4, ConvT 4x4 stride 2), and Yang et al.'s
heatmap decoder (DC-GAN's generator) and point-cloud decoder (FoldingNet's two folds of a 2D grid)."""

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


class HeatmapDecoder(nn.Module):
    """z (B, Z) -> one heatmap per joint (B, J, S, S), S = 4 * 2^n: DC-GAN's generator (a projection to 4x4,
    then transposed convolutions with batch norm, halving the channels as the maps double)."""

    def __init__(self, z_dim: int, num_joints: int = 21, size: int = 32, channels: int = 256):
        super().__init__()
        ups = (size // 4).bit_length() - 1
        if size != 4 << ups or ups < 1:
            raise ValueError(f"heatmap side must be a power of two >= 8, got {size}")
        self.channels = channels
        self.fc = nn.Sequential(nn.Linear(z_dim, channels * 16), nn.BatchNorm1d(channels * 16), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        c = channels
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
            c //= 2
        layers.append(nn.ConvTranspose2d(c, num_joints, 4, 2, 1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, self.channels, 4, 4))


class FoldingDecoder(nn.Module):
    """z (B, Z) -> a point cloud (B, N, 3), N = grid side squared: FoldingNet's decoder, which folds a fixed 2D
    grid into 3D with an MLP on (z, grid point) and folds the result again with a second one."""

    def __init__(self, z_dim: int, points: int = 256, hidden: int = 256):
        super().__init__()
        side = int(round(points**0.5))
        if side * side != points:
            raise ValueError(f"a folding decoder makes a square grid of points, got {points}")
        u = torch.linspace(-1.0, 1.0, side)
        self.register_buffer("grid", torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2))
        self.fold1 = mlp(z_dim + 2, hidden, 2, 3)
        self.fold2 = mlp(z_dim + 3, hidden, 2, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = self.grid.shape[0]
        zz = z.unsqueeze(1).expand(-1, n, -1)
        p = self.fold1(torch.cat([zz, self.grid.unsqueeze(0).expand(len(z), -1, -1)], -1))
        return self.fold2(torch.cat([zz, p], -1))
