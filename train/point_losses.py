"""Distances between point clouds for the point-cloud decoder (Yang et al., Eqs. 8-9): the symmetric Chamfer
distance and the Earth Mover's distance.

The EMD of two clouds of equal size is the mean distance under the best one-to-one matching. ``emd`` finds
that matching exactly (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``, on the CPU, without
gradient) and differentiates the distances of the matched pairs, which is the gradient of the EMD wherever the
best matching is unique. ``emd_sinkhorn`` is the entropy-regularised approximation, all in PyTorch (batched, on
any device), for large batches on a GPU.
"""

from __future__ import annotations

import numpy as np
import torch


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, N, D), (B, M, D) -> (B, N, M) Euclidean distances."""
    return torch.cdist(a, b)


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance per cloud (B,): the mean distance from each point of ``a`` to its nearest in
    ``b`` plus the same from ``b`` to ``a`` (Eq. 8)."""
    d = _pairwise(a, b)
    return d.min(dim=2).values.mean(-1) + d.min(dim=1).values.mean(-1)


def emd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Earth Mover's distance per cloud (B,) for clouds of equal size: the mean distance under the optimal
    one-to-one matching (Eq. 9)."""
    from scipy.optimize import linear_sum_assignment

    if a.shape != b.shape:
        raise ValueError(f"EMD needs clouds of one size, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = _pairwise(a, b)
    cost = d.detach().float().cpu().numpy()
    cols = np.stack([linear_sum_assignment(c)[1] for c in cost])
    match = torch.as_tensor(cols, device=d.device).unsqueeze(-1)
    return d.gather(2, match).squeeze(-1).mean(-1)


def emd_sinkhorn(a: torch.Tensor, b: torch.Tensor, eps: float = 0.01, iters: int = 50) -> torch.Tensor:
    """Entropy-regularised EMD per cloud (B,) (log-domain Sinkhorn, uniform weights); tends to :func:`emd` as
    ``eps`` (in the clouds' units) goes to 0."""
    d = _pairwise(a, b)
    n, m = d.shape[-2:]
    log_mu = torch.full(d.shape[:-1], -float(np.log(n)), device=d.device, dtype=d.dtype)
    log_nu = torch.full((d.shape[0], m), -float(np.log(m)), device=d.device, dtype=d.dtype)
    f = torch.zeros_like(log_mu)
    g = torch.zeros_like(log_nu)
    for _ in range(iters):
        f = eps * (log_mu - torch.logsumexp((g.unsqueeze(1) - d) / eps, dim=2))
        g = eps * (log_nu - torch.logsumexp((f.unsqueeze(2) - d) / eps, dim=1))
    plan = torch.exp((f.unsqueeze(2) + g.unsqueeze(1) - d) / eps)
    return (plan * d).sum((1, 2))
