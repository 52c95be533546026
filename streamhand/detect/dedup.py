"""One hand, one detection: MediaPipe sometimes reports the same hand twice (two overlapping palm detections
both tracked; its users report it as google-ai-edge/mediapipe #3902). Detections whose landmarks lie on top
of each other are merged, keeping the more confident one. Two hands close together (clasped, touching) keep
both: their landmarks differ even where their boxes overlap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

#: two detections are one hand when their landmarks are, on average, closer than this share of the hand's size
DUPLICATE_FRACTION = 0.2

D = TypeVar("D")


def hand_size_px(landmarks_px: np.ndarray) -> float:
    """The larger side of the landmarks' bounding box (pixels)."""
    span = np.ptp(np.asarray(landmarks_px, np.float64), axis=0)
    return float(max(span.max(), 1.0))


def is_duplicate(a: np.ndarray, b: np.ndarray, fraction: float = DUPLICATE_FRACTION) -> bool:
    """Whether two (21, 2) landmark sets are one hand seen twice."""
    mean_dist = float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1).mean())
    return mean_dist < fraction * min(hand_size_px(a), hand_size_px(b))


def merge_duplicates(dets: Sequence[D], fraction: float = DUPLICATE_FRACTION) -> list[D]:
    """``dets`` (with ``landmarks_px`` and ``score``) without duplicates, in their original order."""
    kept: list[int] = []
    for i in sorted(range(len(dets)), key=lambda i: -float(dets[i].score)):
        if not any(is_duplicate(dets[i].landmarks_px, dets[k].landmarks_px, fraction) for k in kept):
            kept.append(i)
    return [dets[i] for i in sorted(kept)]
