"""Calibrated per-joint uncertainty.

The model gives two signals per joint (normalised units): the spread of decoded joints over posterior samples,
and, when several experts are fused, their disagreement (how far each expert's own answer lies from the fused
one). Neither is an error in millimetres: the fused posterior of several experts is tight, and the detector's
own 2D error never enters it; but where the experts disagree, the fused answer is likely wrong. A calibration
fitted after training on held-out renders labelled by the real detector maps both to the error a user will
see, per joint and per set of fused experts:

    calibrated_j = sqrt(a_j^2 * spread_j^2 + c_j^2 * disagreement_j^2 + b_j^2)

so that ``calibrated_j^2`` is the expected squared error of joint ``j`` (the wrist, the root, has none). It is
stored in the checkpoint (``std_calibration``: ``{"2d+world": {"a": [21], "b": [21], "c": [21]}, ...}``; ``c``
may be absent) and applied at run time by :class:`streamhand.infer.Lifter`; a checkpoint without one publishes
the raw spread.
"""

from __future__ import annotations

import numpy as np

from streamhand.modalities import ORDER as MODALITY_ORDER
from streamhand.modalities import key as modality_key

__all__ = ["MODALITY_ORDER", "apply_calibration", "modality_key"]


def _nnls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares y ~ x @ c with c >= 0, for a few columns: the best fit over every subset of
    columns whose unconstrained solution is non-negative."""
    sw = np.sqrt(w)
    best, best_r = np.zeros(x.shape[1]), float(np.sum(w * y**2))
    for mask in range(1, 2 ** x.shape[1]):
        cols = [i for i in range(x.shape[1]) if mask >> i & 1]
        c = np.linalg.lstsq(x[:, cols] * sw[:, None], y * sw, rcond=None)[0]
        if (c < 0).any():
            continue
        full = np.zeros(x.shape[1])
        full[cols] = c
        r = float(np.sum(w * (y - x @ full) ** 2))
        if r < best_r:
            best, best_r = full, r
    return best


def fit_calibration(
    spread: np.ndarray, error: np.ndarray, disagreement: np.ndarray | None = None
) -> dict[str, list[float]]:
    """Per joint non-negative (a, b, c) with error^2 ~ a^2 spread^2 + c^2 disagreement^2 + b^2: least squares
    on the squares, re-weighted by the predicted variance (squared errors scatter in proportion to it).

    ``spread``, ``error`` and ``disagreement`` (None: no ``c``): (N, 21), the same units."""
    s2, e2 = np.asarray(spread, np.float64) ** 2, np.asarray(error, np.float64) ** 2
    d2 = None if disagreement is None else np.asarray(disagreement, np.float64) ** 2
    n, j_count = s2.shape
    coefs = np.zeros((j_count, 3))
    for j in range(j_count):
        y = e2[:, j]
        if y.mean() <= 0:
            continue
        cols = [s2[:, j], np.ones(n)] + ([] if d2 is None else [d2[:, j]])
        x = np.stack(cols, 1)
        coef = _nnls(x, y, np.ones(n))
        for _ in range(4):
            pred = np.maximum(x @ coef, 1e-6 * y.mean())
            coef = _nnls(x, y, 1.0 / pred**2)
        coefs[j, : len(coef)] = coef
    out = {"a": np.sqrt(coefs[:, 0]).tolist(), "b": np.sqrt(coefs[:, 1]).tolist()}
    if d2 is not None:
        out["c"] = np.sqrt(coefs[:, 2]).tolist()
    return out


def apply_calibration(
    spread: np.ndarray, cal: dict[str, list[float]] | None, disagreement: np.ndarray | None = None
) -> np.ndarray:
    """(B, 21) spread (and disagreement) -> calibrated (B, 21); the raw spread without a calibration."""
    if not cal:
        return spread
    a, b = np.asarray(cal["a"]), np.asarray(cal["b"])
    var = (a * spread) ** 2 + b**2
    if cal.get("c") is not None and disagreement is not None:
        var = var + (np.asarray(cal["c"]) * disagreement) ** 2
    return np.sqrt(var)
