"""Encoders: each maps one modality to a diagonal Gaussian (mean, log-variance) over the latent z.

``MLPEncoder`` is the supplementary Table 1 stack (Linear(512)+ReLU); ``ResNetEncoder`` is a
ResNet-18 whose ``state_dict`` keys match torchvision's ``resnet18`` so published weights load with
:func:`load_torchvision_resnet18` (torchvision itself is not needed); ``CompactEncoder`` is a small strided
CNN for low-resolution crops (a depth crop of 32-64 pixels), fast enough to train and run on a CPU;
``PointCloudEncoder`` is a residual PointNet (Yang et al.'s point-cloud encoder) on points from the depth crop;
``EnsembleEncoder`` pools several encoders of one input (separately trained runs) into one Gaussian.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class MLPEncoder(nn.Module):
    """Flat keypoints (B, J, D) -> (mu, logvar), each (B, z)."""

    def __init__(self, in_dim: int, z_dim: int, hidden: int = 512, layers: int = 2):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(in_dim, hidden, layers, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x.flatten(1))
        # halves at a known width (an exported graph slices at constants: no shape arithmetic per call)
        return h[:, : self.z_dim], h[:, self.z_dim :].clamp(-12.0, 8.0)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class ResNetEncoder(nn.Module):
    """ResNet-18 on a square crop (B, C, H, W) -> (mu, logvar); ``fc`` outputs 2z instead of 1000."""

    def __init__(self, in_channels: int, z_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        mu, logvar = self.fc(torch.flatten(self.avgpool(x), 1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


class CompactEncoder(nn.Module):
    """Strided 3x3 convolutions (with batch norm) down to a 4x4 map, then two fully connected layers: a square
    crop (B, C, S, S), S a power of two >= 8, -> (mu, logvar). Keeps where things are in the crop (no global
    pooling), which a depth crop's geometry needs."""

    def __init__(self, in_channels: int, z_dim: int, size: int, width: int = 16, hidden: int = 512):
        super().__init__()
        stages = max(1, (size // 4).bit_length() - 1)  # halvings from S down to 4
        if size != 4 << stages:
            raise ValueError(f"compact image encoder needs a power-of-two crop side >= 8, got {size}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True)]  # fmt: skip
        c = width
        for i in range(stages):
            out = min(width * 2 ** (i + 1), 256)
            layers += [nn.Conv2d(c, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c * 16, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(torch.flatten(self.features(x), 1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


class EnsembleEncoder(nn.Module):
    """Several encoders of one input -> one (mu, logvar): the Gaussian with the mean and variance of their equal
    mixture (mu = the members' mean; var = their mean variance plus the spread of their means), so members that
    disagree make a wider, less trusted expert in the product."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two encoders, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        answers = [m(x) for m in self.members]
        mus = torch.stack([a[0] for a in answers])
        var = torch.stack([a[1] for a in answers]).exp().mean(0) + mus.var(0, unbiased=False)
        return mus.mean(0), var.log().clamp(-12.0, 8.0)


class _PointBlock(nn.Module):
    """A residual per-point block that also sees the cloud's max-pooled feature (its context)."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(inplace=True), nn.Linear(width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        ctx = h.max(dim=1, keepdim=True).values.expand_as(h)
        return torch.relu(h + self.net(torch.cat([h, ctx], -1)))


class PointCloudEncoder(nn.Module):
    """A point cloud (B, N, 3) -> (mu, logvar): per-point features through residual blocks that each see the
    cloud's max-pooled context (Yang et al.'s residual PointNet, hidden units halved), max-pooled over the
    points (order-free), then two fully connected layers."""

    def __init__(self, z_dim: int, width: int = 128, blocks: int = 4):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(3, width), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_PointBlock(width) for _ in range(blocks)])
        self.head = nn.Sequential(nn.Linear(width, 256), nn.ReLU(inplace=True), nn.Linear(256, 2 * z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(self.embed(x)).max(dim=1).values
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


class JointEncoder(nn.Module):
    """One encoder of two inputs (Yang et al.'s joint encoder q(z | x, w), strategy S3): each input through its
    own trunk to a 2z feature, both concatenated, then a fully connected layer to (mu, logvar)."""

    def __init__(self, first: nn.Module, second: nn.Module, z_dim: int, hidden: int = 256):
        super().__init__()
        self.first, self.second = first, second
        self.head = mlp(4 * z_dim, hidden, 1, 2 * z_dim)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([torch.cat(self.first(a), -1), torch.cat(self.second(b), -1)], -1)
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


def load_torchvision_resnet18(encoder: ResNetEncoder, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Load a torchvision ``resnet18`` state_dict into ``encoder`` (the classifier head is skipped).

    For a 1-channel (depth) encoder the RGB ``conv1`` filters are summed over colour. Returns the
    keys that were not loaded.
    """
    sd = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    w = sd.get("conv1.weight")
    if w is not None and w.shape[1] != encoder.conv1.in_channels:
        if encoder.conv1.in_channels == 1:
            sd["conv1.weight"] = w.sum(dim=1, keepdim=True)
        else:
            raise ValueError(f"conv1 has {w.shape[1]} input channels, encoder expects {encoder.conv1.in_channels}")
    missing, unexpected = encoder.load_state_dict(sd, strict=False)
    if unexpected:
        raise ValueError(f"unexpected keys in resnet18 weights: {unexpected[:5]}")
    return list(missing)
