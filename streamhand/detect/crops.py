"""Square crops around a hand for the image encoders (RGB and depth), sized from the landmark extent, and the
point cloud of the hand seen in a depth crop (the cloud expert's input).

Two crop views (a model records which it was trained on, ``ModelConfig.crop_view``): ``box``, the image's
square box around the landmarks; ``turned``, the hand seen by the virtual camera the 2D keypoints are encoded in
(:func:`streamhand.codec.view_rotation`: its optical axis through the palm centre), a perspective warp of the
image whose depth is measured along the turned axis, so image, 2D and 3D share one view."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: a crop's side over the landmarks' larger extent (the runtime's ``detect.crop_margin`` and the training
#: recipes' ``data.crop_margin`` default to it)
CROP_MARGIN = 1.4


@dataclass(frozen=True)
class CropBox:
    """A square box in pixels: top-left (x0, y0) and side; may extend past the image (padded)."""

    x0: float
    y0: float
    side: float

    def to_crop(self, uv: np.ndarray, size: int) -> np.ndarray:
        """Map image pixels into crop pixels of a ``size`` x ``size`` crop."""
        return (np.asarray(uv) - np.array([self.x0, self.y0])) * (size / self.side)


def square_box(
    landmarks_px: np.ndarray, width: int, height: int, margin: float = CROP_MARGIN, min_side: float = 32.0
) -> CropBox:
    """Box centred on the landmarks' bounding box, side = margin x its larger extent.

    The centre is clamped into the image, so the box always covers part of it.
    """
    lm = np.asarray(landmarks_px, dtype=np.float64)
    lo, hi = lm.min(0), lm.max(0)
    c = np.clip((lo + hi) / 2, [0, 0], [width - 1, height - 1])
    side = max(float((hi - lo).max()) * margin, min_side)
    return CropBox(float(c[0] - side / 2), float(c[1] - side / 2), side)


def crop_square(image: np.ndarray, box: CropBox, size: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample ``box`` of ``image`` to ``size`` x ``size``; outside the image is zero (no data)."""
    s = size / box.side
    m = np.array([[s, 0, -box.x0 * s], [0, s, -box.y0 * s]], dtype=np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@dataclass(frozen=True)
class ViewCrop:
    """The turned view of one hand: rotation ``rot`` (camera -> virtual camera), focal length ``f`` and principal
    point ``c`` (both axes, the crop's centre) of a ``size`` x ``size`` crop."""

    rot: np.ndarray
    f: float
    c: float
    size: int


def view_crop(landmarks_px: np.ndarray, k: tuple[float, ...], size: int, margin: float = CROP_MARGIN) -> ViewCrop:
    """The turned crop of a hand with landmarks (21, 2) seen through intrinsics ``k`` (fx, fy, cx, cy): centred
    on the palm centre's ray, wide enough for ``margin`` x the landmarks' largest offset from it."""
    from streamhand.codec import to_view, view_rotation

    cam = _Cam(*k)
    lm = np.asarray(landmarks_px, dtype=np.float64)[None]
    rot = view_rotation(lm, cam)
    h = max(float(np.abs(to_view(lm, cam, rot)).max()), 1e-3)
    return ViewCrop(rot[0], size / (2.0 * h * margin), (size - 1) / 2.0, size)


@dataclass(frozen=True)
class _Cam:
    fx: float
    fy: float
    cx: float
    cy: float


def warp_view(image: np.ndarray, vc: ViewCrop, k: tuple[float, ...], depth: bool = False) -> np.ndarray:
    """``image`` seen in the turned crop ``vc`` (a homography; outside the image is zero). With ``depth`` the
    values (metres along the camera's axis, resampled nearest) become depths along the turned axis."""
    fx, fy, cx, cy = k
    kin = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    kv = np.array([[vc.f, 0, vc.c], [0, vc.f, vc.c], [0, 0, 1.0]])
    h = kv @ vc.rot @ np.linalg.inv(kin)
    flags = cv2.INTER_NEAREST if depth else cv2.INTER_LINEAR
    out = cv2.warpPerspective(image, h, (vc.size, vc.size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if depth:  # a point at camera depth Z on the crop ray r_v (z_v = 1) lies at Z / (R^T r_v)_z along the turned axis
        g = np.arange(vc.size, dtype=np.float64)
        rv = np.stack([*np.meshgrid((g - vc.c) / vc.f, (g - vc.c) / vc.f), np.ones((vc.size, vc.size))], -1)
        out = (out / (rv @ vc.rot)[..., 2]).astype(np.float32)
    return out


def crop_intrinsics(box: CropBox, size: int, fx: float, fy: float, cx: float, cy: float) -> tuple[float, ...]:
    """The pinhole intrinsics (fx, fy, cx, cy) of a ``size`` x ``size`` crop of ``box`` from an image with
    intrinsics (fx, fy, cx, cy)."""
    s = size / box.side
    return fx * s, fy * s, (cx - box.x0) * s, (cy - box.y0) * s


#: side of the depth crop a point cloud is taken from (about 1 000 pixels of hand at the runtime's margin)
CLOUD_CROP = 48
#: depth behind the hand's nearest surface (its crop's 5th percentile) that still counts as hand
CLOUD_DEPTH_SPAN_M = 0.15


def has_depth(depth_m: np.ndarray) -> np.ndarray:
    """Where a depth image (metres) holds a distance: 0, NaN and infinity are no data."""
    return np.isfinite(depth_m) & (depth_m > 0)


def depth_cloud(depth_m: np.ndarray, k: tuple[float, ...], n: int = 256) -> np.ndarray:
    """The hand's points in a depth crop (S, S metres; 0, NaN or infinity = no data) with intrinsics ``k`` (fx, fy,
    cx, cy) -> (n, 3) camera-frame metres: pixels within :data:`CLOUD_DEPTH_SPAN_M` of the nearest surface, back-
    projected, ``n`` of them drawn without replacement by a fixed-seed generator (all of them, repeated, when
    fewer; zeros when there are none), so the same crop always gives the same cloud. (Evenly spaced picks in pixel
    order alias with the crop's rows: a stride equal to the crop's width is a single column.)"""
    valid = has_depth(depth_m)
    if not valid.any():
        return np.zeros((n, 3), np.float32)
    near = float(np.percentile(depth_m[valid], 5))
    v, u = np.nonzero(valid & (depth_m <= near + CLOUD_DEPTH_SPAN_M))
    if len(v) >= n:
        pick = np.sort(np.random.default_rng(0).choice(len(v), n, replace=False))
    else:
        pick = np.resize(np.arange(len(v)), n)
    z = depth_m[v[pick], u[pick]].astype(np.float64)
    fx, fy, cx, cy = k
    return np.stack([(u[pick] - cx) / fx * z, (v[pick] - cy) / fy * z, z], -1).astype(np.float32)


def keypoint_heatmaps(kp_crop: np.ndarray, size: int, sigma: float = 1.0) -> np.ndarray:
    """Keypoints (J, 2) in crop pixels of a ``size`` x ``size`` map -> (J, size, size) Gaussian maps, peak 1."""
    g = np.arange(size, dtype=np.float32)
    dx = (g[None, :] - kp_crop[:, :1]) ** 2  # (J, S)
    dy = (g[None, :] - kp_crop[:, 1:2]) ** 2
    return np.exp(-(dy[:, :, None] + dx[:, None, :]) / (2 * sigma**2)).astype(np.float32)


def normalise_rgb(crop: np.ndarray) -> np.ndarray:
    """An RGB uint8 crop (S, S, 3) -> the image encoders' input (3, S, S) float32 in [-0.5, 0.5]."""
    return (crop.astype(np.float32) / 255.0 - 0.5).transpose(2, 0, 1)


def normalise_depth(crop_m: np.ndarray, span_m: float = 0.3, behind_m: float = 0.05) -> np.ndarray:
    """A depth crop in metres (S, S; 0, NaN or infinity = no data) -> (1, S, S) float32 in [-0.5, 0.5]: depth
    relative to the hand, divided by ``span_m``; no data reads as 0.5 (far). The hand is the nearest thing in its
    crop, so the reference is ``behind_m`` behind the crop's 5th-percentile depth (its nearest surface, past
    flying pixels), not the crop's median, which is mostly background: the hand's own relief keeps its range and
    the scene behind it saturates at 0.5."""
    valid = has_depth(crop_m)
    ref = float(np.percentile(crop_m[valid], 5)) + behind_m if valid.any() else 0.0
    return np.where(valid, np.clip((crop_m - ref) / span_m, -0.5, 0.5), 0.5).astype(np.float32)[None]


def hand_crops(rgb: np.ndarray, depth: np.ndarray | None, landmarks_px: list[np.ndarray], modalities: tuple[str, ...],
               size: int, margin: float = CROP_MARGIN, k: tuple[float, ...] | None = None,
               cloud_points: int = 256, view: str = "box") -> dict[str, np.ndarray]:  # fmt: skip
    """The image encoders' inputs for each hand of a frame, boxed around its landmarks: ``rgb`` (n, 3, S, S),
    ``depth`` (n, 1, S, S, from ``depth`` in metres, resampled nearest so holes stay holes) and ``cloud`` (n, P, 3
    camera-frame metres from a :data:`CLOUD_CROP` depth crop; needs the frame's intrinsics ``k``: fx, fy, cx,
    cy) for those of ``modalities`` the frame has. ``view``: the crops' view, ``box`` or ``turned`` (needs ``k``)."""
    if view == "turned" and k is None:
        raise ValueError("turned crops need the camera's intrinsics")
    out: dict[str, list[np.ndarray]] = {m: [] for m in ("rgb", "depth", "cloud") if m in modalities}
    h, w = rgb.shape[:2]
    for lm in landmarks_px:
        box = square_box(lm, w, h, margin)
        vc = view_crop(lm, k, size, margin) if view == "turned" and k is not None else None
        if "rgb" in out:
            out["rgb"].append(normalise_rgb(crop_square(rgb, box, size) if vc is None else warp_view(rgb, vc, k)))
        if "depth" in out and depth is not None:
            d = crop_square(depth, box, size, cv2.INTER_NEAREST) if vc is None else warp_view(depth, vc, k, True)
            out["depth"].append(normalise_depth(d))
        if "cloud" in out and depth is not None and k is not None:
            near = crop_square(depth, box, CLOUD_CROP, interpolation=cv2.INTER_NEAREST)
            out["cloud"].append(depth_cloud(near, crop_intrinsics(box, CLOUD_CROP, *k), cloud_points))
    return {k: np.stack(v) for k, v in out.items() if v}
