"""Training objectives: the cross-modal ELBO (Spurr et al.), the product-of-experts ELBO and the KL alignment of
a joint encoder (Yang et al.)."""

from __future__ import annotations

import torch

from streamhand.models import HandPoseModel, product_of_experts
from streamhand.models.hand_pose_model import JOINT
from streamhand.models.poe import kl_gaussians, kl_to_standard_normal
from train.point_losses import chamfer, emd


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def reconstruction(pred: torch.Tensor, target: torch.Tensor, kind: str = "squared") -> torch.Tensor:
    """Per-sample reconstruction error, averaged over the batch: summed over joints (``squared``, ``euclidean``),
    the L2 norm of each joint's heatmap error summed over joints (``heatmap``, Yang et al. Eq. 7), or the
    Chamfer plus Earth Mover's distance of two point clouds (``cloud``, Eqs. 8-9)."""
    if kind == "cloud":
        pred = pred.float()
        return (chamfer(pred, target) + emd(pred, target)).mean()
    if kind == "heatmap":
        return (pred - target).flatten(2).pow(2).sum(-1).add(1e-12).sqrt().sum(-1).mean()
    if kind == "euclidean":
        return ((pred - target) ** 2).sum(-1).add(1e-6).sqrt().sum(-1).mean()
    return ((pred - target) ** 2).flatten(1).sum(-1).mean()


def elbo_terms(
    model: HandPoseModel,
    posterior: tuple[torch.Tensor, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: dict[str, float],
    recon_3d: str = "squared",
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Reconstruction of every labelled target from one posterior sample, and its KL to N(0, I)."""
    mu, logvar = posterior
    z = reparameterize(mu, logvar)
    kinds = {"3d": recon_3d, "cloud": "cloud", "heatmap": "heatmap"}
    recon = {t: reconstruction(model.decode(z, t), y, kinds.get(t, "squared")) for t, y in targets.items()}
    total = sum(weights.get(t, 1.0) * r for t, r in recon.items())
    return total, kl_to_standard_normal(mu, logvar).mean(), recon


def training_loss(
    model: HandPoseModel,
    inputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    beta: float,
    weights: dict[str, float],
    objective: str = "poe",
    recon_3d: str = "squared",
    fused_kl: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``cross``: one ELBO per source modality, each decoding every target (cross-training).
    ``poe``: those unimodal ELBOs plus the ELBO of the fused posterior of all sources, and of all sources but
    the 3D one where two or more remain (the fusion used at run time, when no 3D is given); without
    ``fused_kl`` the fused posteriors' KL terms are left out (Yang et al. Eq. 4: only the unimodal KLs).
    ``align`` (Yang et al. Eq. 3, strategy S3): the ELBOs of the joint ``rgb+cloud`` encoder and of the RGB
    encoder, plus beta x KL(joint posterior || RGB posterior)."""
    if objective == "align":
        if JOINT not in model.encoders or "rgb" not in model.encoders:
            raise ValueError("the align objective needs an rgb encoder and a joint rgb+cloud encoder")
        experts = {m: model.encoders[m](x) for m, x in inputs.items() if m in model.encoders and m != "cloud"}
        experts[JOINT] = model.encoders[JOINT](inputs["rgb"], inputs["cloud"])
    else:
        experts = model.encode_each(inputs)
    posteriors = {m: product_of_experts([mu], [lv]) for m, (mu, lv) in experts.items()}
    fused: set[str] = set()
    if objective == "poe":
        groups = [list(experts), [m for m in experts if m != "3d"]]
        for g in groups:
            if len(g) > 1 and "+".join(g) not in posteriors:
                posteriors["+".join(g)] = product_of_experts([experts[m][0] for m in g], [experts[m][1] for m in g])
                fused.add("+".join(g))
    loss = torch.zeros((), device=next(iter(inputs.values())).device)
    logs: dict[str, float] = {}
    for name, post in posteriors.items():
        rec, kl, parts = elbo_terms(model, post, targets, weights, recon_3d)
        loss = loss + rec + (beta * kl if fused_kl or name not in fused else 0.0)
        logs[f"kl_{name}"] = float(kl.detach())
        for t, r in parts.items():
            logs[f"rec_{name}->{t}"] = float(r.detach())
    if objective == "align":
        align = kl_gaussians(*posteriors[JOINT], *posteriors["rgb"]).mean()
        loss = loss + beta * align
        logs["kl_align"] = float(align.detach())
    logs["loss"] = float(loss.detach())
    return loss, logs
