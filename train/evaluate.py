"""Evaluation of the 2D -> 3D path on a held-out synthetic set (ground-truth scale, wrist root)."""

from __future__ import annotations

import numpy as np
import torch

from streamhand.codec import decode_3d, encode_2d
from streamhand.metrics import PoseMetrics, evaluate_poses
from streamhand.models import HandPoseModel
from streamhand.skeleton import reference_length
from train.config import DataConfig
from train.datasets.synthetic import make_pairs


@torch.no_grad()
def lift_2d(model: HandPoseModel, x2d: torch.Tensor, batch: int = 4096) -> np.ndarray:
    """Normalised 2D (N, 21, 2) -> normalised 3D (N, 21, 3) from the posterior mean."""
    was_training = model.training
    model.eval()
    out = [model({"2d": x2d[i : i + batch]}).joints for i in range(0, len(x2d), batch)]
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64)


def evaluate_synthetic(
    model: HandPoseModel,
    n: int = 2000,
    seed: int = 1234,
    noise_px: float = 2.0,
    data: DataConfig | None = None,
    align: str = "root",
) -> PoseMetrics:
    """EPE of 2D->3D on ``n`` fresh synthetic hands with Gaussian 2D noise of ``noise_px`` pixels."""
    d = data or DataConfig()
    pairs = make_pairs(np.random.default_rng(seed), n, d, noise_px=noise_px)
    pred = decode_3d(lift_2d(model, pairs.x2d), pairs.left, pairs.scale, pairs.rot)
    gt = pairs.joints_cam - pairs.joints_cam[:, :1]
    return evaluate_poses(pred, gt, align=align)


def evaluate_handset(model: HandPoseModel, hands, noise_px: float = 0.0, seed: int = 1234) -> PoseMetrics:
    """2D->3D on a real dataset's ground-truth 2D (optionally with Gaussian pixel noise)."""
    rng = np.random.default_rng(seed)
    kp = hands.joints_2d + rng.normal(0, noise_px, hands.joints_2d.shape) if noise_px else hands.joints_2d
    x2d, rot = encode_2d(kp, hands.left, hands.intrinsics)
    pred = decode_3d(lift_2d(model, torch.from_numpy(x2d)), hands.left, reference_length(hands.joints_cam), rot)
    gt = hands.joints_cam - hands.joints_cam[:, :1]
    return evaluate_poses(pred, gt, align="root")
