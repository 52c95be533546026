"""Product of Gaussian experts (Yang et al., ICCV 2019) with the N(0, I) prior counted once."""

from __future__ import annotations

import torch


def product_of_experts(
    mus: list[torch.Tensor], logvars: list[torch.Tensor], include_prior: bool = True, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse diagonal Gaussians: precision T = sum_i 1/var_i (+1 for the prior), mean = sum_i mu_i/var_i / T.

    ``mus`` and ``logvars`` are lists of (B, Z) tensors (possibly empty, then the prior alone).
    Returns the fused (mu, logvar).
    """
    if not mus and not include_prior:
        raise ValueError("product_of_experts needs at least one expert")
    if len(mus) != len(logvars):
        raise ValueError("mus and logvars differ in length")
    precision: torch.Tensor | None = None
    weighted: torch.Tensor | None = None
    for mu, logvar in zip(mus, logvars):  # the first expert starts the sums (no zeros to add it to)
        p = torch.exp(-logvar) + eps
        precision = p if precision is None else precision + p
        weighted = mu * p if weighted is None else weighted + mu * p
    if include_prior:
        if precision is None:
            raise ValueError("the prior alone has no batch shape; pass at least one expert")
        precision = precision + 1.0  # N(0, I): precision 1, mean 0
    var = 1.0 / precision
    return weighted * var, torch.log(var)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent, per sample (B,)."""
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=-1)


def kl_gaussians(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mu1, exp(logvar1)) || N(mu2, exp(logvar2))) of diagonal Gaussians, summed over the latent (B,)."""
    return 0.5 * torch.sum(logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2).pow(2)) / logvar2.exp() - 1.0, dim=-1)
