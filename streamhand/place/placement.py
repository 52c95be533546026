"""Metric placement of root-relative 3D hands in the camera frame.

Without depth: the root (wrist) position that best reprojects the 3D joints onto the 2D landmarks
(a linear least-squares solve of the pinhole equations). With depth: each landmark's valid depth (holes
ignored) plus how far that joint lies behind the skin gives a vote for the root depth; the median of the
votes is robust to landmarks hidden behind fingers (a fist seen palm-on) and to votes off the hand. The
hand scale and the wrist's X, Y then follow from one linear solve of the pinhole equations at that depth,
so the hand is metric without assuming its size.
"""

from __future__ import annotations

import numpy as np

from streamhand.geometry import Intrinsics

PALM_LANDMARKS = (0, 5, 9, 13, 17)
#: how far each joint centre lies behind the skin seen by a depth camera (metres, an adult hand): half the
#: wrist's and the palm's thickness, then half of each finger's thickness, thinning to the fingertip
JOINT_BELOW_SKIN_M = np.array(
    [0.018, 0.014, 0.012, 0.010, 0.006] + [0.012, 0.009, 0.008, 0.006] * 4
)  # fmt: skip
#: votes further than this from the palm's median are off the hand (background, the other hand)
_VOTE_WINDOW_M = 0.08


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
    """Median of valid (non-zero) depth in a (2r+1)^2 window around each point; NaN where none. All points at once
    (one gather and one sort; no Python loop over the joints)."""
    h, w = depth.shape
    p = np.round(np.asarray(uv, np.float64)).astype(np.int64)
    d = np.arange(-radius, radius + 1)
    ys = (p[:, 1, None] + d)[:, :, None]  # (n, k, 1)
    xs = (p[:, 0, None] + d)[:, None, :]  # (n, 1, k)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    win = depth[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)].reshape(len(p), -1).astype(np.float64)
    valid = inside.reshape(len(p), -1) & (win > 0)
    n = valid.sum(1)
    srt = np.sort(np.where(valid, win, np.inf), axis=1)
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[:, None], 1)[:, 0]
    hi = np.take_along_axis(srt, np.maximum(n // 2, 0)[:, None], 1)[:, 0]
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)


def root_depth_from_depth(depth: np.ndarray, uv: np.ndarray, rel: np.ndarray, measured: np.ndarray | None = None
                          ) -> float | None:  # fmt: skip
    """Robust root depth from every landmark's measured depth + its depth behind the skin - its relative depth.

    Landmarks hidden behind the hand's own fingers vote too close, those off the hand's silhouette too far:
    votes far from the palm's median are dropped, and the median of the rest is kept. ``measured``: the
    landmarks' :func:`depth_at`, when already known.
    """
    d = depth_at(depth, uv) if measured is None else measured
    votes = d + JOINT_BELOW_SKIN_M - rel[:, 2]
    ok = np.isfinite(votes) & (d > 0.1) & (d < 10.0)
    palm = np.zeros(len(uv), bool)
    palm[list(PALM_LANDMARKS)] = True
    if (ok & palm).sum() < 2:
        return None
    centre = np.median(votes[ok & palm])
    keep = ok & (np.abs(votes - centre) < _VOTE_WINDOW_M)
    return float(np.median(votes[keep]))


def fit_scale(uv: np.ndarray, rel_norm: np.ndarray, k: Intrinsics, z_root: float) -> float:
    """Scale s with R + s*rel_norm best reprojecting onto the 2D landmarks at a known root depth.

    Per joint, fx*(X + s*x) = (u-cx)*(z_root + s*z): linear in (X, Y, s), solved by least squares.
    """
    u, v = uv[:, 0], uv[:, 1]
    x, y, z = rel_norm[:, 0], rel_norm[:, 1], rel_norm[:, 2]
    n = len(u)
    a = np.zeros((2 * n, 3))
    b = np.zeros(2 * n)
    a[:n, 0], a[:n, 2], b[:n] = k.fx, k.fx * x - (u - k.cx) * z, (u - k.cx) * z_root
    a[n:, 1], a[n:, 2], b[n:] = k.fy, k.fy * y - (v - k.cy) * z, (v - k.cy) * z_root
    return float(np.linalg.lstsq(a, b, rcond=None)[0][2])


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
        measured = depth_at(depth, uv)
        z = root_depth_from_depth(depth, uv, rel_norm * scale, measured)
        if z is not None:
            for _ in range(2):  # the votes depend a little on the scale
                s = float(np.clip(fit_scale(uv, rel_norm, k, z), scale * scale_range[0], scale * scale_range[1]))
                z = root_depth_from_depth(depth, uv, rel_norm * s, measured) or z
            rel = rel_norm * s
            root = solve_root(uv, rel, k, z_root=z)
            return root + rel, root, "depth", s
    rel = rel_norm * scale
    root = solve_root(uv, rel, k)
    return root + rel, root, "estimate", scale
