"""Metric placement of root-relative 3D hands in the camera frame.

Without depth: the root (wrist) position that best reprojects the 3D joints onto the 2D landmarks
(a linear least-squares solve of the pinhole equations). With depth: each landmark's valid depth (holes
ignored) plus how far that joint lies behind the skin gives a vote for the root depth; the median of the
votes is robust to landmarks hidden behind fingers (a fist seen palm-on) and to votes off the hand. The
hand scale and the wrist's X, Y then follow from one linear solve of the pinhole equations at that depth,
so the hand is metric without assuming its size. Every hand of a frame is placed at once
(:func:`place_hands`); each solve is the least-squares answer in closed form (:func:`shift_solve`). Last, each
placed joint moves part of the way across the image toward the ray through its 2D landmark (:func:`pull_to_rays`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from streamhand.geometry import Intrinsics, intrinsic_columns

PALM_LANDMARKS = (0, 5, 9, 13, 17)
#: how far each joint centre lies behind the skin seen by a depth camera (metres, an adult hand): half the
#: wrist's and the palm's thickness, then half of each finger's thickness, thinning to the fingertip
JOINT_BELOW_SKIN_M = np.array(
    [0.018, 0.014, 0.012, 0.010, 0.006] + [0.012, 0.009, 0.008, 0.006] * 4
)  # fmt: skip
#: votes further than this from the palm's median are off the hand (background, the other hand)
_VOTE_WINDOW_M = 0.08
_PALM = np.isin(np.arange(21), PALM_LANDMARKS)


def shift_solve(fx, fy, au: np.ndarray, bu: np.ndarray, av: np.ndarray, bv: np.ndarray) -> tuple:
    """Least squares of ``fx*X + au*t = bu`` and ``fy*Y + av*t = bv`` over the last axis (the joints), in closed
    form: ``t`` from the centred columns, then ``X`` and ``Y`` from the means. Batched over leading axes; returns
    (X, Y, t). The pinhole solves below are all of this form (no general least squares, no allocation per row)."""
    n = au.shape[-1]
    su, sv, sbu, sbv = au.sum(-1), av.sum(-1), bu.sum(-1), bv.sum(-1)
    den = (au * au).sum(-1) + (av * av).sum(-1) - (su * su + sv * sv) / n  # the centred columns' sum of squares
    t = ((au * bu).sum(-1) + (av * bv).sum(-1) - (su * sbu + sv * sbv) / n) / np.maximum(den, 1e-12)
    return (sbu - t * su) / (n * fx), (sbv - t * sv) / (n * fy), t


def solve_root(uv: np.ndarray, rel: np.ndarray, k: Intrinsics, z_root: float | None = None) -> np.ndarray:
    """Root position R minimising the reprojection error of R + rel onto ``uv`` (21, 2).

    Each joint gives fx*X + (cx-u)*Z = (u-cx)*z_j - fx*x_j (and the same for y); with a known
    ``z_root`` only X and Y are solved.
    """
    return solve_roots(uv[None], rel[None], k.fx, k.fy, k.cx, k.cy, None if z_root is None else np.array([z_root]))[0]


def solve_roots(uv: np.ndarray, rel: np.ndarray, fx, fy, cx, cy, z_root: np.ndarray | None = None) -> np.ndarray:
    """:func:`solve_root` for B hands at once: ``uv`` (B, 21, 2), ``rel`` (B, 21, 3), intrinsics all scalars or all
    (B,), ``z_root`` (B,) or None -> (B, 3)."""
    fx, fy, cx, cy = intrinsic_columns(fx, fy, cx, cy)
    du, dv = uv[..., 0] - cx, uv[..., 1] - cy
    bu, bv = du * rel[..., 2] - fx * rel[..., 0], dv * rel[..., 2] - fy * rel[..., 1]
    if z_root is not None:  # the depth is known: X and Y are the means
        z = np.asarray(z_root, np.float64)
        n = uv.shape[-2]
        x, y = (bu + du * z[:, None]).sum(-1) / (n * fx[:, 0]), (bv + dv * z[:, None]).sum(-1) / (n * fy[:, 0])
        return np.stack([x, y, z], -1)
    x, y, z = shift_solve(fx[:, 0], fy[:, 0], -du, bu, -dv, bv)
    return np.stack([x, y, np.maximum(z, 0.05)], -1)


def masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The median of each row of ``values`` (B, n) where ``mask`` holds (NaN for a row with none): one sort, no
    loop."""
    srt = np.sort(np.where(mask, values, np.inf), axis=-1)
    n = mask.sum(-1)
    flat, base = srt.ravel(), np.arange(0, srt.size, srt.shape[-1])  # each row's start in the flat array
    mid = 0.5 * (flat[base + (n - 1) // 2] + flat[base + n // 2])  # a row with none reads a neighbour: NaN below
    mid[n == 0] = np.nan
    return mid


def depth_at(depth: np.ndarray, uv: np.ndarray, radius: int = 3) -> np.ndarray:
    """Median of valid (non-zero) depth in a (2r+1)^2 window around each point; NaN where none. All points at once
    (one gather and one sort; no Python loop over the joints)."""
    h, w = depth.shape
    p = np.round(np.asarray(uv, np.float64)).astype(np.int64)
    d = np.arange(-radius, radius + 1)
    ys = (p[:, 1, None] + d)[:, :, None]  # (n, k, 1)
    xs = (p[:, 0, None] + d)[:, None, :]  # (n, 1, k)
    lo, hi = p.min(0), p.max(0)
    if lo[0] >= radius and lo[1] >= radius and hi[0] < w - radius and hi[1] < h - radius:  # every window inside
        win = depth[ys, xs].reshape(len(p), -1).astype(np.float64)
        return masked_median(win, win > 0)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    win = depth[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)].reshape(len(p), -1).astype(np.float64)
    return masked_median(win, inside.reshape(len(p), -1) & (win > 0))


class _RootVotes:
    """Each landmark's vote for the root depth of B hands (``measured`` (B, 21): :func:`depth_at`): its measured depth
    + its depth behind the skin - its depth relative to the wrist (``rel_z`` (B, 21), times the hand's scale). What
    does not change with the scale is computed once.

    Landmarks hidden behind the hand's own fingers vote too close, those off the hand's silhouette too far: votes far
    from the palm's median are dropped, and the median of the rest is kept (the palm's median itself when its two
    middle votes lie so far apart that none is kept); NaN for a hand with fewer than two palm votes."""

    def __init__(self, measured: np.ndarray, rel_z: np.ndarray):
        self.base, self.rel_z = measured + JOINT_BELOW_SKIN_M, rel_z
        self.ok = np.isfinite(measured) & (measured > 0.1) & (measured < 10.0)
        self.palm = self.ok & _PALM
        self.enough = self.palm.sum(-1) >= 2

    def __call__(self, scale: np.ndarray) -> np.ndarray:
        votes = self.base - scale[:, None] * self.rel_z
        centre = masked_median(votes, self.palm)
        keep = self.ok & (np.abs(votes - centre[:, None]) < _VOTE_WINDOW_M)
        z = np.where(keep.any(-1), masked_median(votes, keep), centre)
        return np.where(self.enough, z, np.nan)


def root_depths(measured: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Robust root depth of B hands (NaN where too little depth) from their landmarks' measured depth (``measured``
    (B, 21)) and their wrist-relative joints ``rel`` (B, 21, 3): see :class:`_RootVotes`."""
    return _RootVotes(measured, rel[..., 2])(np.ones(len(rel)))


def root_depth_from_depth(depth: np.ndarray, uv: np.ndarray, rel: np.ndarray, measured: np.ndarray | None = None
                          ) -> float | None:  # fmt: skip
    """:func:`root_depths` of one hand (None where too little depth); ``measured``: its :func:`depth_at`, when
    already known."""
    z = root_depths((depth_at(depth, uv) if measured is None else measured)[None], rel[None])[0]
    return None if np.isnan(z) else float(z)


def fit_scales(uv: np.ndarray, rel_norm: np.ndarray, fx, fy, cx, cy, z_root: np.ndarray) -> np.ndarray:
    """Scale s of each of B hands with R + s*rel_norm best reprojecting onto its 2D landmarks at a known root depth
    ``z_root`` (B,): :func:`scales_per_depth` times ``z_root``."""
    return np.asarray(z_root, np.float64) * scales_per_depth(uv, rel_norm, fx, fy, cx, cy)


def scales_per_depth(uv: np.ndarray, rel_norm: np.ndarray, fx, fy, cx, cy) -> np.ndarray:
    """(B,) the least-squares scale of each hand at root depth 1 m.

    Per joint, fx*(X + s*x) = (u-cx)*(z_root + s*z): linear in (X, Y, s); the right side is proportional to
    ``z_root``, and so are X, Y and s."""
    fx, fy, cx, cy = intrinsic_columns(fx, fy, cx, cy)
    du, dv = uv[..., 0] - cx, uv[..., 1] - cy
    x, y, z = rel_norm[..., 0], rel_norm[..., 1], rel_norm[..., 2]
    return shift_solve(fx[:, 0], fy[:, 0], fx * x - du * z, du, fy * y - dv * z, dv)[2]


def fit_scale(uv: np.ndarray, rel_norm: np.ndarray, k: Intrinsics, z_root: float) -> float:
    """:func:`fit_scales` of one hand."""
    return float(fit_scales(uv[None], rel_norm[None], k.fx, k.fy, k.cx, k.cy, np.array([z_root]))[0])


class Placed(NamedTuple):
    """B hands placed in the camera frame."""

    joints_cam: np.ndarray  # (B, 21, 3) metres
    root: np.ndarray  # (B, 3)
    from_depth: np.ndarray  # (B,) bool: the root depth came from the depth image, else from the perspective solve
    scale: np.ndarray  # (B,) the scale used (metres per unit of the normalised hand)


def place_hands(uv: np.ndarray, rel_norm: np.ndarray, scale: np.ndarray, k: Intrinsics,
                depth: np.ndarray | None = None, scale_range: tuple[float, float] = (0.6, 1.6)) -> Placed:  # fmt: skip
    """B hands at once: ``uv`` (B, 21, 2) px, ``rel_norm`` (B, 21, 3) the normalised wrist-relative hands, ``scale``
    (B,) their prior scale. With depth, each hand whose landmarks see enough of it gets its root depth from the
    votes and its scale from the pinhole equations at that depth (twice: the votes depend a little on the scale);
    the others, and every hand without depth, the perspective solve at the prior scale."""
    uv, rel_norm = np.asarray(uv, np.float64), np.asarray(rel_norm, np.float64)
    scale = np.asarray(scale, np.float64).reshape(-1)
    s, z = scale, np.full(len(uv), np.nan)
    if depth is not None and len(uv):
        votes = _RootVotes(depth_at(depth, uv.reshape(-1, 2)).reshape(uv.shape[:2]), rel_norm[..., 2])
        z = votes(scale)
        have = ~np.isnan(z)
        if have.any():
            per_m = scales_per_depth(uv, rel_norm, k.fx, k.fy, k.cx, k.cy)
            lo, hi = scale * scale_range[0], scale * scale_range[1]
            for _ in range(2):  # the votes depend a little on the scale
                s = np.where(have, np.clip(np.where(have, z, 1.0) * per_m, lo, hi), scale)
                z2 = votes(s)
                z = np.where(np.isnan(z2), z, z2)
    rel = rel_norm * s[:, None, None]
    have = ~np.isnan(z)
    if have.all():
        root = solve_roots(uv, rel, k.fx, k.fy, k.cx, k.cy, z)
    else:
        root = solve_roots(uv, rel, k.fx, k.fy, k.cx, k.cy)
        if have.any():
            root[have] = solve_roots(uv[have], rel[have], k.fx, k.fy, k.cx, k.cy, z[have])
    return Placed(root[:, None] + rel, root, have, s)


#: the share of the way each placed joint moves across the image toward the ray through its 2D landmark, at its own
#: depth: the least error on held-out renders labelled by MediaPipe (0.3 of 0, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1;
#: docs/evaluation.md "Toward MediaPipe's 2D")
RAY_PULL = 0.3


def pull_to_rays(joints_cam: np.ndarray, uv: np.ndarray, fx, fy, cx, cy, share: float = RAY_PULL) -> np.ndarray:
    """Placed joints (B, 21, 3) moved across the image, each at its own depth, ``share`` of the way toward the ray
    through its 2D landmark ``uv`` (B, 21, 2): the answer then reprojects nearer the detector's 2D, which places the
    joints across the image better than the lifted shape does. The intrinsics are scalars or (B,) (one camera per
    hand). ``share`` 0 returns the joints as they are; 1 puts each on its ray. A new array; the input is kept."""
    j = np.array(joints_cam, dtype=np.float64)
    if share <= 0.0:
        return j
    kfx, kfy, kcx, kcy = intrinsic_columns(fx, fy, cx, cy)
    z = j[..., 2]
    j[..., 0] += share * ((uv[..., 0] - kcx) * z / kfx - j[..., 0])
    j[..., 1] += share * ((uv[..., 1] - kcy) * z / kfy - j[..., 1])
    return j


def place_hand(uv: np.ndarray, rel_norm: np.ndarray, scale: float, k: Intrinsics, depth: np.ndarray | None = None,
               scale_range: tuple[float, float] = (0.6, 1.6)) -> tuple[np.ndarray, np.ndarray, str, float]:  # fmt: skip
    """One hand of :func:`place_hands` -> (joints_cam (21, 3), root (3,), root_source "depth"|"estimate", scale
    used)."""
    p = place_hands(np.asarray(uv)[None], np.asarray(rel_norm)[None], np.array([scale]), k, depth, scale_range)
    return p.joints_cam[0], p.root[0], "depth" if p.from_depth[0] else "estimate", float(p.scale[0])
