"""Batches for image experts from the published datasets' images (RHD colour and depth, STB colour): Spurr's
crop and a paper's augmentation (:func:`train.datasets.images.image_sample`), the 2D in the crop seen through
the crop's own intrinsics, so keypoints, 3D and image are encoded exactly as for rendered hands; left hands'
crops are mirrored like their keypoints. Yang et al.'s targets come from the same crop: the depth crop's point
cloud back-projected through the crop's intrinsics (as the runtime takes it) and the keypoints' heatmaps.
Training takes RHD's training split and STB's B2-B6, evaluation RHD's evaluation split and STB's B1, without
augmentation."""

from __future__ import annotations

import numpy as np
import torch

from streamhand.codec import encode_cloud, mirror_crops
from streamhand.detect.crops import depth_cloud, keypoint_heatmaps, normalise_depth
from streamhand.synth.sampler import IntrinsicsBatch
from train.config import DataConfig
from train.datasets.images import AUGMENTATIONS, ImageHandSet, image_sample, load_rhd_images, load_stb_images
from train.datasets.pairs import PoseBatch, encode_pairs
from train.datasets.published import concat_hands, split_parts

_CACHE: dict[tuple, ImageHandSet] = {}


def published_images(cfg: DataConfig, split: str) -> ImageHandSet:
    """``split`` "train" or "test" of ``cfg.kind``'s images; a missing file is named (ImageDataError)."""
    key = (cfg.kind, cfg.rhd_root, cfg.stb_root, split)
    if key not in _CACHE:
        sets = split_parts(cfg, split, load_rhd_images, load_stb_images)
        hands = concat_hands([s.hands for s in sets], cfg.kind)
        _CACHE[key] = ImageHandSet(hands, [p for s in sets for p in s.images], [p for s in sets for p in s.depths])
    return _CACHE[key]


def image_pairs(rng: np.random.Generator, cfg: DataConfig, n: int, split: str = "train", augment: bool = True,
                noise_px: float | None = None) -> PoseBatch:  # fmt: skip
    """``n`` hands drawn with replacement (training, augmented) or the split's first ``n`` (evaluation)."""
    ds = published_images(cfg, split)
    idx = rng.integers(0, len(ds), n) if augment else np.arange(min(n, len(ds)))
    aug = AUGMENTATIONS[cfg.augment] if augment else None
    got = [image_sample(ds, int(i), rng if augment else None, aug, cfg.crop_size) for i in idx]
    left = np.array([bool(g["left"]) for g in got])
    k = np.stack([g["k"] for g in got])
    cams = IntrinsicsBatch(cfg.crop_size, cfg.crop_size, k[:, 0], k[:, 1], k[:, 2], k[:, 3])
    batch = encode_pairs(rng, np.stack([g["joints_cam"] for g in got]), np.stack([g["kp2d"] for g in got]),
                         np.ones((len(got), 21), bool), left, cams, cfg.model_copy(update={"crops": []}),
                         noise_px)  # fmt: skip
    images = {}
    if "rgb" in cfg.crops:
        images["rgb"] = np.stack([g["rgb"] for g in got])
    if "depth" in cfg.crops:
        images["depth"] = np.stack([normalise_depth(g["depth"][0]) for g in got])
    if "heatmap" in cfg.crops:
        h, s = cfg.heatmap_size, cfg.crop_size
        images["heatmap"] = np.stack([keypoint_heatmaps((g["kp2d"] + 0.5) * h / s - 0.5, h) for g in got])
    for m, v in images.items():  # left hands' crops and maps mirrored like their keypoints
        batch.images[m] = torch.from_numpy(mirror_crops(v, left))
    if "cloud" in cfg.crops:  # camera-frame points; encode_cloud mirrors left hands
        cloud = np.stack([depth_cloud(g["depth"][0], tuple(g["k"]), cfg.cloud_points) for g in got])
        batch.images["cloud"] = torch.from_numpy(encode_cloud(cloud, left, batch.rot))
    return batch
