"""Synthetic 2D/3D pairs from :mod:`streamhand.synth`, with detector-like 2D noise, generated in seeded chunks.

Keypoints are in the model's frames: seen by a virtual camera turned toward the hand (see
:mod:`streamhand.codec`), normalised, and left hands mirrored to right ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from streamhand.codec import encode_2d, encode_3d, to_view
from streamhand.skeleton import canonical_hand, keypoint_extent, normalize_2d
from streamhand.synth.sampler import IntrinsicsBatch, SamplerConfig, sample_hands
from train.config import DataConfig, NoiseConfig


@dataclass
class PoseBatch:
    x2d: torch.Tensor  # (B, 21, 2) normalised noisy 2D (encoder input)
    y2d: torch.Tensor  # (B, 21, 2) normalised clean 2D (decoder target)
    y3d: torch.Tensor  # (B, 21, 3) normalised 3D in the virtual camera's frame
    rot: np.ndarray  # (B, 3, 3) camera -> virtual camera (from the noisy 2D, as at run time)
    joints_cam: np.ndarray  # (B, 21, 3) metres
    scale: np.ndarray  # (B,) reference bone length (metres)
    left: np.ndarray  # (B,) bool; x2d/y2d/y3d are mirrored to right hands where True


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


def make_pairs(rng: np.random.Generator, n: int, cfg: DataConfig, noise_px: float | None = None) -> PoseBatch:
    """``n`` samples; ``noise_px`` replaces the detector-like noise by fixed Gaussian pixels (evaluation)."""
    sc = SamplerConfig(
        width=cfg.width,
        height=cfg.height,
        depth_range=cfg.depth_range,
        facing_fraction=cfg.facing_fraction,
        gesture_fraction=cfg.gesture_fraction,
    )
    hs = sample_hands(rng, n, sc)
    if noise_px is None:
        kp = detector_noise(rng, hs.joints_2d, hs.visible, cfg.noise)
    else:
        kp = hs.joints_2d + rng.normal(0, noise_px, hs.joints_2d.shape)
    left = hs.left
    x2d, rot = encode_2d(kp, left, hs.intrinsics)
    y3d, scale = encode_3d(hs.joints_cam, left, rot)
    clean = canonical_hand(normalize_2d(to_view(hs.joints_2d, hs.intrinsics, rot)), left)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float32))

    return PoseBatch(t(x2d), t(clean), t(y3d), rot, hs.joints_cam, scale, left)


def mix_mediapipe(rng: np.random.Generator, data: PoseBatch, mp: dict[str, np.ndarray], fraction: float) -> None:
    """Replace a ``fraction`` of ``data``'s inputs by MediaPipe-labelled hands (in place)."""
    n = len(data.scale)
    k = int(round(fraction * n))
    if k == 0 or len(mp["left"]) == 0:
        return
    dst = rng.choice(n, k, replace=False)
    src = rng.integers(0, len(mp["left"]), k)
    left = mp["left"][src]
    k = IntrinsicsBatch(0, 0, *(mp[a][src] for a in ("fx", "fy", "cx", "cy")))
    x2d, rot = encode_2d(mp["landmarks"][src], left, k)
    y3d, scale = encode_3d(mp["joints_cam"][src], left, rot)
    data.x2d[dst] = torch.from_numpy(x2d)
    data.y3d[dst] = torch.from_numpy(y3d.astype(np.float32))
    data.y2d[dst] = data.x2d[dst]  # MediaPipe's 2D is the 2D target too
    data.joints_cam[dst], data.scale[dst], data.left[dst], data.rot[dst] = mp["joints_cam"][src], scale, left, rot


def batches(
    seed: int, cfg: DataConfig, batch_size: int, start_step: int = 0, mediapipe: dict[str, np.ndarray] | None = None
) -> Iterator[PoseBatch]:
    """Endless batches; chunk ``c`` is drawn from ``default_rng([seed, c])`` so resuming is exact."""
    per_chunk = max(1, cfg.chunk // batch_size)
    c = start_step // per_chunk
    skip = start_step % per_chunk
    while True:
        rng = np.random.default_rng([seed, c])
        data = make_pairs(rng, per_chunk * batch_size, cfg)
        if mediapipe is not None:
            mix_mediapipe(rng, data, mediapipe, cfg.mediapipe_fraction)
        for i in range(skip, per_chunk):
            s = slice(i * batch_size, (i + 1) * batch_size)
            yield PoseBatch(data.x2d[s], data.y2d[s], data.y3d[s], data.rot[s], data.joints_cam[s], data.scale[s],
                            data.left[s])  # fmt: skip
        skip = 0
        c += 1
