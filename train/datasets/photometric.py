"""Photometric augmentation of rendered colour crops for the image experts' training: a random tone curve,
white balance, contrast, brightness, saturation (now and then grey), local contrast or defocus, and sensor noise,
drawn per crop. Renders span a narrower range of looks than cameras do; widening it is meant to make the RGB
expert lean on the hand's shape rather than on how our renderer shades it (``DataConfig.crop_photometric``)."""

from __future__ import annotations

import cv2
import numpy as np


def photometric(rng: np.random.Generator, crops: np.ndarray, share: float) -> np.ndarray:
    """``crops`` (n, 3, S, S) float32 in [-0.5, 0.5] (the image encoders' input) -> the same with ``share`` of
    them (each drawn with that chance) given a random photometric change; the others are returned unchanged."""
    n = len(crops)
    out = crops.copy()
    pick = np.nonzero(rng.random(n) < share)[0]
    if len(pick) == 0:
        return out
    k = len(pick)
    x = np.clip(crops[pick].astype(np.float32) + 0.5, 0.0, 1.0)  # (k, 3, S, S) in [0, 1]
    x = x ** np.exp(rng.uniform(np.log(0.7), np.log(1.4), (k, 1, 1, 1))).astype(np.float32)  # tone curve
    x = x * np.exp(rng.normal(0.0, 0.08, (k, 3, 1, 1))).astype(np.float32)  # white balance
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * rng.uniform(0.7, 1.4, (k, 1, 1, 1)) + mean + rng.uniform(-0.08, 0.08, (k, 1, 1, 1))
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    sat = np.where(rng.random((k, 1, 1, 1)) < 0.1, 0.0, rng.uniform(0.5, 1.5, (k, 1, 1, 1)))
    x = luma + (x - luma) * sat
    size = x.shape[-1]
    for i, r in enumerate(rng.random(k)):
        img = np.ascontiguousarray(x[i].transpose(1, 2, 0), dtype=np.float32)
        if r < 0.3:  # local contrast: the shading's relief strengthened (an unsharp mask at a hand-part's scale)
            wide = cv2.GaussianBlur(img, (0, 0), size / 16)
            img = img + rng.uniform(0.3, 1.2) * (img - wide)
        elif r < 0.55:  # defocus
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        x[i] = np.atleast_3d(img).transpose(2, 0, 1)
    x = x + rng.normal(0.0, 1.0, x.shape).astype(np.float32) * rng.uniform(0.0, 0.02, (k, 1, 1, 1)).astype(np.float32)
    out[pick] = (np.clip(x, 0.0, 1.0) - 0.5).astype(crops.dtype)
    return out
