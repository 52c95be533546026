"""Keypoint encoding for the model and decoding of its output (kept apart from the network, as in mmpose).

Encoding: 2D pixels -> the view of a virtual camera turned to look straight at the hand (the ray through
the palm centre becomes the optical axis: a "perspective crop"), then wrist-relative, divided by the
keypoints' square extent, left hands mirrored to right ones. Decoding: the model's normalised right-hand
3D -> mirrored back for left hands, multiplied by the hand scale (reference bone length in metres),
turned back from the virtual camera to the real one -> root-relative metres in the camera frame.

Without the view rotation a hand near the image border, seen obliquely, looks like a rotated hand at the
centre, and a lifter that only sees normalised 2D cannot tell which it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamhand.geometry import intrinsic_columns
from streamhand.skeleton import MIDDLE_MCP, WRIST, canonical_hand, normalize, normalize_2d

#: how the 2D is turned before normalising (stored in checkpoints)
VIEW = "palm_ray_to_axis"
#: how a detector's own metric 3D (MediaPipe's world landmarks) is normalised (stored in checkpoints)
WORLD_NORM = "wrist_rel_palm_mean"
_PALM_MCPS = slice(5, 18, 4)  # the finger MCPs 5, 9, 13, 17 as a slice: a view, no gather
_EYE2 = np.eye(2)


def _focal(k: Any) -> np.ndarray:
    """:func:`~streamhand.geometry.intrinsic_columns` of ``k`` (anything with fx, fy, cx, cy)."""
    return intrinsic_columns(k.fx, k.fy, k.cx, k.cy)


def _rays(px: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pixels (B, J, 2) -> camera rays (B, J, 3) with z = 1; ``f``: :func:`_focal`'s."""
    ray = np.ones((*px.shape[:-1], 3))
    ray[..., 0] = (px[..., 0] - f[2]) / f[0]
    ray[..., 1] = (px[..., 1] - f[3]) / f[1]
    return ray


def view_rotation(landmarks_px: np.ndarray, k: Any) -> np.ndarray:
    """(B, 3, 3) rotations taking the ray through each hand's palm centre (wrist/middle-MCP midpoint)
    onto the optical axis, by the smallest turn."""
    return _view_rotation(np.asarray(landmarks_px, dtype=np.float64), _focal(k))


def _view_rotation(px: np.ndarray, f: np.ndarray) -> np.ndarray:
    # the unit ray (a, b, z) through the palm centre, and the turn about it x (0, 0, 1) that takes it onto the axis
    # (Rodrigues' formula, multiplied out: 1 - cos = 1 - z and sin^2 = a^2 + b^2 = (1 - z)(1 + z)); a pixel's ray
    # has z > 0. Written as whole-array operations on (B, 2) and (B, 3, 3): no per-entry stacking.
    ab = (0.5 * (px[:, WRIST] + px[:, MIDDLE_MCP]) - f[2:, :, 0].T) / f[:2, :, 0].T
    z = 1.0 / np.sqrt(1.0 + (ab * ab).sum(-1))
    ab *= z[:, None]
    rot = np.empty((len(px), 3, 3))
    rot[:, :2, :2] = _EYE2 - ab[:, :, None] * (ab / (1.0 + z)[:, None])[:, None, :]
    rot[:, :2, 2] = -ab
    rot[:, 2, :2] = ab
    rot[:, 2, 2] = z
    return rot


def to_view(landmarks_px: np.ndarray, k: Any, rot: np.ndarray) -> np.ndarray:
    """Pixels (B, 21, 2) -> the virtual camera's normalised image coordinates (B, 21, 2)."""
    return _to_view(np.asarray(landmarks_px, dtype=np.float64), _focal(k), rot)


def _to_view(px: np.ndarray, f: np.ndarray, rot: np.ndarray) -> np.ndarray:
    r = _rays(px, f) @ rot.transpose(0, 2, 1)
    return r[..., :2] / r[..., 2:3]


def encode_2d(landmarks_px: np.ndarray, left: np.ndarray | bool, k: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, 21, 2) pixels, handedness and intrinsics ``k`` -> ((B, 21, 2) float32 model input,
    (B, 3, 3) view rotations for :func:`decode_3d`). Without ``k`` the view is not turned (identity)."""
    px = np.asarray(landmarks_px, dtype=np.float64)
    if k is None:
        rot = np.broadcast_to(np.eye(3), (len(px), 3, 3)).copy()
        view = px
    else:  # the intrinsics read once for both
        f = _focal(k)
        rot = _view_rotation(px, f)
        view = _to_view(px, f, rot)
    return canonical_hand(normalize_2d(view), left).astype(np.float32), rot


def encode_3d(joints_cam: np.ndarray, left: np.ndarray | bool, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training target, the inverse of :func:`decode_3d`: camera-frame joints (B, 21, 3) metres ->
    ((B, 21, 3) normalised right-hand 3D in the virtual camera's frame, (B,) scale in metres)."""
    y3d, scale = normalize(joints_cam)
    return canonical_hand(y3d @ rot.transpose(0, 2, 1), left), scale


def palm_size(joints: np.ndarray) -> np.ndarray:
    """Mean wrist -> finger-MCP distance (..., ): a robust size of a 3D hand (the palm barely deforms)."""
    j = np.asarray(joints, dtype=np.float64)
    d = j[..., _PALM_MCPS, :] - j[..., WRIST : WRIST + 1, :]
    return np.sqrt((d * d).sum(-1)).mean(-1)


#: the share of MediaPipe's image landmarks' relative depth in the depth the world expert reads (the rest is its world
#: landmarks' depth): the weight at which the default model's 2d + world answer errs least on held-out renders labelled
#: by MediaPipe (docs/evaluation.md, "MediaPipe's two readings of depth")
IMAGE_DEPTH_WEIGHT = 0.7


def world_with_image_depth(world: np.ndarray, landmarks_px: np.ndarray, landmarks_z: np.ndarray,
                           weight: float = IMAGE_DEPTH_WEIGHT) -> np.ndarray:  # fmt: skip
    """MediaPipe's world landmarks (B, 21, 3), wrist-relative, their depth the ``weight``-ed mean of its two readings
    of the hand's depth: the world landmarks' own and its image landmarks' relative depth ``landmarks_z`` (B, 21;
    pixels, in the scale of the image's x as MediaPipe defines it, with ``landmarks_px`` (B, 21, 2)), put into metres
    by how large the hand is across the image in either (neither reading's depth enters the conversion). Its landmark
    network gives both; their errors are only partly alike."""
    w = np.asarray(world, dtype=np.float64)
    w = w - w[:, WRIST : WRIST + 1]
    if weight <= 0:
        return w
    uv = np.asarray(landmarks_px, np.float64)
    uv = uv - uv[:, WRIST : WRIST + 1]
    z = np.asarray(landmarks_z, np.float64)
    z = z - z[:, WRIST : WRIST + 1]
    metres_per_px = np.sqrt((w[..., :2] ** 2).sum((1, 2)) / np.maximum((uv**2).sum((1, 2)), 1e-12))
    w[..., 2] = (1.0 - weight) * w[..., 2] + weight * metres_per_px[:, None] * z
    return w


def encode_world(world: np.ndarray, left: np.ndarray | bool, rot: np.ndarray) -> np.ndarray:
    """A detector's metric 3D landmarks (B, 21, 3), camera axes (MediaPipe's world landmarks: x right, y down,
    z away from the camera) -> (B, 21, 3) float32 model input: wrist-relative, divided by its own palm size,
    turned into the virtual camera of :func:`encode_2d` (``rot``), left hands mirrored."""
    w = np.asarray(world, dtype=np.float64)
    w = w - w[:, WRIST : WRIST + 1]
    w = w / np.maximum(palm_size(w), 1e-9)[:, None, None]
    return canonical_hand(w @ rot.transpose(0, 2, 1), left).astype(np.float32)


#: the cloud expert's unit: clouds are centred on their centroid and divided by this (metres), so they keep
#: their metric size
CLOUD_SCALE_M = 0.1


def encode_cloud(points: np.ndarray, left: np.ndarray | bool, rot: np.ndarray) -> np.ndarray:
    """Camera-frame points of the hand (B, N, 3) metres -> (B, N, 3) float32 model input: turned into the
    virtual camera of :func:`encode_2d` (``rot``), centred on their centroid, divided by
    :data:`CLOUD_SCALE_M`, left hands mirrored."""
    p = np.asarray(points, dtype=np.float64) @ rot.transpose(0, 2, 1)
    p = (p - p.mean(1, keepdims=True)) / CLOUD_SCALE_M
    return canonical_hand(p, left).astype(np.float32)


def mirror_crops(crops: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Image crops or maps (B, C, S, S), those of left hands (``left`` (B,) bool) mirrored left to right as their
    keypoints are; float32."""
    crops = np.asarray(crops)
    return np.where(np.asarray(left, bool)[:, None, None, None], crops[..., ::-1], crops).astype(np.float32)


def decode_3d(
    pred: np.ndarray, left: np.ndarray | bool, scale: np.ndarray | float, rot: np.ndarray | None = None
) -> np.ndarray:
    """(B, 21, 3) normalised model output -> (B, 21, 3) wrist-relative metres in the camera frame."""
    s = np.asarray(scale, dtype=np.float64)
    out = canonical_hand(pred, left) * (s[..., None, None] if s.ndim else s)
    return out if rot is None else out @ rot  # row vectors: R^T v
