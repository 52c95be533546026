"""Training DCMLS (Gu et al.; :mod:`streamhand.models.dcmls`): the min-max of Eq. 9 as Algorithm 1 runs it,
one discriminator step then one step of everything else per batch.

Discriminators (:class:`DiscriminatorStep`, their own Adam): D_h tells x's pose part (label 1) from y's (0),
Eq. 4; D_c tells y's context (1) from x's translated one (0), Eq. 6. The rest (:func:`dcmls_loss`): each VAE
reconstructs its own input with its KL (Eq. 3; x's only where x has a decoder); the encoders fool D_h with the
labels swapped (Eq. 5); the translator matches y's context (L1) and fools D_c (Eq. 7, swapped labels; the
paper's printed D_h in the second term is D_c); the 3D decoded from x's pose part and the translated context
(Eq. 8) with the KL of both. Discriminators output logits; BCE is taken with logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamhand.models.poe import kl_to_standard_normal
from train.losses import reconstruction, reparameterize


def bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def _latents(model, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Posteriors and samples of both VAEs, split into pose and context parts, and the translated context."""
    mu_x, lv_x = model.encoders[model.x](inputs[model.x])
    mu_y, lv_y = model.encoders["3d"](inputs["3d"])
    z_x, z_y = reparameterize(mu_x, lv_x), reparameterize(mu_y, lv_y)
    out = {"mu_x": mu_x, "lv_x": lv_x, "mu_y": mu_y, "lv_y": lv_y, "z_x": z_x, "z_y": z_y}
    out["zh_x"], out["zc_x"] = model.split(z_x)
    out["zh_y"], out["zc_y"] = model.split(z_y)
    if model.translator is not None:
        out["mu_t"], out["lv_t"] = model.translator(out["zc_x"])
        out["z_t"] = reparameterize(out["mu_t"], out["lv_t"])
    return out


def pose_discriminator_loss(model, lat: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 4: D_h says 1 for x's pose part, 0 for y's."""
    d = model.pose_discriminator
    return 0.5 * bce(d(lat["zh_x"]), 1.0) + 0.5 * bce(d(lat["zh_y"]), 0.0)


def context_discriminator_loss(model, lat: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 6: D_c says 0 for the translated context, 1 for y's own."""
    d = model.context_discriminator
    return 0.5 * bce(d(lat["z_t"]), 0.0) + 0.5 * bce(d(lat["zc_y"]), 1.0)


def encoder_adversarial_loss(model, lat: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 5: the encoders fool D_h, the labels of Eq. 4 swapped."""
    d = model.pose_discriminator
    return 0.5 * bce(d(lat["zh_x"]), 0.0) + 0.5 * bce(d(lat["zh_y"]), 1.0)


def translator_loss(model, lat: dict[str, torch.Tensor], adversarial: bool = True) -> torch.Tensor:
    """Eq. 7: L1 from the translated context (its mean) to y's, and D_c fooled with Eq. 6's labels swapped."""
    loss = (lat["mu_t"] - lat["zc_y"]).abs().sum(-1).mean()
    if adversarial:
        d = model.context_discriminator
        loss = loss + 0.5 * bce(d(lat["z_t"]), 1.0) + 0.5 * bce(d(lat["zc_y"]), 0.0)
    return loss


class DiscriminatorStep:
    """One update of D_h (and D_c) on a batch's latents (the encoders and T held still)."""

    def __init__(self, model, lr: float):
        self.model = model
        self.parameters = [p for n, p in model.named_parameters() if n.split(".")[0].endswith("discriminator")]
        self.opt = torch.optim.Adam(self.parameters, lr=lr)

    def __call__(self, inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, float]:
        m, c = self.model, self.model.cfg
        with torch.no_grad():
            lat = _latents(m, {**inputs, "3d": targets["3d"]})
        loss = torch.zeros((), device=lat["z_x"].device)
        logs = {}
        if c.pose_discriminator:
            d_h = pose_discriminator_loss(m, lat)
            loss, logs["loss_D_h"] = loss + d_h, float(d_h.detach())
        if c.context_discriminator and m.context_discriminator is not None:
            d_c = context_discriminator_loss(m, lat)
            loss, logs["loss_D_c"] = loss + d_c, float(d_c.detach())
        if loss.requires_grad:
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return logs


def dcmls_loss(
    model, inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], beta: float, weights: dict[str, float],
    recon_3d: str = "euclidean",
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """Eqs. 3, 5, 7 and 8 for the encoders, decoders and translator (the discriminators' own terms are theirs)."""
    c = model.cfg
    y = targets["3d"]
    lat = _latents(model, {**inputs, "3d": y})
    w3 = weights.get("3d", 1.0)
    logs: dict[str, float] = {}
    # Eq. 3: each VAE's self-reconstruction
    rec_y = reconstruction(model.decode(lat["z_y"]), y, recon_3d)
    kl = kl_to_standard_normal(lat["mu_y"], lat["lv_y"]).mean() + kl_to_standard_normal(lat["mu_x"], lat["lv_x"]).mean()
    loss = w3 * rec_y + beta * kl
    logs["rec_3d->3d"] = float(rec_y.detach())
    if model.x_decoder is not None:
        rec_x = reconstruction(model.x_decoder(lat["z_x"]), inputs[model.x])
        loss = loss + weights.get(model.x, 1.0) * rec_x
        logs[f"rec_{model.x}->{model.x}"] = float(rec_x.detach())
    # Eq. 5: the encoders' pose parts fool D_h
    if c.pose_discriminator:
        adv = encoder_adversarial_loss(model, lat)
        loss, logs["loss_E"] = loss + adv, float(adv.detach())
    # Eq. 7: the translator maps x's context onto y's and fools D_c
    if model.translator is not None:
        l_t = translator_loss(model, lat, c.context_discriminator)
        loss, logs["loss_T"] = loss + l_t, float(l_t.detach())
        z = torch.cat([lat["zh_x"], lat["z_t"]], -1)
        mu_h, _ = model.split(lat["mu_x"])
        lv_h, _ = model.split(lat["lv_x"])
        kl_hpe = kl_to_standard_normal(mu_h, lv_h).mean() + kl_to_standard_normal(lat["mu_t"], lat["lv_t"]).mean()
    else:  # no disentanglement: the whole x latent is pose
        z, kl_hpe = lat["z_x"], kl_to_standard_normal(lat["mu_x"], lat["lv_x"]).mean()
    # Eq. 8: the 3D from x's pose part and the translated context
    rec_hpe = reconstruction(model.decode(z), y, recon_3d)
    loss = loss + w3 * rec_hpe + beta * kl_hpe
    logs[f"rec_{model.x}->3d"] = float(rec_hpe.detach())
    logs["loss"] = float(loss.detach())
    return loss, logs
