"""Pose accuracy metrics: EPE (root, ground-truth-scale and Procrustes alignment), 3D PCK and AUC.

Inputs are (N, J, 3) arrays in metres; reported distances are millimetres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from streamhand.skeleton import REF_BONE

Alignment = Literal["root", "scale", "procrustes"]


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (N, J, 3); got {p.shape} and {g.shape}")
    return p, g


def align_root(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Translate both poses so that joint ``root`` is at the origin."""
    p, g = _pair(pred, gt)
    return p - p[:, root : root + 1], g - g[:, root : root + 1]


def align_scale(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Root alignment, then scale the prediction so its reference bone matches the ground truth's."""
    p, g = align_root(pred, gt, root)
    a, b = REF_BONE
    sp = np.linalg.norm(p[:, b] - p[:, a], axis=-1)
    sg = np.linalg.norm(g[:, b] - g[:, a], axis=-1)
    return p * (sg / np.maximum(sp, 1e-9))[:, None, None], g


def align_procrustes(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best similarity transform (rotation, scale, translation) of each prediction onto its ground truth."""
    p, g = _pair(pred, gt)
    mp_, mg = p.mean(1, keepdims=True), g.mean(1, keepdims=True)
    p0, g0 = p - mp_, g - mg
    h = np.einsum("nji,njk->nik", p0, g0)
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    r = np.einsum("nij,njk->nik", u, vt)  # rotation applied as p0 @ r
    scale = s.sum(-1) / np.maximum(np.sum(p0**2, axis=(1, 2)), 1e-12)
    return scale[:, None, None] * np.einsum("nji,nik->njk", p0, r) + mg, g


def joint_errors_mm(pred: np.ndarray, gt: np.ndarray, align: Alignment = "root", root: int = 0) -> np.ndarray:
    """Per-joint Euclidean errors (N, J) in millimetres after the chosen alignment."""
    if align == "root":
        p, g = align_root(pred, gt, root)
    elif align == "scale":
        p, g = align_scale(pred, gt, root)
    elif align == "procrustes":
        p, g = align_procrustes(pred, gt)
    else:
        raise ValueError(f"unknown alignment {align!r}; use root, scale or procrustes")
    return 1000.0 * np.linalg.norm(p - g, axis=-1)


def pck_curve(errors_mm: np.ndarray, thresholds_mm: np.ndarray) -> np.ndarray:
    """Fraction of joints within each threshold."""
    e = np.asarray(errors_mm).ravel()
    return np.array([(e <= t).mean() if e.size else 0.0 for t in thresholds_mm])


def auc(errors_mm: np.ndarray, lo: float = 20.0, hi: float = 50.0, step: float = 5.0) -> float:
    """Normalised area under the PCK curve on [lo, hi] (trapezoid rule on a ``step`` grid)."""
    t = np.arange(lo, hi + step / 2, step)
    y = pck_curve(errors_mm, t)
    return float(trapezoid(y, t) / (hi - lo))


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid-rule integral of ``y`` over ``x`` (``np.trapz`` is gone in numpy 2, ``np.trapezoid`` new in 2.0)."""
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))


@dataclass
class PoseMetrics:
    """EPE summary; distances in millimetres."""

    epe_mean_mm: float
    epe_median_mm: float
    auc_20_50: float
    auc_0_50: float
    n: int
    per_joint_mm: list[float]
    alignment: str

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_poses(pred: np.ndarray, gt: np.ndarray, align: Alignment = "root", root: int = 0) -> PoseMetrics:
    """EPE mean/median, AUC (20-50 mm on a 5 mm grid and 0-50 mm on a 1 mm grid) and per-joint EPE."""
    e = joint_errors_mm(pred, gt, align, root)
    return PoseMetrics(
        epe_mean_mm=float(e.mean()) if e.size else float("nan"),
        epe_median_mm=float(np.median(e)) if e.size else float("nan"),
        auc_20_50=auc(e, 20, 50, 5),
        auc_0_50=auc(e, 0, 50, 1),
        n=int(e.shape[0]),
        per_joint_mm=[float(v) for v in e.mean(0)] if e.size else [],
        alignment=align,
    )
