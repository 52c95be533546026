"""Keypoint encoding for the model and decoding of its output (kept apart from the network, as in mmpose).

Encoding: 2D pixels -> wrist-relative, divided by the keypoints' square extent, left hands mirrored
to right ones. Decoding: the model's normalised right-hand 3D -> mirrored back for left hands,
multiplied by the hand scale (reference bone length in metres) -> root-relative metres.
"""

from __future__ import annotations

import numpy as np

from streamhand.skeleton import canonical_hand, normalize_2d


def encode_2d(landmarks_px: np.ndarray, left: np.ndarray | bool) -> np.ndarray:
    """(B, 21, 2) pixels and handedness -> (B, 21, 2) float32 model input."""
    return canonical_hand(normalize_2d(landmarks_px), left).astype(np.float32)


def decode_3d(pred: np.ndarray, left: np.ndarray | bool, scale: np.ndarray | float) -> np.ndarray:
    """(B, 21, 3) normalised model output -> (B, 21, 3) wrist-relative metres."""
    s = np.asarray(scale, dtype=np.float64)
    return canonical_hand(pred, left) * (s[..., None, None] if s.ndim else s)
