"""One hand, one detection: MediaPipe sometimes reports the same hand twice (two overlapping palm detections
both tracked; its users report it as google-ai-edge/mediapipe #3902). Detections whose landmarks lie on top
of each other are merged, keeping the more confident one; so are two of the same label and the same turn in the image
where one lies within the other and their landmarks are near, a stale tracked copy of a hand that moved (MediaPipe
keeps tracking where a hand was as it comes back into view, and finds it anew beside). Two hands close together
(clasped, touching) keep both: their landmarks differ even where their boxes overlap, and they are two labels, or,
named alike by a detector's slip, mirror images of each other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

#: two detections are one hand when their landmarks are, on average, closer than this share of the hand's size
DUPLICATE_FRACTION = 0.2
#: ... or, for two of the same label, when the smaller landmark box lies this much inside the larger ...
CONTAINED_SHARE = 0.85
#: ... and their landmarks are closer than this share of the hand's size
CONTAINED_FRACTION = 0.45

D = TypeVar("D")


def hand_size_px(landmarks_px: np.ndarray) -> float:
    """The larger side of the landmarks' bounding box (pixels)."""
    span = np.ptp(np.asarray(landmarks_px, np.float64), axis=0)
    return float(max(span.max(), 1.0))


def _inside_share(a: np.ndarray, b: np.ndarray) -> float:
    """The share of the smaller of the two landmark sets' bounding boxes that lies inside the other's."""
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.maximum(hi - lo, 0.0)))
    smaller = min(float(np.prod(np.maximum(np.ptp(p, axis=0), 1.0))) for p in (a, b))
    return inter / smaller


def _turn(p: np.ndarray) -> float:
    """The sign of the palm's turn in the image (wrist -> index MCP against wrist -> pinky MCP): a hand and its mirror
    image, the other hand seen from the same side, turn opposite ways."""
    (ax, ay), (bx, by) = p[5] - p[0], p[17] - p[0]
    return float(np.sign(ax * by - ay * bx))


def is_duplicate(a: np.ndarray, b: np.ndarray, fraction: float = DUPLICATE_FRACTION, same_label: bool = False) -> bool:
    """Whether two (21, 2) landmark sets are one hand seen twice (``same_label``: the detector gave both one label)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mean_dist = float(np.linalg.norm(a - b, axis=1).mean())
    size = min(hand_size_px(a), hand_size_px(b))
    if mean_dist < fraction * size:
        return True
    return (same_label and mean_dist < CONTAINED_FRACTION * size and _inside_share(a, b) >= CONTAINED_SHARE
            and _turn(a) == _turn(b))  # fmt: skip


def merge_duplicates(dets: Sequence[D], fraction: float = DUPLICATE_FRACTION) -> list[D]:
    """``dets`` (with ``landmarks_px``, ``score`` and ``handedness``) without duplicates, in their original order."""
    kept: list[int] = []
    for i in sorted(range(len(dets)), key=lambda i: -float(dets[i].score)):
        label = getattr(dets[i], "handedness", None)
        if not any(is_duplicate(dets[i].landmarks_px, dets[k].landmarks_px, fraction,
                                label is not None and getattr(dets[k], "handedness", None) == label)
                   for k in kept):  # fmt: skip
            kept.append(i)
    return [dets[i] for i in sorted(kept)]
