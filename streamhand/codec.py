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

from streamhand.geometry import intrinsics_per_hand
from streamhand.jit import carray, f64, njit
from streamhand.skeleton import MIDDLE_MCP, WRIST, canonical_hand, normalize

#: how the 2D is turned before normalising (stored in checkpoints)
VIEW = "palm_ray_to_axis"
#: how a detector's own metric 3D (MediaPipe's world landmarks) is normalised (stored in checkpoints)
WORLD_NORM = "wrist_rel_palm_mean"
_PALM_MCPS = slice(5, 18, 4)  # the finger MCPs 5, 9, 13, 17 as a slice: a view, no gather
_NO_CAMERA, _NO_TURN = np.empty((4, 0)), np.empty((0, 3, 3))
Arr = np.ndarray  # the compiled arithmetic's arguments


def view_rotation(landmarks_px: np.ndarray, k: Any) -> np.ndarray:
    """(B, 3, 3) rotations taking the ray through each hand's palm centre (wrist/middle-MCP midpoint)
    onto the optical axis, by the smallest turn (Rodrigues' formula multiplied out: :func:`_encode_2d`)."""
    return encode_2d(landmarks_px, False, k)[1]


def to_view(landmarks_px: np.ndarray, k: Any, rot: np.ndarray) -> np.ndarray:
    """Pixels (B, 21, 2) -> the virtual camera's normalised image coordinates (B, 21, 2)."""
    px = f64(landmarks_px)
    return _to_view(px, intrinsics_per_hand(k.fx, k.fy, k.cx, k.cy, len(px)), f64(rot))


@njit
def _turned(px: Arr, fx: float, fy: float, cx: float, cy: float, rot: Arr, out: Arr) -> None:
    """One hand's pixels (J, 2) through the camera turned by ``rot`` (3, 3): normalised image coordinates into
    ``out`` (J, 2)."""
    for j in range(px.shape[0]):
        u, v = (px[j, 0] - cx) / fx, (px[j, 1] - cy) / fy
        r0 = rot[0, 0] * u + rot[0, 1] * v + rot[0, 2]
        r1 = rot[1, 0] * u + rot[1, 1] * v + rot[1, 2]
        r2 = rot[2, 0] * u + rot[2, 1] * v + rot[2, 2]
        out[j, 0], out[j, 1] = r0 / r2, r1 / r2


@njit
def _to_view(px: Arr, f: Arr, rot: Arr) -> Arr:
    """:func:`to_view`, compiled (``f`` (4, B) fx, fy, cx, cy per hand)."""
    out = np.empty((px.shape[0], px.shape[1], 2))
    for b in range(px.shape[0]):
        _turned(px[b], f[0, b], f[1, b], f[2, b], f[3, b], rot[b], out[b])
    return out


def encode_2d(landmarks_px: np.ndarray, left: np.ndarray | bool, k: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, 21, 2) pixels, handedness and intrinsics ``k`` -> ((B, 21, 2) float32 model input,
    (B, 3, 3) view rotations for :func:`decode_3d`). Without ``k`` the view is not turned (identity). One compiled
    call: the view rotation, :func:`to_view`, :func:`~streamhand.skeleton.normalize_2d` and
    :func:`~streamhand.skeleton.canonical_hand`, as ``tests/test_codec.py`` checks."""
    px = f64(landmarks_px)
    f = _NO_CAMERA if k is None else intrinsics_per_hand(k.fx, k.fy, k.cx, k.cy, len(px))
    return _encode_2d(px, f, _lefts(left, len(px)))


def _lefts(left: np.ndarray | bool, b: int) -> np.ndarray:
    """(b,) bool: which hands are left ones."""
    return carray(np.broadcast_to(np.asarray(left, dtype=bool), (b,)))


@njit
def _encode_2d(px: Arr, f: Arr, left: Arr) -> tuple[Arr, Arr]:
    """:func:`encode_2d`, compiled (``f`` (4, B) fx, fy, cx, cy per hand, or (4, 0): no view rotation)."""
    n_hands, n = px.shape[0], px.shape[1]
    x, rot, view = np.empty((n_hands, n, 2), np.float32), np.zeros((n_hands, 3, 3)), np.empty((n, 2))
    for b in range(n_hands):
        if f.shape[1] == 0:
            rot[b, 0, 0] = rot[b, 1, 1] = rot[b, 2, 2] = 1.0
            view[:] = px[b]
        else:  # the smallest turn taking the ray through the palm centre onto the axis (Rodrigues' formula)
            fx, fy, cx, cy = f[0, b], f[1, b], f[2, b], f[3, b]
            ra = (0.5 * (px[b, WRIST, 0] + px[b, MIDDLE_MCP, 0]) - cx) / fx
            rb = (0.5 * (px[b, WRIST, 1] + px[b, MIDDLE_MCP, 1]) - cy) / fy
            z = 1.0 / np.sqrt(1.0 + (ra * ra + rb * rb))
            ra, rb = ra * z, rb * z
            rot[b, 0, 0], rot[b, 0, 1] = 1.0 - ra * (ra / (1.0 + z)), -ra * (rb / (1.0 + z))
            rot[b, 1, 0], rot[b, 1, 1] = -rb * (ra / (1.0 + z)), 1.0 - rb * (rb / (1.0 + z))
            rot[b, 0, 2], rot[b, 1, 2], rot[b, 2, 0], rot[b, 2, 1], rot[b, 2, 2] = -ra, -rb, ra, rb, z
            _turned(px[b], fx, fy, cx, cy, rot[b], view)
        span = max(view[:, 0].max() - view[:, 0].min(), view[:, 1].max() - view[:, 1].min())
        extent, sign = max(span, 1e-6), -1.0 if left[b] else 1.0
        for j in range(n):  # wrist-relative, over the square extent, left hands mirrored
            x[b, j, 0] = sign * ((view[j, 0] - view[0, 0]) / extent)
            x[b, j, 1] = (view[j, 1] - view[0, 1]) / extent
    return x, rot


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
    return _world_with_image_depth(f64(world), f64(landmarks_px), f64(landmarks_z), weight)


@njit
def _world_with_image_depth(world: Arr, uv: Arr, z: Arr, weight: float) -> Arr:
    """:func:`world_with_image_depth`, compiled."""
    w = np.empty(world.shape)
    for b in range(len(world)):
        w[b] = world[b] - world[b, WRIST]
        if weight <= 0:
            continue
        across_m = across_px = 0.0  # the hand's spread across the image, in metres and in pixels
        for j in range(world.shape[1]):
            du, dv = uv[b, j, 0] - uv[b, WRIST, 0], uv[b, j, 1] - uv[b, WRIST, 1]
            across_m += w[b, j, 0] * w[b, j, 0] + w[b, j, 1] * w[b, j, 1]
            across_px += du * du + dv * dv
        metres_per_px = np.sqrt(across_m / max(across_px, 1e-12))
        for j in range(world.shape[1]):
            image_z = metres_per_px * (z[b, j] - z[b, WRIST])
            w[b, j, 2] = (1.0 - weight) * w[b, j, 2] + weight * image_z
    return w


def encode_world(world: np.ndarray, left: np.ndarray | bool, rot: np.ndarray) -> np.ndarray:
    """A detector's metric 3D landmarks (B, 21, 3), camera axes (MediaPipe's world landmarks: x right, y down,
    z away from the camera) -> (B, 21, 3) float32 model input: wrist-relative, divided by its own palm size
    (:func:`palm_size`), turned into the virtual camera of :func:`encode_2d` (``rot``), left hands mirrored. One
    compiled call."""
    w = f64(world)
    return _encode_world(w, _lefts(left, len(w)), f64(rot))


@njit
def _encode_world(world: Arr, left: Arr, rot: Arr) -> Arr:
    """:func:`encode_world`, compiled."""
    out = np.empty(world.shape, np.float32)
    for b in range(len(world)):
        w = world[b] - world[b, WRIST]
        palm = 0.0
        for j in (5, 9, 13, 17):  # the finger MCPs
            palm += np.sqrt(w[j, 0] * w[j, 0] + w[j, 1] * w[j, 1] + w[j, 2] * w[j, 2])
        w = w / max(palm / 4.0, 1e-9)
        sign = -1.0 if left[b] else 1.0
        for j in range(len(w)):
            for i in range(3):  # row vectors turned: w @ rot^T
                t = w[j, 0] * rot[b, i, 0] + w[j, 1] * rot[b, i, 1] + w[j, 2] * rot[b, i, 2]
                out[b, j, i] = sign * t if i == 0 else t
    return out


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
    p = np.asarray(pred, dtype=np.float64)
    lead = p.shape[:-2]
    flat = f64(p.reshape(-1, *p.shape[-2:]))
    b = len(flat)
    s = f64(np.broadcast_to(np.asarray(scale, np.float64), lead).reshape(b))
    turn = _NO_TURN if rot is None else f64(np.reshape(rot, (b, 3, 3)))
    return _decode_3d(flat, carray(np.broadcast_to(np.asarray(left, bool), lead).reshape(b)), s,
                      turn).reshape(p.shape)  # fmt: skip


@njit
def _decode_3d(pred: Arr, left: Arr, scale: Arr, rot: Arr) -> Arr:
    """:func:`decode_3d`, compiled (``rot`` (0, 3, 3): not turned)."""
    out = np.empty(pred.shape)
    for b in range(len(pred)):
        sign = -1.0 if left[b] else 1.0
        for j in range(pred.shape[1]):
            v0, v1, v2 = sign * pred[b, j, 0] * scale[b], pred[b, j, 1] * scale[b], pred[b, j, 2] * scale[b]
            if rot.shape[0] == 0:
                out[b, j, 0], out[b, j, 1], out[b, j, 2] = v0, v1, v2
            else:  # row vectors: R^T v
                for i in range(3):
                    out[b, j, i] = v0 * rot[b, 0, i] + v1 * rot[b, 1, i] + v2 * rot[b, 2, i]
    return out
