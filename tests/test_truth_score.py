"""Ground-truth scoring of a run: matching by 2D centre within half a hand's size, detection rate, 3D error."""

from __future__ import annotations

import numpy as np
import pytest

from streamhand.run.truth_score import TruthScore
from tests.helpers import placed_hand

SQUARE = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]] * 5 + [[50.0, 50.0]])  # 21 points


def _truth(offsets_px):
    gt = np.zeros((21, 3))
    gt[1:, 0] = np.linspace(0.01, 0.2, 20)
    hands_2d = [SQUARE + np.array([o, 0.0]) for o in offsets_px]
    return {"joints_2d": hands_2d, "joints_cam": [gt + 0.3] * len(offsets_px)}, gt


@pytest.mark.parametrize(
    ("published_offsets", "found", "epe"),
    [
        ([0.0], 1, 10.0),  # one of two true hands found, every joint but the wrist 10 mm off
        ([0.0, 500.0], 2, 10.0),
        ([40.0], 1, 10.0),  # 40 px to the side: within half the hand's size (50 px)
        ([60.0], 0, None),  # 60 px: another hand, not this one
        ([0.0, 10.0], 1, 10.0),  # two published hands on one true hand: it is matched once
        ([], 0, None),
    ],
)
def test_matching_detection_and_error(published_offsets, found, epe):
    truth, gt = _truth([0.0, 500.0])
    rel = gt.copy()
    rel[1:, 1] += 0.010
    score = TruthScore()
    score.add(truth, [placed_hand(SQUARE + np.array([o, 0.0]), rel) for o in published_offsets])
    rep = score.report()
    assert rep["truth_hands"] == 2 and rep["detection_rate"] == found / 2
    if epe is None:
        assert "epe_mean_mm" not in rep
    else:
        assert rep["epe_mean_mm"] == pytest.approx(epe * 20 / 21) and rep["epe_median_mm"] == pytest.approx(epe)


def test_a_frame_without_true_hands_matches_nothing():
    score = TruthScore()
    score.add({"joints_2d": [], "joints_cam": []}, [placed_hand(SQUARE, np.zeros((21, 3)))])
    assert score.report() == {"detection_rate": 0.0, "truth_hands": 0, "jitter_mm": None, "lag_ms": None}


def test_the_published_uncertainty_is_checked_against_the_error():
    """Hands whose joint_std and quality follow their error: ranks 1, coverage as the stds say."""
    truth, gt = _truth([0.0])
    score = TruthScore()
    for k in range(1, 11):  # hand k: every joint but the wrist k mm off, joint_std 2k mm, quality k mm
        rel = gt.copy()
        rel[1:, 1] += 0.001 * k * (1 + np.arange(20) / 20)
        std = 0.002 * k * (1 + np.arange(21) / 20)
        score.add(truth, [placed_hand(SQUARE, rel, joint_std=std, quality=0.001 * k)])
    c = score.report()["joint_std_check"]
    assert c["std_f"] == pytest.approx(1.0) and c["quality_r"] == pytest.approx(1.0) and c["std_r"] > 0.9
    assert c["cov1"] == 1.0 and c["cov2"] == 1.0 and c["quality_mm"] == pytest.approx(5.5)
