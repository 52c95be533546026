"""What travels down the pipeline for one frame (:class:`Work`), and the work of the two middle stages: detecting
and tracking the hands and cutting their crops (:class:`DetectStep`), lifting them to 3D (:class:`InferStep`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from streamhand.capture.base import Frame
from streamhand.detect import Detection, TrackLinker
from streamhand.detect.crops import hand_crops
from streamhand.infer import Lifter, LiftResult

#: the inputs cut from the frame around each hand (the others come from the detector)
IMAGE_INPUTS = ("rgb", "depth", "cloud")


@dataclass
class Work:
    """One frame and what the stages found in it."""

    frame: Frame
    detections: list[Detection] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    #: the detector's probability, in this frame, of the label each hand is lifted with (its track's: the detector's
    #: own score where they agree, one minus it where they do not); the detections carry their track's score
    frame_handedness_scores: list[float] = field(default_factory=list)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    lift: LiftResult | None = None
    times: dict[str, float] = field(default_factory=dict)  # stage -> seconds


class DetectStep:
    """Detect the hands (at most ``max_hands``), give them track ids and their track's handedness, and cut the crops
    the model's image experts read. ``restamp``: frames read ahead of the detector start their clock as it takes
    them (:meth:`Frame.arrived`)."""

    def __init__(self, detector: Any, tracker: TrackLinker, lifter: Lifter, modalities: tuple[str, ...],
                 max_hands: int, crop_margin: float, restamp: bool = False):  # fmt: skip
        self.detector, self.tracker, self.lifter = detector, tracker, lifter
        self.modalities, self.max_hands, self.crop_margin = modalities, max_hands, crop_margin
        self.restamp = restamp

    def __call__(self, w: Work) -> None:
        if self.restamp:
            w.frame = w.frame.arrived()
        dets = self.detector(w.frame.rgb)[: self.max_hands]
        said = [float(d.handedness_score) for d in dets]
        upd = self.tracker.update([d.landmarks_px for d in dets], [d.handedness for d in dets], said,
                                  w.frame.rgb.shape[1])  # fmt: skip
        # what the error model reads as the label's doubt: a hand lifted with its track's label while this frame's
        # detector says the other hand may be lifted mirrored
        w.frame_handedness_scores = [s if d.handedness == h else 1.0 - s for d, h, s in
                                     zip(dets, upd.handedness, said)]  # fmt: skip
        # the track's handedness, not this frame's: it picks the lifter's mirroring and the hand's topic
        dets = [replace(d, handedness=h, handedness_score=s) for d, h, s in
                zip(dets, upd.handedness, upd.handedness_score)]  # fmt: skip
        w.detections, w.track_ids, w.ended = dets, upd.ids, upd.ended
        if dets and any(m in self.modalities for m in IMAGE_INPUTS):
            be, k = self.lifter.backend, w.frame.intrinsics
            w.images = hand_crops(w.frame.rgb, w.frame.depth, [d.landmarks_px for d in dets], self.modalities,
                                  be.image_size, self.crop_margin, (k.fx, k.fy, k.cx, k.cy), be.cloud_points,
                                  be.crop_view)  # fmt: skip


class InferStep:
    """Lift the detected hands to 3D with the run's experts."""

    def __init__(self, lifter: Lifter, modalities: tuple[str, ...]):
        self.lifter, self.modalities = lifter, modalities

    def __call__(self, w: Work) -> None:
        if w.detections:
            lm = np.stack([d.landmarks_px for d in w.detections])
            left = np.array([d.handedness == "left" for d in w.detections])
            world = z = None
            if "world" in self.modalities:
                world = np.stack([d.world for d in w.detections])
                z = np.stack([d.landmarks_z for d in w.detections])
            w.lift = self.lifter(lm, left, w.frame.intrinsics, images=w.images, world=world,
                                 modalities=self.modalities, landmarks_z=z)  # fmt: skip
