"""The latent space, shown: a walk between two encoded inputs decoded to 3D skeletons (and images where the
model has an image decoder), and a 2D embedding (PCA) of latents coloured by the modality that made them.

Inputs are synthetic hands from the training data's generator (``train.datasets.synthetic.make_pairs``), so
every keypoint modality (2d, world, 3d) of the same hand is available; ``embed`` also reports how close the
experts of one hand lie compared with two different hands (cross-modal alignment, in latent units).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from streamhand.models import HandPoseModel
from streamhand.skeleton import BONES
from train.config import DataConfig
from train.datasets.synthetic import make_pairs
from train.plots import pyplot, save_figure

KEYPOINT_MODALITIES = ("2d", "world", "3d")
COLOURS = {"2d": "tab:blue", "world": "tab:green", "3d": "tab:red", "rgb": "tab:orange", "depth": "tab:purple"}


def _inputs(n: int, seed: int, modalities: tuple[str, ...]) -> dict[str, torch.Tensor]:
    b = make_pairs(np.random.default_rng(seed), n, DataConfig(), noise_px=0.0)
    return {m: {"2d": b.x2d, "world": b.xworld, "3d": b.y3d}[m] for m in modalities}


def _one_latent(model: HandPoseModel) -> None:
    """Walks and embeddings read one shared latent space (``encode``); a disentangled model (DCMLS) has two parts."""
    if not hasattr(model, "encode"):
        raise ValueError(f"a {type(model).__name__} has no single latent space to walk or embed (its latent is "
                         "split in parts); these commands read the cross-modal models'")  # fmt: skip


def _check(model: HandPoseModel, modality: str) -> None:
    _one_latent(model)
    if modality not in model.encoders:
        raise ValueError(f"--modality {modality!r}: the model has no such encoder; it has "
                         f"{', '.join(model.modalities)}")  # fmt: skip
    if modality not in KEYPOINT_MODALITIES:
        raise ValueError(f"--modality {modality!r}: walks and embeddings start from keypoints "
                         f"({', '.join(KEYPOINT_MODALITIES)})")  # fmt: skip


@torch.no_grad()
def latent_walk(model: HandPoseModel, modality: str = "2d", steps: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Encode two hands (``modality``), decode ``steps`` points on the straight line between their means."""
    _check(model, modality)
    if steps < 2:
        raise ValueError("a walk needs at least 2 steps")
    model.eval()
    x = _inputs(2, seed, (modality,))[modality]
    mu, _ = model.encode({modality: x})
    t = torch.linspace(0, 1, steps)[:, None]
    z = (1 - t) * mu[0] + t * mu[1]
    out = {"t": t[:, 0].numpy(), "z": z.numpy(), "joints": model.decode(z, "3d").numpy()}
    for target in ("rgb", "depth"):
        if target in model.decoders:
            out[target] = model.decode(z, target).numpy()
    return out


@torch.no_grad()
def embed(model: HandPoseModel, n: int = 300, seed: int = 0) -> dict[str, np.ndarray | float]:
    """Each keypoint expert's posterior mean for the same ``n`` hands, projected on the first two principal
    axes of all of them; ``same_hand`` / ``other_hand``: mean latent distance between two experts of one hand
    and between the same expert of two different hands."""
    _one_latent(model)
    mods = tuple(m for m in KEYPOINT_MODALITIES if m in model.encoders)
    if not mods:
        raise ValueError(f"the model has no keypoint expert to embed ({', '.join(KEYPOINT_MODALITIES)}); it has "
                         f"{', '.join(model.modalities)}")  # fmt: skip
    model.eval()
    x = _inputs(n, seed, mods)
    mus = {m: model.encoders[m](x[m])[0].numpy() for m in mods}
    all_mu = np.concatenate([mus[m] for m in mods])
    centred = all_mu - all_mu.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    labels = np.repeat(np.array(mods), n)
    same = [np.linalg.norm(mus[a] - mus[b], axis=1).mean() for i, a in enumerate(mods) for b in mods[i + 1 :]]
    other = [np.linalg.norm(mus[m] - np.roll(mus[m], 1, axis=0), axis=1).mean() for m in mods]
    return {"xy": xy, "labels": labels, "same_hand": float(np.mean(same)) if same else float("nan"),
            "other_hand": float(np.mean(other))}  # fmt: skip


def _draw_skeleton(ax, joints: np.ndarray) -> None:
    for a, b in BONES:
        ax.plot(joints[[a, b], 0], -joints[[a, b], 1], "-", color="tab:red", lw=1.5)
    ax.plot(joints[:, 0], -joints[:, 1], ".", color="k", ms=3)
    ax.set_aspect("equal")
    ax.axis("off")


def write_walk_png(walk: dict[str, np.ndarray], path: str | Path) -> Path:
    plt = pyplot()
    images = [k for k in ("rgb", "depth") if k in walk]
    steps = len(walk["t"])
    fig, axes = plt.subplots(1 + len(images), steps, figsize=(1.6 * steps, 1.8 * (1 + len(images))), squeeze=False)
    for i in range(steps):
        _draw_skeleton(axes[0, i], walk["joints"][i])
        axes[0, i].set_title(f"t={walk['t'][i]:.2f}", fontsize=8)
        for r, k in enumerate(images, start=1):
            img = walk[k][i]
            axes[r, i].imshow(np.clip(img.transpose(1, 2, 0) + 0.5, 0, 1) if k == "rgb" else img[0] + 0.5, cmap="gray")
            axes[r, i].axis("off")
    fig.suptitle("latent walk: decoded 3D (x, y) between two encoded hands", fontsize=9)
    return save_figure(fig, path)


def write_embed_png(emb: dict, path: str | Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for m in dict.fromkeys(emb["labels"].tolist()):
        sel = emb["labels"] == m
        ax.scatter(emb["xy"][sel, 0], emb["xy"][sel, 1], s=6, alpha=0.6, color=COLOURS.get(m), label=m)
    title = f"latents by modality (same hand {emb['same_hand']:.2f}, other hand {emb['other_hand']:.2f})"
    ax.set(xlabel="principal axis 1", ylabel="principal axis 2", title=title)
    ax.title.set_fontsize(9)
    ax.legend(markerscale=2)
    return save_figure(fig, path)
