"""A training batch and how hands become one: detector-like 2D noise, simulated world landmarks and the encoding
of hands (synthetic or a published dataset's) into model inputs and targets (:class:`PoseBatch`). The synthetic
stream (:mod:`train.datasets.synthetic`) and the published datasets' images both build on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from streamhand.codec import encode_2d, encode_3d, encode_cloud, encode_world, palm_size, to_view
from streamhand.geometry import axis_angle
from streamhand.skeleton import PARENTS, canonical_hand, keypoint_extent, normalize_2d
from streamhand.synth.sampler import IntrinsicsBatch
from train.config import DataConfig, NoiseConfig, WorldNoiseConfig


@dataclass
class PoseBatch:
    x2d: torch.Tensor  # (B, 21, 2) normalised noisy 2D (encoder input)
    xworld: torch.Tensor  # (B, 21, 3) a detector's 3D (simulated or MediaPipe's), encoded (encoder input)
    y2d: torch.Tensor  # (B, 21, 2) normalised clean 2D (decoder target)
    y3d: torch.Tensor  # (B, 21, 3) normalised 3D in the virtual camera's frame
    rot: np.ndarray  # (B, 3, 3) camera -> virtual camera (from the noisy 2D, as at run time)
    joints_cam: np.ndarray  # (B, 21, 3) metres
    scale: np.ndarray  # (B,) reference bone length (metres)
    left: np.ndarray  # (B,) bool; x2d/y2d/y3d are mirrored to right hands where True
    #: "rgb" (B, 3, S, S) / "depth" (B, 1, S, S) crops as the runtime makes them, "cloud" (B, P, 3) the depth
    #: crop's points (encoded), "heatmap" (B, 21, H, H) the true 2D's maps (``DataConfig.crops``)
    images: dict[str, torch.Tensor] = field(default_factory=dict)

    def take(self, s: slice | np.ndarray) -> PoseBatch:
        """The samples ``s`` picks: a slice, or an array of indices."""
        return PoseBatch(self.x2d[s], self.xworld[s], self.y2d[s], self.y3d[s], self.rot[s], self.joints_cam[s],
                         self.scale[s], self.left[s], {k: v[s] for k, v in self.images.items()})  # fmt: skip

    @staticmethod
    def concat(parts: list[PoseBatch]) -> PoseBatch:
        """One batch of ``parts``' samples, in order."""

        def cat(f: str) -> torch.Tensor | np.ndarray:
            v = [getattr(p, f) for p in parts]
            return torch.cat(v) if isinstance(v[0], torch.Tensor) else np.concatenate(v)

        names = ("x2d", "xworld", "y2d", "y3d", "rot", "joints_cam", "scale", "left")
        images = {k: torch.cat([p.images[k] for p in parts]) for k in parts[0].images}
        return PoseBatch(*(cat(f) for f in names), images)


def detector_noise(rng: np.random.Generator, kp: np.ndarray, visible: np.ndarray, cfg: NoiseConfig) -> np.ndarray:
    """Add noise proportional to the hand's pixel extent, larger for hidden joints, with rare outliers."""
    n = kp.shape[0]
    ext = keypoint_extent(kp)
    sigma = np.maximum(ext * rng.uniform(*cfg.rel_sigma, n), cfg.min_px)[:, None]
    sigma = sigma * np.where(visible, 1.0, cfg.hidden_extra)
    noisy = kp + rng.normal(size=kp.shape) * sigma[..., None]
    out = rng.random(visible.shape) < cfg.outlier_prob
    noisy[out] += rng.normal(size=(int(out.sum()), 2)) * (cfg.outlier_rel * np.repeat(ext, 21)[out.ravel()])[:, None]
    return noisy


def simulated_world(rng: np.random.Generator, joints_cam: np.ndarray, cfg: WorldNoiseConfig) -> np.ndarray:
    """(n, 21, 3) metres -> a monocular detector's wrist-relative metric 3D guess, camera axes (see
    :class:`train.config.WorldNoiseConfig`)."""
    n = len(joints_cam)
    rel = joints_cam - joints_cam[:, :1]
    bones = rel - rel[:, [max(p, 0) for p in PARENTS]]  # child minus parent (the wrist's own: 0)
    bones = bones * (1 + rng.normal(0, cfg.bone_rel, (n, 21, 1)))
    out = np.zeros_like(rel)
    for j in range(1, 21):
        out[:, j] = out[:, PARENTS[j]] + bones[:, j]
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    turn = axis_angle(axes, np.deg2rad(rng.normal(0, cfg.rot_deg, n)))  # (n, 3, 3), one batched call
    out = out @ turn.transpose(0, 2, 1)
    sigma = cfg.joint_rel * palm_size(rel)[:, None, None] * np.array([1.0, 1.0, cfg.depth_extra])
    return out + rng.normal(size=out.shape) * sigma


def _into_rows(v: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, *v.shape[1:]), v.dtype)
    out[rows] = v
    return out


def encode_pairs(
    rng: np.random.Generator,
    joints_cam: np.ndarray,
    joints_2d: np.ndarray,
    visible: np.ndarray,
    left: np.ndarray,
    intrinsics: IntrinsicsBatch,
    cfg: DataConfig,
    noise_px: float | None = None,
    crop_rows: np.ndarray | None = None,
) -> PoseBatch:
    """Hands with their 2D (synthetic or a dataset's) -> model inputs and targets, with detector-like 2D noise
    (or ``noise_px`` Gaussian pixels) and simulated world landmarks. ``crop_rows``: the only samples whose crops
    are rendered (the rest stay zero, for crops that replace them; default: every sample's)."""
    if noise_px is None:
        kp = detector_noise(rng, joints_2d, visible, cfg.noise)
    else:
        kp = joints_2d + rng.normal(0, noise_px, joints_2d.shape)
    x2d, rot = encode_2d(kp, left, intrinsics)
    y3d, scale = encode_3d(joints_cam, left, rot)
    clean = canonical_hand(normalize_2d(to_view(joints_2d, intrinsics, rot)), left)
    xw = encode_world(simulated_world(rng, joints_cam, cfg.world_noise), left, rot)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float32))

    images = {}
    if cfg.crops:
        from streamhand.synth.crops import render_crops

        r = slice(None) if crop_rows is None else np.asarray(crop_rows)
        cams = intrinsics if crop_rows is None else intrinsics.take(r)
        crops = render_crops(rng, joints_cam[r], kp[r], left[r], cams, cfg.width, cfg.height,
                             list(cfg.crops), cfg.crop_size, cfg.crop_margin, joints_2d[r], cfg.heatmap_size,
                             cfg.cloud_points, cfg.crop_view)  # fmt: skip
        if "cloud" in crops:
            crops["cloud"] = encode_cloud(crops["cloud"], left[r], rot[r])
        if crop_rows is not None:  # the other samples' crops are left for the caller's to replace
            crops = {k: _into_rows(v, r, len(left)) for k, v in crops.items()}
        images = {k: torch.from_numpy(v) for k, v in crops.items()}
    return PoseBatch(t(x2d), t(xw), t(clean), t(y3d), rot, joints_cam, scale, left, images)
