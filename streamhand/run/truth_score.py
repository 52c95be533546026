"""Scoring a run against ground truth (sources that carry it, such as the demo): each true hand is matched to
the published hand nearest its 2D centre (within half its size), which gives the detection rate (found / true
hands) and the wrist-relative 3D error per joint (an exact running mean; the median of the last 20 000 hands,
so a long run's memory stays flat), the handedness, how well the published ``joint_std`` and ``quality`` foretell
the error (over the last 20 000 hands), and, along each track, how smooth and how late the published joints are
(:class:`streamhand.run.temporal.TemporalScore`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamhand.metrics import evaluate_uncertainty, joint_errors_mm, spearman
from streamhand.run.place_step import PlacedHand
from streamhand.run.stats import Ring
from streamhand.run.temporal import TemporalScore


class TruthScore:
    def __init__(self, window: int = 20_000):
        self._epe = Ring(window, width=21)
        self._std = Ring(window, width=21)  # the matched hands' joint_std (mm), beside their errors in _epe
        self._quality = Ring(window)  # their quality (mm)
        self._epe_sum, self._epe_joints = 0.0, 0
        self.truth_hands = 0
        self.matched_hands = 0
        self.handed_hands, self.handed_right = 0, 0  # matched hands published with a handedness, and right ones
        self.temporal = TemporalScore()

    def add(self, truth: dict, hands: Sequence[PlacedHand], frame: int | None = None, t: float | None = None) -> None:
        """One frame: ``truth`` with ``joints_2d`` and ``joints_cam`` per true hand (``left``: their handedness is
        scored; ``cut``: the truth jumps here, so jitter and lag start again); ``hands`` the published ones; with
        ``frame`` and ``t`` (seconds) the hands' jitter and lag are scored too."""
        truth_2d = truth.get("joints_2d", [])
        self.truth_hands += len(truth_2d)
        if truth.get("cut"):  # the truth jumps (the demo's clip starting again)
            self.temporal.cut()
        if not truth_2d or not hands:
            return
        t2d = np.asarray(truth_2d, np.float64)  # (true hands, 21, 2), once a frame
        centres, sizes = t2d.mean(1), np.ptp(t2d, axis=1).max(1)
        free = np.ones(len(t2d), bool)
        for hand in hands:
            rel = hand.joints_rel
            dist = np.where(free, np.linalg.norm(centres - hand.detection.landmarks_px.mean(0), axis=1), np.inf)
            i = int(np.argmin(dist))
            if not dist[i] <= 0.5 * sizes[i]:  # none left, or the nearest too far
                continue
            free[i] = False
            self.matched_hands += 1
            gt = np.asarray(truth["joints_cam"][i])
            e = joint_errors_mm(rel[None], (gt - gt[0])[None])[0]
            self._epe.add(e)
            self._std.add(1000.0 * np.asarray(hand.joint_std, float))
            self._quality.add(1000.0 * float(hand.quality))
            self._epe_sum, self._epe_joints = self._epe_sum + float(e.sum()), self._epe_joints + e.size
            if frame is not None and t is not None:
                self.temporal.add(int(hand.track_id), frame, t, hand.joints_cam, gt)
            if "left" in truth:
                self.handed_hands += 1
                self.handed_right += (hand.detection.handedness == "left") == bool(truth["left"][i])

    def _std_check(self) -> dict:
        """How the published uncertainty foretold the error (wrist left out): ``std_r`` per joint, ``std_f`` per
        hand (mean joint_std), ``quality_r`` (quality against the mean error), ``cov1`` / ``cov2`` (joints within
        1 / 2 joint_std), mean quality and error (mm)."""
        e, s = self._epe.values(), self._std.values()
        u = evaluate_uncertainty(s / 1000.0, e)
        q = self._quality.values()
        return {"std_r": u.spearman, "std_f": u.frame_spearman, "quality_r": spearman(q, e[:, 1:].mean(1)),
                "cov1": u.within_1std, "cov2": u.within_2std, "quality_mm": float(q.mean()),
                "error_mm": float(e[:, 1:].mean())}  # fmt: skip

    def end(self, track_id: int) -> None:
        self.temporal.end(track_id)

    def report(self) -> dict:
        rep: dict = {"detection_rate": self.matched_hands / self.truth_hands if self.truth_hands else 0.0,
                     "truth_hands": self.truth_hands}  # fmt: skip
        if self._epe_joints:
            rep["epe_mean_mm"] = self._epe_sum / self._epe_joints
            rep["epe_median_mm"] = float(np.median(self._epe.values()))
            rep["joint_std_check"] = self._std_check()
        if self.handed_hands:
            rep["handedness_accuracy"] = self.handed_right / self.handed_hands
        rep.update(self.temporal.report())
        return rep
