"""Scoring a run against ground truth (sources that carry it, such as the demo): each true hand is matched to
the published hand nearest its 2D centre (within half its size), which gives the detection rate (found / true
hands) and the wrist-relative 3D error per joint (an exact running mean; the median of the last 20 000 hands,
so a long run's memory stays flat), the handedness, and, along each track, how smooth and how late the published
joints are (:class:`streamhand.run.temporal.TemporalScore`)."""

from __future__ import annotations

import numpy as np

from streamhand.metrics import joint_errors_mm
from streamhand.run.stats import Ring
from streamhand.run.temporal import TemporalScore


class TruthScore:
    def __init__(self, window: int = 20_000):
        self._epe = Ring(window, width=21)
        self._epe_sum, self._epe_joints = 0.0, 0
        self.truth_hands = 0
        self.matched_hands = 0
        self.handed_hands, self.handed_right = 0, 0  # matched hands published with a handedness, and right ones
        self.temporal = TemporalScore()

    def add(self, truth: dict, hands: list[tuple], frame: int | None = None, t: float | None = None) -> None:
        """One frame: ``truth`` with ``joints_2d`` and ``joints_cam`` per true hand; ``hands`` the published
        (landmarks_px (21, 2), joints_rel (21, 3) metres[, joints_cam (21, 3) metres, track id[, is left]]) of each
        hand; with ``frame`` and ``t`` (seconds) and the camera-frame joints and track id, the hands' jitter and lag
        are scored too, and with "is left" (and the truth's ``left``) their handedness."""
        truth_2d = truth.get("joints_2d", [])
        self.truth_hands += len(truth_2d)
        used: set[int] = set()
        for hand in hands:
            landmarks_px, rel = hand[0], hand[1]
            c = landmarks_px.mean(0)
            dist = [np.linalg.norm(np.asarray(t).mean(0) - c) if i not in used else np.inf
                    for i, t in enumerate(truth_2d)]  # fmt: skip
            if not dist or min(dist) == np.inf:
                continue
            i = int(np.argmin(dist))
            size = float(np.ptp(np.asarray(truth_2d[i]), axis=0).max())
            if dist[i] > 0.5 * size:
                continue
            used.add(i)
            self.matched_hands += 1
            gt = np.asarray(truth["joints_cam"][i])
            e = joint_errors_mm(rel[None], (gt - gt[0])[None])[0]
            self._epe.add(e)
            self._epe_sum, self._epe_joints = self._epe_sum + float(e.sum()), self._epe_joints + e.size
            if len(hand) >= 4 and frame is not None and t is not None:
                self.temporal.add(int(hand[3]), frame, t, hand[2], gt)
            if len(hand) >= 5 and "left" in truth:
                self.handed_hands += 1
                self.handed_right += bool(hand[4]) == bool(truth["left"][i])

    def end(self, track_id: int) -> None:
        self.temporal.end(track_id)

    def report(self) -> dict:
        rep: dict = {"detection_rate": self.matched_hands / self.truth_hands if self.truth_hands else 0.0,
                     "truth_hands": self.truth_hands}  # fmt: skip
        if self._epe_joints:
            rep["epe_mean_mm"] = self._epe_sum / self._epe_joints
            rep["epe_median_mm"] = float(np.median(self._epe.values()))
        if self.handed_hands:
            rep["handedness_accuracy"] = self.handed_right / self.handed_hands
        rep.update(self.temporal.report())
        return rep
