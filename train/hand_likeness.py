"""How hand-like MediaPipe's own networks find a hand where the truth puts it, as numbers rather than found / missed.

MediaPipe finds a hand when its palm detector scores a palm at 0.5 or more and its landmark network, reading the
region around that palm, scores the hand's presence at 0.5 or more. The detection rate counts only which side of
those lines a hand falls on, so any change of a render's pixels flips about one decision in ten both ways and 400
renders resolve no less than a few points. Here both networks are asked about the hand where the truth says it
is: the palm detector's best score for a palm there (its box centred within ``NEAR`` hand sizes of the truth's
palm, its wrist keypoint as near the truth's wrist; 0 where none scores above ``FLOOR``), and the landmark
network's presence score for the crop that tracking would take around the truth's landmarks. Averaged over the
same renders drawn two ways, they tell a small change of look apart from noise; beside the same figures on real
photographs, they say how far renders still are from looking like hands to MediaPipe.

The networks are MediaPipe's own (its palm and landmark models, run on ONNX Runtime; ``streamhand build-engine
--hand-networks`` converts them once per machine), not the graph that ``synth-report``'s detection rate uses, so
their palm rate differs from that rate by a point or two.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["FLOOR", "NEAR", "HandLikeness", "likeness_figures", "palm_at"]

#: a palm counts for the hand when its box's centre lies within this many hand sizes of the truth's palm centre
#: and its wrist keypoint within as many of the truth's wrist
NEAR = 0.35
#: palms scoring below this are not decoded (their score reads as 0)
FLOOR = 1e-3
#: scores are read as log-odds clipped to this probability from 0 and 1 (a palm not found: about -9.2)
_CLIP = 1e-4
_PALM = (0, 5, 9, 13, 17)  # the wrist and the four finger MCPs


def palm_at(palms: list[Any], landmarks_px: np.ndarray) -> float:
    """The best score among ``palms`` (:class:`streamhand.detect.palm.PalmDetection`) of one where the (21, 2)
    landmarks ``landmarks_px`` put the hand; 0 where none is there."""
    uv = np.asarray(landmarks_px, np.float64)
    size = float((uv.max(0) - uv.min(0)).max())
    centre = uv[list(_PALM)].mean(0)
    best = 0.0
    for p in palms:
        box_centre = np.asarray(p.box, np.float64).reshape(2, 2).mean(0)
        wrist = np.asarray(p.keypoints, np.float64)[0]
        if np.linalg.norm(box_centre - centre) < NEAR * size and np.linalg.norm(wrist - uv[0]) < NEAR * size:
            best = max(best, float(p.score))
    return best


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), _CLIP, 1.0 - _CLIP)
    return np.log(q / (1.0 - q))


def likeness_figures(palm: list[float], presence: list[float]) -> dict[str, Any] | None:
    """The figures of hands measured by :class:`HandLikeness` (None for none): ``n``; ``palm_found`` the share whose
    palm scores 0.5 or more; ``palm_logit_mean`` / ``palm_logit_median`` the palm scores as log-odds (clipped at
    ±9.2; 0 is the detector's line, higher is surer); ``presence_mean`` and ``presence_p10`` (its 10th
    percentile) the landmark network's presence scores."""
    if not palm:
        return None
    q, pr, lg = np.asarray(palm, np.float64), np.asarray(presence, np.float64), _logit(np.asarray(palm))
    return {"n": len(q), "palm_found": float((q >= 0.5).mean()), "palm_logit_mean": float(lg.mean()),
            "palm_logit_median": float(np.median(lg)), "presence_mean": float(pr.mean()),
            "presence_p10": float(np.percentile(pr, 10))}  # fmt: skip


class HandLikeness:
    """MediaPipe's palm and landmark networks on ONNX Runtime, asked about hands at given landmarks; collects what
    they say (:meth:`figures`). Where the networks cannot be prepared it says so once and measures nothing."""

    def __init__(self) -> None:
        self.palm: list[float] = []
        self.presence: list[float] = []
        self._net: Any = None
        try:
            from streamhand.detect.gpu_hands import NetworkHands
            from streamhand.export.hand_networks import prepare_hand_networks

            self._net = NetworkHands(max_hands=1, tracking=False, runtime="onnxruntime",
                                     models_dir=prepare_hand_networks(), threads=1)  # fmt: skip
        except Exception as e:  # the figures are extra: the report goes on without them
            log.warning("hand likeness not measured: MediaPipe's networks are not available (%s)", e)

    def __call__(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> tuple[float, float] | None:
        """(palm score, presence score) of the hand at ``landmarks_px`` (21, 2) in ``rgb`` (H, W, 3 uint8), also
        kept for :meth:`figures`; None where the networks are not available."""
        if self._net is None:
            return None
        palm = palm_at(self._net.detect_palms(rgb, min_score=FLOOR), landmarks_px)
        presence = self._net.presence_at(rgb, landmarks_px)
        if not (math.isfinite(palm) and math.isfinite(presence)):
            return None
        self.palm.append(palm)
        self.presence.append(presence)
        return palm, presence

    def figures(self) -> dict[str, Any] | None:
        """:func:`likeness_figures` of every hand measured so far."""
        return likeness_figures(self.palm, self.presence)

    def close(self) -> None:
        if self._net is not None:
            self._net.close()
            self._net = None

    def __enter__(self) -> HandLikeness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
