"""Scoring a run against ground truth (sources that carry it, such as the demo): each true hand is matched to
the published hand nearest its 2D centre (within half its size), which gives the detection rate (found / true
hands) and the wrist-relative 3D error per joint (an exact running mean; the median of the last 20 000 hands,
so a long run's memory stays flat); and, along each track, how smooth and how late the published joints are
(:class:`TemporalScore`)."""

from __future__ import annotations

from collections import deque

import numpy as np

from streamhand.metrics import joint_errors_mm
from streamhand.run.stats import Ring

#: the longest delay (frames) the lag estimate considers
MAX_LAG_FRAMES = 6


class TemporalScore:
    """Jitter and lag of published joints (camera frame) against the truth, along each track, in constant memory.

    ``jitter_mm``: the RMS over joints and frames of the second difference of (published - truth), i.e. the
    frame-to-frame wobble the truth's own motion does not explain. ``lag_ms``: the delay that best aligns the
    published joints with the true ones — the shift k (0 to :data:`MAX_LAG_FRAMES` frames, refined between
    frames by a parabola) minimising the mean squared distance between published(t) and truth(t - k), times the
    median frame interval. Only runs of consecutive frames count."""

    def __init__(self, max_lag: int = MAX_LAG_FRAMES):
        self.max_lag = max_lag
        self._hist: dict[int, deque] = {}  # track -> (frame, t, published, truth) of its latest frames
        self._d2_sum, self._d2_n = 0.0, 0
        self._lag_sums = np.zeros(max_lag + 1)
        self._lag_n = 0
        self._dts: deque[float] = deque(maxlen=2000)

    def add(self, track_id: int, frame: int, t: float, published: np.ndarray, truth: np.ndarray) -> None:
        h = self._hist.setdefault(track_id, deque(maxlen=self.max_lag + 1))
        if h and h[-1][0] != frame - 1:  # a gap: start the track's run again
            h.clear()
        if h and t > h[-1][1]:
            self._dts.append(t - h[-1][1])
        h.append((frame, t, np.asarray(published, np.float64), np.asarray(truth, np.float64)))
        if len(h) >= 3:
            r = [p - g for _, _, p, g in list(h)[-3:]]
            d2 = r[2] - 2.0 * r[1] + r[0]
            self._d2_sum += float((d2 * d2).sum(-1).sum())
            self._d2_n += d2.shape[0]
        if len(h) == self.max_lag + 1:
            pub = h[-1][2]
            self._lag_sums += [float(((pub - h[-1 - k][3]) ** 2).sum(-1).mean()) for k in range(self.max_lag + 1)]
            self._lag_n += 1

    def end(self, track_id: int) -> None:
        self._hist.pop(track_id, None)

    def report(self) -> dict:
        rep: dict = {}
        if self._d2_n:
            rep["jitter_mm"] = 1000.0 * float(np.sqrt(self._d2_sum / self._d2_n))
        if self._lag_n and self._dts:
            e = self._lag_sums / self._lag_n
            k = int(np.argmin(e))
            shift = 0.0
            if 0 < k < len(e) - 1:  # the parabola through the minimum and its neighbours
                den = e[k - 1] - 2.0 * e[k] + e[k + 1]
                shift = 0.5 * (e[k - 1] - e[k + 1]) / den if den > 0 else 0.0
            rep["lag_ms"] = 1000.0 * (k + shift) * float(np.median(self._dts))
        return rep


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
