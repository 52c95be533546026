"""Stable track ids for detected hands (MediaPipe's list order is not stable between frames).

Greedy matching on the distance between landmark centroids, normalised by hand size, with handedness
as a strong prior. A track unseen for more than ``max_missed`` frames ends and is reported once.
With ``link=False`` (unrelated still images) nothing is matched across frames: every detection gets a
new id, and the previous frame's tracks end at the next update.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Track:
    track_id: int
    handedness: str
    centre: np.ndarray
    size: float
    missed: int = 0


@dataclass
class TrackUpdate:
    ids: list[int]  # one per detection, in the detections' order
    ended: list[int] = field(default_factory=list)


class HandTracker:
    def __init__(self, max_missed: int = 3, max_jump: float = 1.5, link: bool = True):
        self.max_missed = max_missed
        self.max_jump = max_jump  # in hand sizes
        self.link = link
        self._tracks: list[_Track] = []
        self._next = 1

    @property
    def active(self) -> list[int]:
        return [t.track_id for t in self._tracks]

    def update(self, landmarks: list[np.ndarray], handedness: list[str]) -> TrackUpdate:
        centres = [np.asarray(lm, dtype=np.float64).mean(0) for lm in landmarks]
        sizes = [max(float(np.ptp(np.asarray(lm), axis=0).max()), 1.0) for lm in landmarks]
        ended: list[int] = []
        if not self.link:  # each frame on its own: the previous frame's hands are gone
            ended = [t.track_id for t in self._tracks]
            self._tracks = []
        pairs = []
        for di, (c, s, h) in enumerate(zip(centres, sizes, handedness)):
            for ti, t in enumerate(self._tracks):
                d = np.linalg.norm(c - t.centre) / max(s, t.size)
                if d <= self.max_jump:
                    pairs.append((d + (0 if h == t.handedness else 1.0), di, ti))
        pairs.sort()
        ids: list[int | None] = [None] * len(landmarks)
        used: set[int] = set()
        for _, di, ti in pairs:
            if ids[di] is None and ti not in used:
                ids[di] = self._tracks[ti].track_id
                used.add(ti)
                t = self._tracks[ti]
                t.centre, t.size, t.missed, t.handedness = centres[di], sizes[di], 0, handedness[di]
        keep = []
        for ti, t in enumerate(self._tracks):
            if ti not in used:
                t.missed += 1
                if t.missed > self.max_missed:
                    ended.append(t.track_id)
                    continue
            keep.append(t)
        self._tracks = keep
        for di in range(len(landmarks)):
            if ids[di] is None:
                ids[di] = self._next
                self._tracks.append(_Track(self._next, handedness[di], centres[di], sizes[di]))
                self._next += 1
        return TrackUpdate([int(i) for i in ids if i is not None], ended)
