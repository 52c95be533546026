"""Calibrated per-joint uncertainty.

The model's ``joint_std`` is the spread of decoded joints over posterior samples (normalised units). It ranks
hands by ambiguity, but it is not an error in millimetres: the fused posterior of several experts is tight, and
the detector's own 2D error never enters it. A calibration fitted after training on held-out renders labelled
by the real detector maps it to the error a user will see, per joint and per set of fused experts:

    calibrated_j = sqrt(a_j^2 * spread_j^2 + b_j^2)

so that ``calibrated_j^2`` is the expected squared error of joint ``j`` (the wrist, the root, has none). It is
stored in the checkpoint (``std_calibration``: ``{"2d+world": {"a": [21], "b": [21]}, ...}``) and applied at
run time by :class:`streamhand.infer.Lifter`; a checkpoint without one publishes the raw spread.
"""

from __future__ import annotations

import numpy as np


def modality_key(modalities) -> str:
    """Canonical name of a set of fused experts, e.g. ``"2d+world"``."""
    order = ("2d", "world", "rgb", "depth", "3d")
    return "+".join(m for m in order if m in set(modalities))


def _nnls2(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares y ~ c0 * x + c1 with c >= 0 (two unknowns: the full fit or the best single term)."""
    sw = np.sqrt(w)
    coef = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1) * sw[:, None], y * sw, rcond=None)[0]
    if (coef >= 0).all():
        return coef
    only_a = max(float(np.sum(w * x * y) / max(np.sum(w * x * x), 1e-18)), 0.0)
    only_b = max(float(np.sum(w * y) / np.sum(w)), 0.0)
    ra, rb = np.sum(w * (y - only_a * x) ** 2), np.sum(w * (y - only_b) ** 2)
    return np.array([only_a, 0.0]) if ra < rb else np.array([0.0, only_b])


def fit_calibration(spread: np.ndarray, error: np.ndarray) -> dict[str, list[float]]:
    """Per joint non-negative (a, b) with error^2 ~ a^2 spread^2 + b^2: least squares on the squares,
    re-weighted by the predicted variance (squared errors scatter in proportion to it).

    ``spread`` and ``error``: (N, 21), the same units."""
    s2, e2 = np.asarray(spread, np.float64) ** 2, np.asarray(error, np.float64) ** 2
    a, b = np.zeros(s2.shape[1]), np.zeros(s2.shape[1])
    for j in range(s2.shape[1]):
        x, y = s2[:, j], e2[:, j]
        if y.mean() <= 0:
            continue
        coef = _nnls2(x, y, np.ones_like(x))
        for _ in range(4):
            pred = np.maximum(coef[0] * x + coef[1], 1e-6 * y.mean())
            coef = _nnls2(x, y, 1.0 / pred**2)
        a[j], b[j] = np.sqrt(coef[0]), np.sqrt(coef[1])
    return {"a": a.tolist(), "b": b.tolist()}


def apply_calibration(spread: np.ndarray, cal: dict[str, list[float]] | None) -> np.ndarray:
    """(B, 21) spread -> calibrated (B, 21); unchanged without a calibration."""
    if not cal:
        return spread
    a, b = np.asarray(cal["a"]), np.asarray(cal["b"])
    return np.sqrt((a * spread) ** 2 + b**2)
