"""How hand-like MediaPipe's networks find a hand where the truth puts it (train.hand_likeness): which palm counts,
the figures, and the real networks on a rendered hand against the same frame's empty corner."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamhand.detect.palm import PalmDetection
from train.hand_likeness import HandLikeness, likeness_figures, palm_at

# a hand 100 px tall: wrist at (100, 200), the fingers up to y = 100
_UV = np.array([[100.0, 200.0]] + [[60.0 + 20 * (i % 5), 100.0 + 5 * (i // 5)] for i in range(20)])
_PALM_CENTRE = _UV[[0, 5, 9, 13, 17]].mean(0)


def _palm(score: float, centre: np.ndarray, wrist: np.ndarray) -> PalmDetection:
    box = np.concatenate([centre - 20, centre + 20])
    return PalmDetection(score, box, np.vstack([wrist, np.zeros((6, 2))]))


@pytest.mark.parametrize(
    ("palms", "expected"),
    [([], 0.0),
     ([_palm(0.8, _PALM_CENTRE, _UV[0])], 0.8),
     ([_palm(0.9, _PALM_CENTRE + 200, _UV[0] + 200)], 0.0),  # a palm elsewhere in the image
     ([_palm(0.9, _PALM_CENTRE, _UV[0] + 60)], 0.0),  # at the hand, but its wrist is not the hand's
     ([_palm(0.9, _PALM_CENTRE + 60, _UV[0])], 0.0),  # its box centred off the palm
     ([_palm(0.3, _PALM_CENTRE + 10, _UV[0] - 10), _palm(0.6, _PALM_CENTRE, _UV[0]),
       _palm(0.99, _PALM_CENTRE + 300, _UV[0] + 300)], 0.6)],  # the best of those at the hand
    ids=["none", "at-the-hand", "elsewhere", "wrong-wrist", "off-centre", "best-near"],
)  # fmt: skip
def test_the_palm_that_counts_is_the_best_at_the_hand(palms, expected):
    assert palm_at(palms, _UV) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("palm", "presence", "expected"),
    [([], [], None),
     ([0.5, 0.0, 1.0], [0.9, 0.5, 1.0], {"n": 3, "palm_found": 2 / 3, "palm_logit_mean": 0.0,
                                         "palm_logit_median": 0.0, "presence_mean": 0.8}),
     ([0.0, 0.0], [0.2, 0.4], {"n": 2, "palm_found": 0.0, "palm_logit_mean": math.log(1e-4 / (1 - 1e-4)),
                               "presence_mean": 0.3}),
     ([1 / (1 + math.exp(-2.0))], [0.7], {"palm_found": 1.0, "palm_logit_mean": 2.0, "presence_p10": 0.7})],
    ids=["none", "clipped-both-ways", "never-a-palm", "log-odds"],
)  # fmt: skip
def test_likeness_figures(palm, presence, expected):
    got = likeness_figures(palm, presence)
    if expected is None:
        assert got is None
        return
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


@pytest.fixture(scope="module")
def rendered():
    """A right hand facing the camera on a plain background, as the detection set draws it (the first of the
    seed's that MediaPipe finds), with its truth 2D."""
    from streamhand.synth.render import RenderConfig, render
    from streamhand.synth.sampler import detection_test_config, sample_hands

    rng = np.random.default_rng(7)
    hs = sample_hands(rng, 6, detection_test_config())
    cfg = RenderConfig(background="plain", occluders=0.0, motion_blur=0.0)
    return [(render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], cfg=cfg, left=[bool(hs.left[i])]).rgb,
             hs.joints_2d[i]) for i in range(len(hs))]  # fmt: skip


def test_the_networks_find_the_rendered_hand_hand_like_and_its_empty_corner_not(rendered):
    with HandLikeness() as likeness:
        at_hand = [likeness(rgb, uv) for rgb, uv in rendered]
        # the same landmarks moved to where the frame shows no hand: the top left corner of a plain background
        empty = []
        for rgb, uv in rendered:
            moved = uv - uv.min(0) + 2.0
            if (moved.max(0) < uv.min(0)).any():  # the moved box clears the hand
                empty.append(likeness(rgb, moved))
        figures = likeness.figures()
    assert all(r is not None for r in at_hand + empty)
    palms, presence = np.array([r[0] for r in at_hand]), np.array([r[1] for r in at_hand])
    assert (palms >= 0.5).mean() >= 0.8 and np.median(presence) > 0.7  # rendered hands MediaPipe takes for hands
    assert empty and max(p for p, _ in empty) < 0.1 and max(q for _, q in empty) < 0.1
    assert figures["n"] == len(at_hand) + len(empty)


def test_without_the_networks_it_says_so_and_measures_nothing(monkeypatch, caplog):
    import streamhand.export.hand_networks as hn

    def unavailable(*a, **k):
        raise RuntimeError("mediapipe's hand models could not be converted")

    monkeypatch.setattr(hn, "prepare_hand_networks", unavailable)
    with caplog.at_level("WARNING", logger="train.hand_likeness"), HandLikeness() as likeness:
        assert likeness(np.zeros((48, 64, 3), np.uint8), _UV) is None
        assert likeness.figures() is None
    assert "could not be converted" in caplog.text and "not measured" in caplog.text
