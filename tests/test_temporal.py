"""Handedness voted per track (a detector's slips do not move a hand to the other topic) and the run report's
temporal figures (jitter and lag against the truth)."""

from __future__ import annotations

import numpy as np
import pytest

from streamhand.detect import HandednessVote, TrackLinker
from streamhand.run.temporal import StillJitter, TemporalScore
from streamhand.run.truth_score import TruthScore
from tests.helpers import placed_hand


def _labels(seq: str) -> list[tuple[str, float]]:
    """'R' / 'L' confident (0.95), 'r' / 'l' unsure (0.6), '!' a right hand called left at 1.00."""
    table = {"R": ("right", 0.95), "L": ("left", 0.95), "r": ("right", 0.6), "l": ("left", 0.6), "!": ("left", 1.0)}
    return [table[c] for c in seq]


@pytest.mark.parametrize(
    ("frames", "final", "switches"),
    [
        ("R" * 30, "right", 0),
        ("R" * 30 + "!" + "R" * 10, "right", 0),  # one confident slip
        ("R" * 30 + "!!!" + "R" * 10, "right", 0),  # three in a row (the reported clip's frames 36-37 and more)
        ("R" * 30 + "LrLlLrLlLr", "right", 0),  # a flickering stretch: not strong, lasting evidence
        ("R" * 30 + "L" * 30, "left", 1),  # the other hand for a second: it changes, once
        ("l" + "R" * 10, "right", 1),  # a track born with an unsure wrong label is put right
        ("L" + "R" * 10, "right", 1),  # or with one confident wrong frame, while it is unsettled
        ("RR" + "L" + "R" * 10, "right", 0),  # two confident frames settle it: one slip then does not move it
        ("l" + "r" * 10, "left", 0),  # unsure frames alone never turn a new track
        ("rl" * 20, "right", 0),  # unsure either way: the first label stays
    ],
)
def test_handedness_vote(frames, final, switches):
    labels = _labels(frames)
    vote = HandednessVote(labels[0][0])
    n = sum(vote.add(lab, s) for lab, s in labels)
    assert vote.label == final and n == switches
    assert 0.5 <= vote.score <= 1.0


def test_a_wrong_first_label_is_put_right_within_ten_frames():
    vote = HandednessVote("left")
    vote.add("left", 0.95)
    flipped_at = next(i for i in range(1, 30) if vote.add("right", 0.95))
    assert flipped_at <= 10


@pytest.mark.parametrize(("first_score", "at"), [(0.54, 1), (0.95, 1), (0.6, 1)])
def test_an_undecided_first_label_is_put_right_at_the_next_confident_frame(first_score, at):
    """MediaPipe's first label of a new hand can be a coin toss (0.54 on one rendered clip's first frame); the
    track follows the first confident frame (0.95) that tips its evidence, not eight frames later."""
    vote = HandednessVote("left")
    vote.add("left", first_score)
    flipped_at = next(i for i in range(1, 30) if vote.add("right", 0.95))
    assert flipped_at == at and vote.label == "right"
    for _ in range(3):
        assert not vote.add("right", 0.95)
    assert vote.settled and vote.label == "right"


def test_linker_publishes_the_tracks_handedness_and_counts_switches():
    hand = np.full((21, 2), 200.0) + np.arange(21)[:, None]
    linker = TrackLinker()
    published = []
    for label, score in _labels("R" * 20 + "!" + "R" * 5 + "L" * 25):
        upd = linker.update([hand], [label], [score])
        published.append(upd.handedness[0])
        assert upd.ids == [1] and 0.5 <= upd.handedness_score[0] <= 1.0
    assert published[20] == "right"  # the slip is overruled
    assert published[-1] == "left" and linker.switches == {1: 1}
    first_left = published.index("left")
    assert 26 < first_left < 45 and linker.overruled == 1 + (first_left - 26)


def test_linker_keeps_a_hand_through_frames_of_other_sizes():
    """The same scene at 640, 320 and 960 pixels across in turn (an image folder of several sizes, a camera that
    changes its resolution): the hand keeps its track, and so its smoothing; matched in pixels, it took two ids."""
    hand = np.full((21, 2), 400.0) + 3.0 * np.arange(21)[:, None]
    linker = TrackLinker()
    ids = [linker.update([hand * w / 640], ["right"], [0.95], w).ids[0] for w in [640, 320, 960] * 4]
    assert ids == [1] * 12 and linker.active == [1]


def test_linker_without_scores_and_unlinked_stills():
    a = np.full((21, 2), 100.0) + np.arange(21)[:, None]
    single = TrackLinker(link=False)
    assert single.update([a], ["left"]).handedness == ["left"]
    assert single.update([a], ["right"]).handedness == ["right"]  # each still on its own: no vote across them
    assert single.switches == {} and single.overruled == 0


def _moving(n: int = 240, fps: float = 30.0):
    t = np.arange(n) / fps
    base = np.random.default_rng(0).normal(size=(21, 3)) * 0.05
    return t, [base + np.array([0.1 * np.sin(np.pi * s), 0.05 * np.cos(1.4 * np.pi * s), 0.4]) for s in t]


@pytest.mark.parametrize("delay", [0, 1, 2, 4])
def test_lag_is_the_delay_that_aligns_published_with_truth(delay):
    t, truth = _moving()
    rng = np.random.default_rng(1)
    score = TemporalScore()
    for i, ti in enumerate(t):
        score.add(7, i, ti, truth[max(i - delay, 0)] + 0.01 + rng.normal(0, 0.002, (21, 3)), truth[i])
    assert score.report()["lag_ms"] == pytest.approx(1000 * delay / 30, abs=6)


def test_jitter_is_the_rms_second_difference_of_the_error():
    t, truth = _moving()
    rng = np.random.default_rng(2)
    sigma = 0.003  # per coordinate: a joint's second difference has RMS sqrt(6 * 3) * sigma
    score = TemporalScore()
    for i, ti in enumerate(t):
        score.add(1, i, ti, truth[i] + rng.normal(0, sigma, (21, 3)), truth[i])
    assert score.report()["jitter_mm"] == pytest.approx(1000 * np.sqrt(18) * sigma, rel=0.05)
    smooth = TemporalScore()
    for i, ti in enumerate(t):  # a constant error and the truth's own motion are not jitter
        smooth.add(1, i, ti, truth[i] + 0.02, truth[i])
    assert smooth.report()["jitter_mm"] == pytest.approx(0.0, abs=1e-6)


def test_gaps_and_ended_tracks_start_again():
    t, truth = _moving(20)
    score = TemporalScore()
    for i in (0, 1, 5, 6, 10, 11):  # never three consecutive frames
        score.add(1, i, t[i], truth[i] + (0.05 if i % 2 else 0.0), truth[i])
    assert score.report() == {"jitter_mm": None, "lag_ms": None}  # too short to measure
    score.end(1)  # frame 12 follows 10 and 11, but the track ended in between
    score.add(1, 12, t[12], truth[12], truth[12])
    assert score.report() == {"jitter_mm": None, "lag_ms": None}


def test_a_cut_in_the_truth_starts_every_run_again():
    t, truth = _moving(12)
    jump = np.array([0.2, 0.0, 0.0])  # a looping clip starting again: the true hand jumps, the published one follows
    pub = [truth[i] + (jump if i >= 6 else 0.0) for i in range(12)]  # late by one frame at the jump
    pub[6] = pub[6] - jump
    gt = [truth[i] + (jump if i >= 6 else 0.0) for i in range(12)]
    whole, cut = TemporalScore(), TemporalScore()
    for i in range(12):
        whole.add(1, i, t[i], pub[i], gt[i])
        if i == 6:
            cut.cut()
        cut.add(1, i, t[i], pub[i], gt[i])
    assert whole.report()["jitter_mm"] > 50  # the jump scored as wobble
    assert cut.report()["jitter_mm"] > 0  # the late frame after the cut still counts, the jump across it does not
    assert cut.report()["jitter_mm"] < 0.75 * whole.report()["jitter_mm"]


def test_the_demo_marks_where_its_clip_starts_again():
    from streamhand.capture.demo import DemoSource

    src = DemoSource(realtime=False, seconds=0.1)  # 3 frames, looping
    src.open()
    assert [bool(src.read().truth["cut"]) for _ in range(7)] == [False, False, False, True, False, False, True]


def test_truth_score_counts_handedness_against_the_truth():
    square = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]] * 5 + [[50.0, 50.0]])
    truth = {"joints_2d": [square, square + 500], "joints_cam": [np.zeros((21, 3))] * 2, "left": [False, True]}
    s = TruthScore()
    s.add(truth, [placed_hand(square, np.zeros((21, 3)), track_id=1),
                  placed_hand(square + 500, np.zeros((21, 3)), track_id=2)], 0, 0.0)  # fmt: skip
    assert s.report()["handedness_accuracy"] == 0.5


def test_still_jitter_counts_only_hands_that_hold_still():
    lm = np.full((21, 2), 300.0) + np.arange(21)[:, None] * 5  # a hand 100 px across
    rng = np.random.default_rng(3)
    still = StillJitter()
    for i in range(60):
        moving = 20 <= i < 40  # 10 px a frame: not still
        px = lm + (10.0 * i if moving else 0.0) + rng.normal(0, 0.2, lm.shape)
        still.add(1, i, px, np.full((21, 3), 0.4) + rng.normal(0, 0.002, (21, 3)))
    rep = still.report()
    assert rep["still_frames"] == 60 - 2 - 20 - 2  # the first two frames of each still stretch have no history
    assert rep["jitter_still_mm"] == pytest.approx(1000 * np.sqrt(18) * 0.002, rel=0.15)
    assert StillJitter().report() == {"jitter_still_mm": None, "still_frames": 0}
