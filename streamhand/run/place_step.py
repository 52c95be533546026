"""The pipeline's placing step: each lifted hand put in metres in the camera frame (:func:`place_hands`: perspective
solve or depth) and pulled toward its 2D landmarks' rays (:func:`pull_to_rays`), judged by the model's error model
(``joint_std``, ``quality``, ``confidence``: :mod:`streamhand.error_model`, from the placement's reprojection and the
pulled answer's bones, as it was fitted) and smoothed along its track, as a typed :class:`PlacedHand` — what the
emitter publishes and :class:`streamhand.HandTracker` returns. The order of that work (place, pull, then judge the
pulled answer) lives in :func:`answer_hands`, which ``fit-error-model``'s closed loop and ``train eval`` call too: the
error model is fitted and measured on the evidence a run computes."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from streamhand.codec import decode_3d, encode_2d, encode_world, to_view, world_with_image_depth
from streamhand.detect import Detection
from streamhand.error_model import FEATURES, ErrorModel, HandJudgement, error_model_for, hand_features
from streamhand.geometry import Intrinsics
from streamhand.infer import LiftResult
from streamhand.place.placement import (
    RAY_PULL,
    Placed,
    depth_at,
    masked_median,
    place_hands,
    pull_to_rays,
    root_depths,
    scales_per_depth,
    solve_roots,
)
from streamhand.place.smoothing import TrackSmoother
from streamhand.runtime_config import SmoothConfig

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Answer:
    """B lifted hands as a run publishes them (before smoothing), with the evidence its error model reads."""

    placed: Placed  # the rigid placement (perspective solve or depth)
    joints: np.ndarray  # (B, 21, 3) metres, camera frame: the placement pulled toward the 2D's rays (the answer)
    uv: np.ndarray  # (B, 21, 2) the detector's landmarks (px)
    k: tuple[Any, Any, Any, Any]  # fx, fy, cx, cy: scalars, or (B,) each (a camera per hand)
    world: np.ndarray | None = None  # (B, 21, 3) the detector's metric landmarks
    disagreement: np.ndarray | None = None  # (B, 21) the fused experts' distance from the answer, reference bones
    handedness_score: np.ndarray | None = None  # (B,) the detector's own score for this frame's label
    presence: np.ndarray | None = None  # (B,) the landmark network's hand-presence score

    def _evidence(self) -> tuple:
        return (self.uv, self.placed.joints_cam, self.k, self.world, self.disagreement, self.handedness_score,
                self.presence)  # fmt: skip

    def features(self) -> np.ndarray:
        """(B, len(FEATURES)) every piece of evidence (:func:`streamhand.error_model.hand_features`)."""
        return hand_features(*self._evidence(), answer=self.joints)[0]

    def judged(self, judge: ErrorModel) -> HandJudgement:
        """What ``judge`` says of these hands: the placement's reprojection, the answer's bones and size."""
        uv, cam, k, *said = self._evidence()
        return judge.judge_hands(uv, cam, k, self.placed.scale, *said, answer=self.joints)


def answer_hands(uv: np.ndarray, lift: LiftResult, k: Any, depth: np.ndarray | None = None, ray_pull: float = RAY_PULL,
                 world: np.ndarray | None = None, handedness_score: np.ndarray | None = None,
                 presence: np.ndarray | None = None) -> Answer:  # fmt: skip
    """B lifted hands (``lift``, from landmarks ``uv`` (B, 21, 2)) placed in the camera ``k`` (anything with fx, fy,
    cx, cy: scalars, or (B,) arrays without ``depth``), each joint pulled ``ray_pull`` of the way toward its
    landmark's ray; with the detector's ``world``, ``handedness_score`` and ``presence`` for the error model."""
    placed = place_hands(uv, lift.joints_norm, lift.scale, k, depth)
    joints = pull_to_rays(placed.joints_cam, uv, k.fx, k.fy, k.cx, k.cy, ray_pull)
    one = lift.disagreement is None or "+" not in lift.experts  # one expert: nothing to disagree with
    dis = None if one else lift.disagreement / lift.scale[:, None]
    return Answer(placed, joints, uv, (k.fx, k.fy, k.cx, k.cy), world, dis, handedness_score, presence)


#: an error model that weighs every piece of evidence: judging with it compiles what any fitted one runs
_EVERY_FEATURE = {"features": list(FEATURES), "mean": [0.0] * len(FEATURES), "std": [1.0] * len(FEATURES),
                  "weights": [0.1] * len(FEATURES), "bias": -2.0, "profile": [1.0] * 21, "scale_sigma": 0.1,
                  "kappa": 1.0, "quality_bias": 1.0, "quality_sigma": 0.5}  # fmt: skip


def _made_up_hand() -> tuple[Intrinsics, np.ndarray, np.ndarray]:
    """A camera, one hand's wrist-relative joints (1, 21, 3) and its landmarks (1, 21, 2): what warming up reads."""
    rel = np.linspace(0.0, 1.0, 63).reshape(1, 21, 3) - 0.5
    return Intrinsics(64, 48, 50.0, 50.0, 32.0, 24.0), rel, 32.0 + 20.0 * rel[..., :2]


def warm_up() -> None:
    """Encode, place (with a depth image and without), pull, smooth and judge one made-up hand, so that the compiled
    per-frame arithmetic (:mod:`streamhand.jit`) is compiled, or loaded from its cache, before the first frame rather
    than on it. The first time on a machine it compiles (tens of seconds on a 2-core CPU; said in the log);
    ``.ci/setup.sh`` compiles it, and the rest, once after installing (:func:`precompile`)."""
    said = ("preparing the per-frame arithmetic (compiled the first time on a machine: about 30 s on a 2-core CPU, "
            "longer on one core; then loaded from disk in a second; `streamhand precompile` does it ahead)")
    slow = threading.Timer(1.0, log.info, (said,))  # a slow load from the disk cache says so too, and truly
    slow.daemon = True
    slow.start()
    try:
        k, rel, uv = _made_up_hand()
        left = np.array([True])
        _, rot = encode_2d(uv, left, k)
        to_view(uv, k, rot)  # the turned crop's extent (rgb models: streamhand.detect.crops.view_crop)
        encode_world(world_with_image_depth(rel, uv, rel[..., 2], 0.5), left, rot)
        decode_3d(rel.astype(np.float32), left, 1.0, rot)
        for d in (np.full((48, 64), 0.5, np.float32), None):
            placed = place_hands(uv, rel, np.array([0.08]), k, d)
        joints = pull_to_rays(placed.joints_cam, uv, k.fx, k.fy, k.cx, k.cy)
        smoother = TrackSmoother()
        for t in (0.0, 0.04):
            smoother(0, joints[0], t)
        ErrorModel(_EVERY_FEATURE).judge_hands(uv, placed.joints_cam, (k.fx, k.fy, k.cx, k.cy), placed.scale, rel,
                                               np.zeros((1, 21)), np.ones(1), np.ones(1), joints)  # fmt: skip
    finally:
        slow.cancel()


def precompile() -> None:
    """:func:`warm_up`, then every other way the compiled functions are called (the placement's public helpers, with
    float32 and float64 depth images; the error model's evidence and judgement alone, as training calls them), so that
    no later process compiles: ``streamhand precompile``, which ``.ci/setup.sh`` runs once after installing."""
    warm_up()
    k, rel, uv = _made_up_hand()
    for depth in (np.ones((48, 64), np.float32), np.ones((48, 64))):
        place_hands(uv, rel, np.array([0.08]), k, depth)
        depth_at(depth, uv[0])
    solve_roots(uv, rel, k.fx, k.fy, k.cx, k.cy)
    masked_median(rel[0], rel[0] > 0)
    root_depths(np.ones((1, 21)), rel)
    scales_per_depth(uv, rel, k.fx, k.fy, k.cx, k.cy)
    feats, _ = hand_features(uv, rel + 1.0, (k.fx, k.fy, k.cx, k.cy))
    judge = ErrorModel(_EVERY_FEATURE)
    judge(feats, rel, np.ones(1))
    judge.expected_errors(feats, rel, np.ones(1))


class PlaceStep:
    """Places and smooths the hands of processed frames, in order."""

    def __init__(self, smooth: SmoothConfig, error_models: dict | None = None, ray_pull: float = RAY_PULL):
        self.ray_pull = ray_pull
        self.smoother = TrackSmoother(smooth.min_cutoff, smooth.beta, smooth.enabled, smooth.d_cutoff)
        self._specs = error_models
        self._judges: dict[str, ErrorModel | None] = {}
        warm_up()

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
        uv = np.stack([d.landmarks_px for d in dets])
        judge = self._judge(lift.experts)
        # what the error model reads from the detector; its doubt about this frame's label, as the error model was
        # fitted (not the track's vote, which starts undecided on every new track)
        said = () if judge is None else (np.stack([d.world for d in dets]), np.array(w.frame_handedness_scores),
                                         np.array([d.score for d in dets]))  # fmt: skip
        a = answer_hands(uv, lift, f.intrinsics, f.depth, self.ray_pull, *said)
        if judge is not None:  # one call for every hand of the frame
            j = a.judged(judge)
            stds, quality, conf = j.joint_std, j.quality.tolist(), j.confidence.tolist()
        else:
            stds = lift.joint_std * (a.placed.scale / lift.scale)[:, None]
            quality, conf = stds[:, 1:].mean(1).tolist(), [None] * len(dets)
        t = f.t_capture if f.t_media is None else f.t_media
        out = []
        for i, d in enumerate(dets):
            joints_cam = self.smoother(w.track_ids[i], a.joints[i], t)
            source = "depth" if a.placed.from_depth[i] else "estimate"
            out.append(PlacedHand(d, w.track_ids[i], joints_cam, joints_cam - joints_cam[0], stds[i], source,
                                  quality[i], conf[i]))  # fmt: skip
        return out
