"""The fixed posterior noise behind repeatable per-joint spreads, shared by every backend and export.

Hand b of a batch always gets the same K standard-normal draws, whatever the batch size: the draws are made
hand-major from one seeded generator, so a longer table starts with the shorter one.
"""

from __future__ import annotations

import torch

DEFAULT_SEED = 0


def posterior_noise(n_samples: int, max_batch: int, z_dim: int, seed: int = DEFAULT_SEED) -> torch.Tensor:
    """(n_samples, max_batch, z_dim) float32 on the CPU; prefix-stable in ``max_batch``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(max_batch, n_samples, z_dim, generator=g).transpose(0, 1).contiguous()
