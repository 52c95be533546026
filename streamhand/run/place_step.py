"""The pipeline's placing step: each lifted hand put in metres in the camera frame (:func:`place_hand`: perspective
solve or depth) and smoothed along its track, as a typed :class:`PlacedHand` — what the emitter publishes and
:class:`streamhand.HandTracker` returns."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from streamhand.detect import Detection
from streamhand.place.placement import place_hand
from streamhand.place.smoothing import TrackSmoother
from streamhand.runtime_config import SmoothConfig


class PlacedHand(NamedTuple):
    """One hand of one frame, placed."""

    detection: Detection  # landmarks_px, handedness (the track's), scores
    track_id: int
    joints_cam: np.ndarray  # (21, 3) metres, camera frame
    joints_rel: np.ndarray  # (21, 3) metres, relative to the wrist
    joint_std: np.ndarray  # (21,) metres
    root_source: str  # "depth" | "estimate"


class PlaceStep:
    """Places and smooths the hands of processed frames, in order."""

    def __init__(self, smooth: SmoothConfig):
        self.smoother = TrackSmoother(smooth.min_cutoff, smooth.beta, smooth.enabled, smooth.d_cutoff)

    def end(self, track_id: int) -> None:
        self.smoother.end(track_id)

    def __call__(self, w: Any) -> list[PlacedHand]:
        """The hands of one processed frame (``w``: the pipeline's work item with detections, track ids, the lift)."""
        f, out = w.frame, []
        for i, d in enumerate(w.detections):
            tid, scale = w.track_ids[i], float(w.lift.scale[i])
            joints_cam, _root, root_src, s = place_hand(d.landmarks_px, w.lift.joints_norm[i], scale, f.intrinsics,
                                                        f.depth)  # fmt: skip
            joints_cam = self.smoother(tid, joints_cam, f.t_capture if f.t_media is None else f.t_media)
            std = w.lift.joint_std[i] * (s / scale)
            out.append(PlacedHand(d, tid, joints_cam, joints_cam - joints_cam[0], std, root_src))
        return out
