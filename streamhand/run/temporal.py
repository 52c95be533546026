"""How steady the published hands are along their tracks: against the truth (:class:`TemporalScore`: jitter and
lag) and, for sources without truth, while the hand holds still (:class:`StillJitter`)."""

from __future__ import annotations

from collections import deque

import numpy as np

#: the longest delay (frames) the lag estimate considers
MAX_LAG_FRAMES = 6


class TemporalScore:
    """Jitter and lag of published joints (camera frame) against the truth, along each track, in constant memory.

    ``jitter_mm``: the RMS over joints and frames of the second difference of (published - truth), i.e. the
    frame-to-frame wobble the truth's own motion does not explain. ``lag_ms``: the delay that best aligns the
    published joints with the true ones — the shift k (0 to :data:`MAX_LAG_FRAMES` frames, refined between
    frames by a parabola) minimising the mean squared distance between published(t) and truth(t - k), times the
    median frame interval. Only runs of consecutive frames count, and a :meth:`cut` in the truth ends them."""

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
        if len(h) == self.max_lag + 1:  # published now against the truth 0 .. max_lag frames ago
            truths = np.stack([g for _, _, _, g in reversed(h)])
            self._lag_sums += ((h[-1][2] - truths) ** 2).sum(-1).mean(-1)
            self._lag_n += 1

    def end(self, track_id: int) -> None:
        self._hist.pop(track_id, None)

    def cut(self) -> None:
        """The truth jumps here (a looping clip starting again): every track's run starts again, so the jump, which
        no hand makes, is not scored as wobble or lag."""
        self._hist.clear()

    def report(self) -> dict:
        """``jitter_mm`` and ``lag_ms``, each None where the run was too short to measure it (under 3 frames)."""
        rep: dict = {"jitter_mm": None, "lag_ms": None}
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


class StillJitter:
    """Jitter without truth: the RMS second difference of the published joints (camera frame) over stretches where
    the hand holds still in the image — its 2D landmarks move less than ``still_frac`` of the hand's size a frame,
    three frames running. A real hand is never perfectly still, so this is an upper bound on the wobble a user
    sees on a resting hand."""

    def __init__(self, still_frac: float = 0.01):
        self.still_frac = still_frac
        self._hist: dict[int, deque] = {}  # track -> (frame, landmarks_px, published) of its last three frames
        self._sum, self._n, self.still_frames = 0.0, 0, 0

    def add(self, track_id: int, frame: int, landmarks_px: np.ndarray, published: np.ndarray) -> None:
        h = self._hist.setdefault(track_id, deque(maxlen=3))
        if h and h[-1][0] != frame - 1:
            h.clear()
        h.append((frame, np.asarray(landmarks_px, np.float64), np.asarray(published, np.float64)))
        if len(h) < 3:
            return
        (_, a2, a), (_, b2, b), (_, c2, c) = h
        size = max(float(np.ptp(c2, axis=0).max()), 1.0)
        if max(np.linalg.norm(b2 - a2, axis=1).mean(), np.linalg.norm(c2 - b2, axis=1).mean()) > self.still_frac * size:
            return
        d2 = c - 2.0 * b + a
        self._sum += float((d2 * d2).sum(-1).sum())
        self._n += d2.shape[0]
        self.still_frames += 1

    def end(self, track_id: int) -> None:
        self._hist.pop(track_id, None)

    def report(self) -> dict:
        if not self._n:  # the hand never held still: no figure, but the key is there
            return {"jitter_still_mm": None, "still_frames": 0}
        return {"jitter_still_mm": 1000.0 * float(np.sqrt(self._sum / self._n)), "still_frames": self.still_frames}
