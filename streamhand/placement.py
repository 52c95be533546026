"""Metric placement of root-relative 3D hands in the camera frame.

Without depth: the root (wrist) position that best reprojects the 3D joints onto the 2D landmarks
(a linear least-squares solve of the pinhole equations). With depth: the root depth is a robust
median of valid depth around the palm landmarks (holes ignored); the hand scale is then fitted to the
2D landmarks too, so the hand is metric without assuming its size.
"""

from __future__ import annotations

import numpy as np

from streamhand.geometry import Intrinsics

PALM_LANDMARKS = (0, 5, 9, 13, 17)
SURFACE_TO_JOINT_M = 0.008  # joints lie about this far behind the visible skin


def solve_root(uv: np.ndarray, rel: np.ndarray, k: Intrinsics, z_root: float | None = None) -> np.ndarray:
    """Root position R minimising the reprojection error of R + rel onto ``uv`` (21, 2).

    Each joint gives fx*X + (cx-u)*Z = (u-cx)*z_j - fx*x_j (and the same for y); with a known
    ``z_root`` only X and Y are solved.
    """
    u, v = uv[:, 0], uv[:, 1]
    x, y, z = rel[:, 0], rel[:, 1], rel[:, 2]
    n = len(u)
    a = np.zeros((2 * n, 3))
    b = np.zeros(2 * n)
    a[:n, 0], a[:n, 2], b[:n] = k.fx, k.cx - u, (u - k.cx) * z - k.fx * x
    a[n:, 1], a[n:, 2], b[n:] = k.fy, k.cy - v, (v - k.cy) * z - k.fy * y
    if z_root is not None:
        b = b - a[:, 2] * z_root
        xy = np.linalg.lstsq(a[:, :2], b, rcond=None)[0]
        return np.array([xy[0], xy[1], z_root])
    root = np.linalg.lstsq(a, b, rcond=None)[0]
    root[2] = max(root[2], 0.05)
    return root


def depth_at(depth: np.ndarray, uv: np.ndarray, radius: int = 3) -> np.ndarray:
    """Median of valid (non-zero) depth in a (2r+1)^2 window around each point; NaN where none."""
    h, w = depth.shape
    out = np.full(len(uv), np.nan)
    for i, (px, py) in enumerate(np.round(uv).astype(int)):
        x0, x1, y0, y1 = max(px - radius, 0), min(px + radius + 1, w), max(py - radius, 0), min(py + radius + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        win = depth[y0:y1, x0:x1]
        valid = win[win > 0]
        if valid.size:
            out[i] = float(np.median(valid))
    return out


def root_depth_from_depth(depth: np.ndarray, uv: np.ndarray, rel: np.ndarray) -> float | None:
    """Robust root depth: for each palm landmark, measured depth + skin offset - its relative depth."""
    idx = np.array(PALM_LANDMARKS)
    d = depth_at(depth, uv[idx])
    cand = d + SURFACE_TO_JOINT_M - rel[idx, 2]
    cand = cand[np.isfinite(cand) & (d > 0.1) & (d < 10.0)]
    if cand.size < 2:
        return None
    return float(np.median(cand))


def fit_scale(uv: np.ndarray, rel_norm: np.ndarray, k: Intrinsics, z_root: float) -> float:
    """Scale s with R + s*rel_norm best matching the 2D landmarks at a known root depth (weak perspective)."""
    d = (uv - uv[:1]) * (z_root / np.array([k.fx, k.fy]))
    r = rel_norm[:, :2] - rel_norm[:1, :2]
    return float(np.sum(d * r) / max(np.sum(r * r), 1e-9))


def place_hand(
    uv: np.ndarray,
    rel_norm: np.ndarray,
    scale: float,
    k: Intrinsics,
    depth: np.ndarray | None = None,
    scale_range: tuple[float, float] = (0.6, 1.6),
) -> tuple[np.ndarray, np.ndarray, str, float]:
    """-> (joints_cam (21, 3), root (3,), root_source "depth"|"estimate", scale used)."""
    if depth is not None:
        z = root_depth_from_depth(depth, uv, rel_norm * scale)
        if z is not None:
            s = float(np.clip(fit_scale(uv, rel_norm, k, z), scale * scale_range[0], scale * scale_range[1]))
            z = root_depth_from_depth(depth, uv, rel_norm * s) or z
            rel = rel_norm * s
            root = solve_root(uv, rel, k, z_root=z)
            return root + rel, root, "depth", s
    rel = rel_norm * scale
    root = solve_root(uv, rel, k)
    return root + rel, root, "estimate", scale
