"""Metric placement of root-relative 3D hands in the camera frame.

Without depth: the root (wrist) position that best reprojects the 3D joints onto the 2D landmarks
(a linear least-squares solve of the pinhole equations). With depth: each landmark's valid depth (holes
ignored) plus how far that joint lies behind the skin gives a vote for the root depth; the median of the
votes is robust to landmarks hidden behind fingers (a fist seen palm-on) and to votes off the hand. The
hand scale and the wrist's X, Y then follow from one linear solve of the pinhole equations at that depth,
so the hand is metric without assuming its size. Every hand of a frame is placed in one compiled call
(:func:`place_hands`, :mod:`streamhand.jit`); each solve is the least-squares answer in closed form
(:func:`_shift_solve`). Last, each placed joint moves part of the way across the image toward the ray through its
2D landmark (:func:`pull_to_rays`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from streamhand.geometry import Intrinsics, intrinsics_per_hand
from streamhand.jit import carray, f64, njit

PALM_LANDMARKS = (0, 5, 9, 13, 17)
#: how far each joint centre lies behind the skin seen by a depth camera (metres, an adult hand): half the
#: wrist's and the palm's thickness, then half of each finger's thickness, thinning to the fingertip
JOINT_BELOW_SKIN_M = np.array(
    [0.018, 0.014, 0.012, 0.010, 0.006] + [0.012, 0.009, 0.008, 0.006] * 4
)  # fmt: skip
#: votes further than this from the palm's median are off the hand (background, the other hand)
_VOTE_WINDOW_M = 0.08
_PALM = np.isin(np.arange(21), PALM_LANDMARKS)
_NO_DEPTH = np.zeros((0, 0), np.float32)


Arr = np.ndarray  # the compiled arithmetic's arguments


@njit
def _shift_solve(fx: float, fy: float, au: Arr, bu: Arr, av: Arr, bv: Arr) -> tuple[float, float, float]:
    """Least squares of ``fx*X + au*t = bu`` and ``fy*Y + av*t = bv`` over the joints (1-D arrays), in closed form:
    ``t`` from the centred columns, then ``X`` and ``Y`` from the means. Every pinhole solve below has this form."""
    n = len(au)
    su, sv, sbu, sbv = au.sum(), av.sum(), bu.sum(), bv.sum()
    den = (au * au).sum() + (av * av).sum() - (su * su + sv * sv) / n  # the centred columns' sum of squares
    t = ((au * bu).sum() + (av * bv).sum() - (su * sbu + sv * sbv) / n) / max(den, 1e-12)
    return (sbu - t * su) / (n * fx), (sbv - t * sv) / (n * fy), t


@njit
def hand_root(uv: Arr, rel: Arr, fx: float, fy: float, cx: float, cy: float, z_root: float) -> Arr:
    """The root (3,) of one hand (``uv`` (21, 2), ``rel`` (21, 3)): each joint gives fx*X + (cx-u)*Z = (u-cx)*z_j -
    fx*x_j (and the same for y); at a known ``z_root`` (not NaN) X and Y are the means, else the perspective solve
    (its depth at least 5 cm)."""
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    bu, bv = du * rel[:, 2] - fx * rel[:, 0], dv * rel[:, 2] - fy * rel[:, 1]
    out = np.empty(3)
    if np.isnan(z_root):
        out[0], out[1], t = _shift_solve(fx, fy, -du, bu, -dv, bv)
        out[2] = max(t, 0.05)
    else:
        n = len(du)
        out[0], out[1], out[2] = (bu + du * z_root).sum() / (n * fx), (bv + dv * z_root).sum() / (n * fy), z_root
    return out


@njit
def _roots(uv: Arr, rel: Arr, kk: Arr, z_root: Arr) -> Arr:
    """(B, 3) :func:`hand_root` of B hands (``kk`` (4, B) fx, fy, cx, cy per hand; ``z_root`` (B,), NaN: unknown)."""
    out = np.empty((len(uv), 3))
    for b in range(len(uv)):
        out[b] = hand_root(uv[b], rel[b], kk[0, b], kk[1, b], kk[2, b], kk[3, b], z_root[b])
    return out


def solve_root(uv: np.ndarray, rel: np.ndarray, k: Intrinsics, z_root: float | None = None) -> np.ndarray:
    """Root position R minimising the reprojection error of R + rel onto ``uv`` (21, 2).

    Each joint gives fx*X + (cx-u)*Z = (u-cx)*z_j - fx*x_j (and the same for y); with a known
    ``z_root`` only X and Y are solved.
    """
    return solve_roots(uv[None], rel[None], k.fx, k.fy, k.cx, k.cy, None if z_root is None else np.array([z_root]))[0]


def solve_roots(uv: np.ndarray, rel: np.ndarray, fx, fy, cx, cy, z_root: np.ndarray | None = None) -> np.ndarray:
    """:func:`solve_root` for B hands at once: ``uv`` (B, 21, 2), ``rel`` (B, 21, 3), intrinsics all scalars or all
    (B,), ``z_root`` (B,) or None -> (B, 3)."""
    z = np.full(len(uv), np.nan) if z_root is None else f64(z_root)
    return _roots(f64(uv), f64(rel), intrinsics_per_hand(fx, fy, cx, cy, len(uv)), z)


@njit
def _median(values: Arr, mask: Arr) -> float:
    """The median of ``values`` where ``mask`` holds (NaN where it holds nowhere)."""
    kept = np.sort(values[mask])
    n = len(kept)
    return np.nan if n == 0 else 0.5 * (kept[(n - 1) // 2] + kept[n // 2])


def masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The median of each row of ``values`` (B, n) where ``mask`` holds (NaN for a row with none)."""
    return _masked_medians(f64(values), carray(mask, np.bool_))


@njit
def _masked_medians(values: Arr, mask: Arr) -> Arr:
    """:func:`masked_median`, compiled."""
    out = np.empty(len(values))
    for b in range(len(values)):
        out[b] = _median(values[b], mask[b])
    return out


@njit
def _depth_at(depth: Arr, uv: Arr, radius: int) -> Arr:
    """(n,) the median of the valid (non-zero) depth in a (2r+1)^2 window around each point of ``uv`` (n, 2); NaN
    where the window holds none (or lies outside the image)."""
    h, w = depth.shape
    out, buf = np.empty(len(uv)), np.empty((2 * radius + 1) ** 2)
    for i in range(len(uv)):
        x0, y0, m = int(np.round(uv[i, 0])), int(np.round(uv[i, 1])), 0
        for y in range(max(y0 - radius, 0), min(y0 + radius + 1, h)):
            for x in range(max(x0 - radius, 0), min(x0 + radius + 1, w)):
                if depth[y, x] > 0:
                    buf[m], m = depth[y, x], m + 1
        out[i] = _median(buf[:m], np.ones(m, np.bool_))
    return out


def depth_at(depth: np.ndarray, uv: np.ndarray, radius: int = 3) -> np.ndarray:
    """Median of valid (non-zero) depth in a (2r+1)^2 window around each point; NaN where none."""
    return _depth_at(carray(depth), f64(np.reshape(uv, (-1, 2))), radius)


@njit
def _root_vote(measured: Arr, rel_z: Arr, scale: float) -> float:
    """The root depth of one hand from its landmarks' ``measured`` depth (21,) and wrist-relative depth ``rel_z``
    (21,, times ``scale``): each landmark votes its measured depth + its depth behind the skin - its depth from the
    wrist. Landmarks hidden behind the hand's own fingers vote too close, those off the hand's silhouette too far:
    votes further than ``_VOTE_WINDOW_M`` from the palm's median are dropped, and the median of the rest is kept
    (the palm's median itself when none is); NaN with fewer than two palm votes."""
    ok = np.isfinite(measured) & (measured > 0.1) & (measured < 10.0)
    palm = ok & _PALM
    if palm.sum() < 2:
        return np.nan
    votes = measured + JOINT_BELOW_SKIN_M - scale * rel_z
    centre = _median(votes, palm)
    keep = ok & (np.abs(votes - centre) < _VOTE_WINDOW_M)
    return _median(votes, keep) if keep.any() else centre


def root_depths(measured: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Robust root depth of B hands (NaN where too little depth) from their landmarks' measured depth (``measured``
    (B, 21)) and their wrist-relative joints ``rel`` (B, 21, 3): see :func:`_root_vote`."""
    return np.array([_root_vote(m, r, 1.0) for m, r in zip(f64(measured), f64(rel)[..., 2])])


def root_depth_from_depth(depth: np.ndarray, uv: np.ndarray, rel: np.ndarray, measured: np.ndarray | None = None
                          ) -> float | None:  # fmt: skip
    """:func:`root_depths` of one hand (None where too little depth); ``measured``: its :func:`depth_at`, when
    already known."""
    z = root_depths((depth_at(depth, uv) if measured is None else measured)[None], rel[None])[0]
    return None if np.isnan(z) else float(z)


@njit
def _scale_per_depth(uv: Arr, rel_norm: Arr, fx: float, fy: float, cx: float, cy: float) -> float:
    """The least-squares scale of one hand at root depth 1 m. Per joint, fx*(X + s*x) = (u-cx)*(z_root + s*z):
    linear in (X, Y, s); the right side is proportional to ``z_root``, and so are X, Y and s."""
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    x, y, z = rel_norm[:, 0], rel_norm[:, 1], rel_norm[:, 2]
    return _shift_solve(fx, fy, fx * x - du * z, du, fy * y - dv * z, dv)[2]


def scales_per_depth(uv: np.ndarray, rel_norm: np.ndarray, fx, fy, cx, cy) -> np.ndarray:
    """(B,) the least-squares scale of each hand at root depth 1 m (:func:`_scale_per_depth`)."""
    kk, uv, rel_norm = intrinsics_per_hand(fx, fy, cx, cy, len(uv)), f64(uv), f64(rel_norm)
    return np.array([_scale_per_depth(uv[b], rel_norm[b], *kk[:, b]) for b in range(len(uv))])


def fit_scales(uv: np.ndarray, rel_norm: np.ndarray, fx, fy, cx, cy, z_root: np.ndarray) -> np.ndarray:
    """Scale s of each of B hands with R + s*rel_norm best reprojecting onto its 2D landmarks at a known root depth
    ``z_root`` (B,): :func:`scales_per_depth` times ``z_root``."""
    return np.asarray(z_root, np.float64) * scales_per_depth(uv, rel_norm, fx, fy, cx, cy)


def fit_scale(uv: np.ndarray, rel_norm: np.ndarray, k: Intrinsics, z_root: float) -> float:
    """:func:`fit_scales` of one hand."""
    return float(fit_scales(uv[None], rel_norm[None], k.fx, k.fy, k.cx, k.cy, np.array([z_root]))[0])


class Placed(NamedTuple):
    """B hands placed in the camera frame."""

    joints_cam: np.ndarray  # (B, 21, 3) metres
    root: np.ndarray  # (B, 3)
    from_depth: np.ndarray  # (B,) bool: the root depth came from the depth image, else from the perspective solve
    scale: np.ndarray  # (B,) the scale used (metres per unit of the normalised hand)


@njit
def _place(uv: Arr, rel_norm: Arr, scale: Arr, kk: Arr, depth: Arr, lo: float, hi: float
           ) -> tuple[Arr, Arr, Arr, Arr]:  # fmt: skip
    """:func:`place_hands`, compiled (``depth`` (0, 0) when there is none)."""
    n_hands = len(uv)
    joints, roots = np.empty(rel_norm.shape), np.empty((n_hands, 3))
    from_depth, used = np.zeros(n_hands, np.bool_), scale.copy()
    for b in range(n_hands):
        fx, fy, cx, cy = kk[0, b], kk[1, b], kk[2, b], kk[3, b]
        z = np.nan
        if depth.shape[0] > 0:
            measured = _depth_at(depth, uv[b], 3)
            z = _root_vote(measured, rel_norm[b, :, 2], scale[b])
            if not np.isnan(z):
                per_m = _scale_per_depth(uv[b], rel_norm[b], fx, fy, cx, cy)
                for _ in range(2):  # the votes depend a little on the scale
                    used[b] = min(max(z * per_m, scale[b] * lo), scale[b] * hi)
                    z2 = _root_vote(measured, rel_norm[b, :, 2], used[b])
                    z = z if np.isnan(z2) else z2
        rel = rel_norm[b] * used[b]
        roots[b] = hand_root(uv[b], rel, fx, fy, cx, cy, z)
        joints[b] = rel + roots[b]
        from_depth[b] = not np.isnan(z)
    return joints, roots, from_depth, used


def place_hands(uv: np.ndarray, rel_norm: np.ndarray, scale: np.ndarray, k: Intrinsics,
                depth: np.ndarray | None = None, scale_range: tuple[float, float] = (0.6, 1.6)) -> Placed:  # fmt: skip
    """B hands at once: ``uv`` (B, 21, 2) px, ``rel_norm`` (B, 21, 3) the normalised wrist-relative hands, ``scale``
    (B,) their prior scale. With depth, each hand whose landmarks see enough of it gets its root depth from the
    votes and its scale from the pinhole equations at that depth (twice: the votes depend a little on the scale);
    the others, and every hand without depth, the perspective solve at the prior scale. One compiled call."""
    uv, rel_norm = f64(uv), f64(rel_norm)
    d = _NO_DEPTH if depth is None else carray(depth)
    kk = intrinsics_per_hand(k.fx, k.fy, k.cx, k.cy, len(uv))
    return Placed(*_place(uv, rel_norm, f64(np.reshape(scale, -1)), kk, d, *scale_range))


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
    return _pull(j, f64(uv), intrinsics_per_hand(fx, fy, cx, cy, len(j)), share)


@njit
def _pull(j: Arr, uv: Arr, kk: Arr, share: float) -> Arr:
    """:func:`pull_to_rays` in place on ``j``, compiled."""
    for b in range(len(j)):
        for i in range(j.shape[1]):
            z = j[b, i, 2]
            j[b, i, 0] += share * ((uv[b, i, 0] - kk[2, b]) * z / kk[0, b] - j[b, i, 0])
            j[b, i, 1] += share * ((uv[b, i, 1] - kk[3, b]) * z / kk[1, b] - j[b, i, 1])
    return j


def place_hand(uv: np.ndarray, rel_norm: np.ndarray, scale: float, k: Intrinsics, depth: np.ndarray | None = None,
               scale_range: tuple[float, float] = (0.6, 1.6)) -> tuple[np.ndarray, np.ndarray, str, float]:  # fmt: skip
    """One hand of :func:`place_hands` -> (joints_cam (21, 3), root (3,), root_source "depth"|"estimate", scale
    used)."""
    p = place_hands(np.asarray(uv)[None], np.asarray(rel_norm)[None], np.array([scale]), k, depth, scale_range)
    return p.joints_cam[0], p.root[0], "depth" if p.from_depth[0] else "estimate", float(p.scale[0])
