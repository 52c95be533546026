"""How deep MediaPipe's metric (world) landmarks read hands against their 3D truth: the realism figure that
``synth-report`` prints for renders, real frames and renders of real frames' poses (docs/renders.md)."""

from __future__ import annotations

import numpy as np


def depth_reading(world: np.ndarray, joints_cam: np.ndarray) -> dict[str, float] | None:
    """How deep MediaPipe's metric landmarks ``world`` (N, 21, 3) read N hands against their truth ``joints_cam``
    (N, 21, 3), both taken wrist-relative in the camera's axes: per hand, the least-squares slope of its landmarks'
    depths on the truth's (``depth_slope_*``: 1 as deep as the hand is, below 1 flatter; median and quartiles over
    the hands) and of their positions across the image (``across_slope_median``, x and y together), and the mean
    error in depth and across the image (``depth_error_mm``, ``across_error_mm``: per axis, over the 20 joints
    other than the wrist). None for no hands. On real photographs MediaPipe reads depth at a slope near 1 and on
    our renders well below it (docs/renders.md): a measure of the depth cues renders give."""
    w, t = np.asarray(world, np.float64), np.asarray(joints_cam, np.float64)
    if w.ndim != 3 or len(w) == 0:
        return None
    w, t = w - w[:, :1], t - t[:, :1]

    def slope(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # per hand, least squares of a = s * b
        return (a * b).sum((1, 2)) / np.maximum((b * b).sum((1, 2)), 1e-12)

    depth = slope(w[..., 2:], t[..., 2:])
    across = slope(w[..., :2], t[..., :2])
    err = np.abs(w - t)[:, 1:]
    q25, med, q75 = np.quantile(depth, [0.25, 0.5, 0.75])
    return {"n": len(w), "depth_slope_median": float(med), "depth_slope_q25": float(q25), "depth_slope_q75": float(q75),
            "across_slope_median": float(np.median(across)), "depth_error_mm": 1000.0 * float(err[..., 2].mean()),
            "across_error_mm": 1000.0 * float(err[..., :2].mean())}  # fmt: skip
