"""Stable track ids and per-track handedness for detected hands (MediaPipe's list order is not stable between frames,
and its handedness label flips now and then on a hand that has not changed).

Greedy matching on the distance between landmark centroids, normalised by hand size, with the track's handedness
as a strong prior. A track unseen for more than ``max_missed`` frames ends and is reported once.
With ``link=False`` (unrelated still images) nothing is matched across frames: every detection gets a
new id, and the previous frame's tracks end at the next update.

Handedness is decided per track (:class:`HandednessVote`), not per frame: each frame's label and score add
evidence (log-odds, clipped, with a fading memory) and the track's label changes only when the evidence for the
other hand is strong and lasting, so a subscriber of ``hand.pose.right`` keeps its hand through a detector's
one-frame slip. Every change of a track's label is counted (:attr:`TrackLinker.switches`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: the most evidence (log-odds) one frame may add: a score of 1.00 counts as 0.982
MAX_FRAME_LLR = 4.0


@dataclass
class HandednessVote:
    """A track's handedness from the history of its frames' labels.

    ``evidence`` is the decayed sum of each frame's log-odds for "left" (``decay`` per frame, each frame's share
    clipped to :data:`MAX_FRAME_LLR`). The label starts as the first frame's and flips only when ``evidence``
    reaches ``switch_at`` on the other side: from a long, confident history (evidence near its bound of
    ``MAX_FRAME_LLR / (1 - decay)`` = 40) that takes about fifteen frames the other way at a score of 0.95. (Chosen
    on rendered clips, where MediaPipe's label is wrong on 17-25 % of hands, for the fewest switches at the best
    accuracy: see docs/usage.md.) A new track is *unsettled* until its evidence first reaches ``settle_at`` for its
    label (about two confident frames): until then one confident frame for the other hand (a score of 0.88 or
    more) that tips the evidence its way turns it at once, so a track born on an undecided or wrong first label
    is put right at the next confident frame instead of after eight.
    """

    label: str
    evidence: float = 0.0
    decay: float = 0.9
    switch_at: float = 16.0
    settle_at: float = MAX_FRAME_LLR
    settled: bool = False
    frames: int = 0

    @staticmethod
    def frame_llr(label: str, score: float) -> float:
        """The log-odds for "left" one frame's label and score give (``score`` is the label's own probability)."""
        p = min(max(float(score), 0.5), 1.0)
        llr = min(math.log(p / max(1.0 - p, 1e-9)), MAX_FRAME_LLR)
        return llr if label == "left" else -llr

    def add(self, label: str, score: float) -> bool:
        """Add one frame's label; True when the track's label changed."""
        llr = self.frame_llr(label, score)
        self.evidence = self.decay * self.evidence + llr
        self.frames += 1
        other = "right" if self.label == "left" else "left"
        sign = 1.0 if other == "left" else -1.0
        toward_other = sign * self.evidence
        confident_other = sign * llr >= self.settle_at / 2
        if toward_other >= self.switch_at or (not self.settled and toward_other > 0 and confident_other):
            self.label = other
            self.settled = self.settled or toward_other >= self.settle_at
            return True
        self.settled = self.settled or -toward_other >= self.settle_at
        return False

    @property
    def score(self) -> float:
        """How sure the track is of its label: the probability its fading mean log-odds give (0.5-1), the mean over
        the frames the track has had (a still image, a track's first frame: that frame's own score, up to the
        clip of :data:`MAX_FRAME_LLR`; dividing by a long history's weight held those under 0.6)."""
        weight = (1.0 - self.decay ** max(self.frames, 1)) / (1.0 - self.decay)
        mean = self.evidence / weight
        p_left = 1.0 / (1.0 + math.exp(-max(min(mean, 30.0), -30.0)))
        return max(p_left if self.label == "left" else 1.0 - p_left, 0.5)


@dataclass
class _Track:
    track_id: int
    vote: HandednessVote
    centre: np.ndarray
    size: float
    missed: int = 0

    @property
    def handedness(self) -> str:
        return self.vote.label


@dataclass
class TrackUpdate:
    ids: list[int]  # one per detection, in the detections' order
    ended: list[int] = field(default_factory=list)
    handedness: list[str] = field(default_factory=list)  # the track's label, one per detection
    handedness_score: list[float] = field(default_factory=list)  # the track's confidence in it


class TrackLinker:
    """Links each frame's detections to tracks: ids stable across frames, handedness voted per track."""

    def __init__(self, max_missed: int = 3, max_jump: float = 1.5, link: bool = True):
        self.max_missed = max_missed
        self.max_jump = max_jump  # in hand sizes
        self.link = link
        self._tracks: list[_Track] = []
        self._next = 1
        #: track id -> how many times its handedness changed (tracks that never changed are absent)
        self.switches: dict[int, int] = {}
        #: frames on which a detection's own label was overruled by its track's
        self.overruled = 0

    @property
    def active(self) -> list[int]:
        return [t.track_id for t in self._tracks]

    def update(self, landmarks: list[np.ndarray], handedness: list[str], scores: list[float] | None = None,
               width: int | None = None) -> TrackUpdate:  # fmt: skip
        """Match this frame's hands to tracks; ``scores`` are the detector's handedness scores (1.0 if not given);
        ``width`` the frame's width in pixels: hands are matched in units of it, so that a frame of another size (a
        camera that changes its resolution, an image folder of several sizes) keeps its hands' tracks."""
        scores = list(scores) if scores is not None else [1.0] * len(landmarks)
        unit = 1.0 / width if width else 1.0
        centres = [np.asarray(lm, dtype=np.float64).mean(0) * unit for lm in landmarks]
        sizes = [max(float(np.ptp(np.asarray(lm), axis=0).max()), 1.0) * unit for lm in landmarks]
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
        matched: list[_Track | None] = [None] * len(landmarks)
        used: set[int] = set()
        for _, di, ti in pairs:
            if matched[di] is None and ti not in used:
                t = matched[di] = self._tracks[ti]
                used.add(ti)
                t.centre, t.size, t.missed = centres[di], sizes[di], 0
                if t.vote.add(handedness[di], scores[di]):
                    self.switches[t.track_id] = self.switches.get(t.track_id, 0) + 1
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
            if matched[di] is None:
                vote = HandednessVote(handedness[di])
                vote.add(handedness[di], scores[di])
                matched[di] = _Track(self._next, vote, centres[di], sizes[di])
                self._tracks.append(matched[di])
                self._next += 1
        tracks = [t for t in matched if t is not None]
        self.overruled += sum(t.handedness != h for t, h in zip(tracks, handedness))
        return TrackUpdate([t.track_id for t in tracks], ended, [t.handedness for t in tracks],
                           [t.vote.score for t in tracks])  # fmt: skip
