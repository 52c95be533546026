"""Pose accuracy metrics: EPE (root, ground-truth-scale and Procrustes alignment), 3D PCK and AUC, and how
well a predicted per-joint uncertainty (``joint_std``) matches the actual errors.

Inputs are (N, J, 3) arrays in metres; reported distances are millimetres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import erf, exp, pi, sqrt
from typing import Literal

import numpy as np

from streamhand.skeleton import REF_BONE

Alignment = Literal["root", "scale", "procrustes"]
#: PCK thresholds of the printed curves (mm)
PCK_THRESHOLDS_MM = np.arange(0.0, 50.0 + 1e-9, 5.0)


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
class UncertaintyMetrics:
    """Predicted per-joint spread against the actual per-joint errors (the root joint left out)."""

    spearman: float  # rank correlation of std with error over all (hand, joint) pairs: does it rank well?
    within_1std: float  # share of joints whose error is at most 1 predicted std
    within_2std: float  # ... at most 2 predicted std
    mean_std_mm: float
    mean_error_mm: float
    n_joints: int
    #: the shares a well-calibrated isotropic 3D Gaussian error would give (the std being its radial spread)
    gaussian_within_1std: float = 0.0
    gaussian_within_2std: float = 0.0
    #: rank correlation of each hand's mean std with its mean error: does it tell the bad hands apart?
    frame_spearman: float = float("nan")

    def as_dict(self) -> dict:
        return asdict(self)


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
    uncertainty: UncertaintyMetrics | None = None  # when the evaluation also measured joint_std
    pck_thresholds_mm: list[float] = field(default_factory=list)  # PCK_THRESHOLDS_MM: 0-50 mm, 5 mm apart
    pck: list[float] = field(default_factory=list)  # share of joints within each threshold

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["uncertainty"] is None:
            del d["uncertainty"]
        return d


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
        pck_thresholds_mm=[float(t) for t in PCK_THRESHOLDS_MM],
        pck=[float(v) for v in pck_curve(e, PCK_THRESHOLDS_MM)] if e.size else [],
    )


def camera_errors_mm(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> dict[str, np.ndarray]:
    """Per-hand figures (N,) in mm for poses in the camera frame (metres): ``rel`` wrist-relative with the
    prediction's own scale, ``gt_bone`` scaled to the truth's reference bone, ``pa`` after Procrustes,
    ``root`` the root position error and ``abs`` the mean joint error without any alignment."""
    p, g = _pair(pred, gt)
    return {
        "rel": joint_errors_mm(p, g, "root", root).mean(1),
        "gt_bone": joint_errors_mm(p, g, "scale", root).mean(1),
        "pa": joint_errors_mm(p, g, "procrustes").mean(1),
        "root": 1000.0 * np.linalg.norm(p[:, root] - g[:, root], axis=-1),
        "abs": 1000.0 * np.linalg.norm(p - g, axis=-1).mean(1),
    }


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array; ties share their average rank."""
    a = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(a, kind="stable")
    r = np.empty(a.size)
    r[order] = np.arange(1, a.size + 1)
    vals, inv = np.unique(a, return_inverse=True)
    if vals.size < a.size:  # average over ties
        r = (np.bincount(inv, weights=r) / np.bincount(inv))[inv]
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties averaged); NaN with fewer than 3 pairs or a constant input."""
    ra, rb = ranks(a), ranks(b)
    if ra.size != rb.size:
        raise ValueError(f"spearman needs two arrays of one size; got {ra.size} and {rb.size}")
    if ra.size < 3 or np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def within_std(std: np.ndarray, errors: np.ndarray, k: float) -> float:
    """Share of entries whose error is at most ``k`` predicted standard deviations (the same units)."""
    s, e = np.asarray(std, np.float64).ravel(), np.asarray(errors, np.float64).ravel()
    if s.size != e.size:
        raise ValueError(f"std and errors differ in size: {s.size} and {e.size}")
    return float(np.mean(e <= k * s)) if e.size else float("nan")


def gaussian_radial_share(k: float, dims: int = 3) -> float:
    """P(|e| <= k * sqrt(E|e|^2)) for an isotropic Gaussian error in ``dims`` (1-3) dimensions: what
    :func:`within_std` gives when the std is right (3D: 0.61 at k=1, 0.99 at k=2)."""
    t = k * sqrt(dims)  # the radius in per-axis sigmas
    if dims == 1:
        return erf(t / sqrt(2))
    if dims == 2:
        return 1.0 - exp(-t * t / 2)
    if dims == 3:
        return erf(t / sqrt(2)) - sqrt(2 / pi) * t * exp(-t * t / 2)
    raise ValueError("dims must be 1, 2 or 3")


def evaluate_uncertainty(joint_std: np.ndarray, errors_mm: np.ndarray, root: int | None = 0) -> UncertaintyMetrics:
    """``joint_std`` (N, J) metres: the predicted 3D radial spread of each joint (over x, y, z together);
    ``errors_mm`` (N, J): the actual errors, e.g. from :func:`joint_errors_mm`. Joint ``root`` (the wrist,
    whose wrist-relative error is zero by construction) is left out."""
    s = 1000.0 * np.asarray(joint_std, np.float64)
    e = np.asarray(errors_mm, np.float64)
    if s.shape != e.shape or s.ndim != 2:
        raise ValueError(f"joint_std and errors_mm must both be (N, J); got {s.shape} and {e.shape}")
    if root is not None:
        keep = np.arange(s.shape[1]) != root
        s, e = s[:, keep], e[:, keep]
    return UncertaintyMetrics(
        spearman=spearman(s, e),
        within_1std=within_std(s, e, 1.0),
        within_2std=within_std(s, e, 2.0),
        mean_std_mm=float(s.mean()) if s.size else float("nan"),
        mean_error_mm=float(e.mean()) if e.size else float("nan"),
        n_joints=int(s.size),
        gaussian_within_1std=gaussian_radial_share(1.0),
        gaussian_within_2std=gaussian_radial_share(2.0),
        frame_spearman=spearman(s.mean(1), e.mean(1)) if s.size else float("nan"),
    )
