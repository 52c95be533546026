"""The pipeline's placing step: each lifted hand put in metres in the camera frame (:func:`place_hands`: perspective
solve or depth) and pulled toward its 2D landmarks' rays (:func:`pull_to_rays`), judged by the model's error model
(``joint_std``, ``quality``, ``confidence``: :mod:`streamhand.error_model`, from the placement's reprojection and the
pulled answer's bones, as it was fitted) and smoothed along its track, as a typed :class:`PlacedHand` — what the
emitter publishes and :class:`streamhand.HandTracker` returns."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from streamhand.detect import Detection
from streamhand.error_model import ErrorModel, error_model_for
from streamhand.place.placement import RAY_PULL, place_hands, pull_to_rays
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
    #: the expected mean joint error (metres, wrist-relative): the error model's, else the mean of ``joint_std``
    quality: float
    #: the chance that the mean joint error is below 2 cm (None: the model has no error model for its experts)
    confidence: float | None
    #: below the run's ``--min-confidence`` and published with ``low_confidence`` (``--low-confidence flag``)
    low_confidence: bool = False


class PlaceStep:
    """Places and smooths the hands of processed frames, in order."""

    def __init__(self, smooth: SmoothConfig, error_models: dict | None = None, ray_pull: float = RAY_PULL):
        self.ray_pull = ray_pull
        self.smoother = TrackSmoother(smooth.min_cutoff, smooth.beta, smooth.enabled, smooth.d_cutoff)
        self._specs = error_models
        self._judges: dict[str, ErrorModel | None] = {}

    def _judge(self, experts: str) -> ErrorModel | None:
        if experts not in self._judges:
            self._judges[experts] = error_model_for(self._specs, experts)
        return self._judges[experts]

    def end(self, track_id: int) -> None:
        self.smoother.end(track_id)

    def __call__(self, w: Any) -> list[PlacedHand]:
        """The hands of one processed frame (``w``: the pipeline's work item with detections, track ids, the lift)."""
        f, lift, dets = w.frame, w.lift, w.detections
        if not dets:
            return []
        k = f.intrinsics
        uv = np.stack([d.landmarks_px for d in dets])
        placed = place_hands(uv, lift.joints_norm, lift.scale, k, f.depth)
        cams, scales = placed.joints_cam, placed.scale
        pulled = pull_to_rays(cams, uv, k.fx, k.fy, k.cx, k.cy, self.ray_pull)
        judge = self._judge(lift.experts)
        if judge is not None:  # one call for every hand of the frame
            one = lift.disagreement is None or "+" not in lift.experts  # one expert: nothing to disagree with
            dis = None if one else lift.disagreement / lift.scale[:, None]
            # the detector's doubt about this frame's label, as the error model was fitted (not the track's vote,
            # which starts undecided on every new track)
            j = judge.judge_hands(uv, cams, (k.fx, k.fy, k.cx, k.cy), scales,
                                  np.stack([d.world for d in dets]), dis, np.array(w.frame_handedness_scores),
                                  np.array([d.score for d in dets]), pulled)  # fmt: skip
            stds, quality, conf = j.joint_std, j.quality.tolist(), j.confidence.tolist()
        else:
            stds = lift.joint_std * (scales / lift.scale)[:, None]
            quality, conf = stds[:, 1:].mean(1).tolist(), [None] * len(dets)
        t = f.t_capture if f.t_media is None else f.t_media
        out = []
        for i, d in enumerate(dets):
            joints_cam = self.smoother(w.track_ids[i], pulled[i], t)
            source = "depth" if placed.from_depth[i] else "estimate"
            out.append(PlacedHand(d, w.track_ids[i], joints_cam, joints_cam - joints_cam[0], stds[i], source,
                                  quality[i], conf[i]))  # fmt: skip
        return out
