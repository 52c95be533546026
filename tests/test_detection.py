"""MediaPipe (the real detector, bundled models) finds the rendered hands."""

import numpy as np
import pytest

from streamhand.detect import MediaPipeHands
from streamhand.synth.render import render
from streamhand.synth.sampler import detection_test_config, sample_hands


@pytest.mark.slow
def test_mediapipe_detects_rendered_hands():
    rng = np.random.default_rng(77)
    n = 40
    hs = sample_hands(rng, n, detection_test_config())
    found, hand_ok, err = 0, 0, []
    with MediaPipeHands(max_hands=1, tracking=False) as det:
        for i in range(n):
            r = render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], left=[bool(hs.left[i])])
            d = det(r.rgb)
            if d:
                found += 1
                hand_ok += d[0].handedness == ("left" if hs.left[i] else "right")
                err.append(np.median(np.linalg.norm(d[0].landmarks_px - hs.joints_2d[i], axis=1)))
    # 200-frame figure in README; on 40 frames allow for sampling noise around the 0.8 bar
    assert found / n >= 0.7
    assert hand_ok / found >= 0.7  # handedness is un-mirrored correctly
    assert np.median(err) < 15  # landmarks land on our joints


@pytest.mark.parametrize(("tracking", "n"), [(False, 8), (True, 4)])
def test_the_graph_answers_as_mediapipes_own_and_adds_each_hands_presence(tracking, n):
    """Our copy of MediaPipe's graph (one more output) gives what ``mediapipe.solutions.hands.Hands`` gives, to the
    bit, and each hand's presence score beside it; a hand blurred past reading looks less like one."""
    import mediapipe as mp

    from train.hard_hands import blur

    rng = np.random.default_rng(5)
    hs = sample_hands(rng, n, detection_test_config())
    frames = [render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], left=[bool(hs.left[i])]).rgb
              for i in range(len(hs))]  # fmt: skip
    sharp, smeared = [], []
    with (
        MediaPipeHands(max_hands=2, tracking=tracking) as ours,
        mp.solutions.hands.Hands(static_image_mode=not tracking, max_num_hands=2, model_complexity=1) as theirs,
    ):
        for i, rgb in enumerate(frames):
            got, want = ours(rgb), theirs.process(rgb)
            assert len(got) == len(want.multi_hand_landmarks or [])
            for d, lms, hd in zip(got, want.multi_hand_landmarks or [], want.multi_handedness or []):
                h, w = rgb.shape[:2]
                np.testing.assert_array_equal(d.landmarks_px, [[p.x * w, p.y * h] for p in lms.landmark])
                assert d.handedness_score == hd.classification[0].score
                assert 0.5 <= d.score <= 1.0  # below min_tracking_confidence (0.5) a hand is not output
                sharp.append(d.score)
            if not tracking and got:
                smeared += [d.score for d in ours(blur(np.random.default_rng(i), rgb, hs.joints_2d[i]))]
    assert len(sharp) >= n // 2 and len(set(sharp)) > 1
    if not tracking:
        assert smeared and np.mean(smeared) < np.mean(sharp) - 0.05


def test_the_graph_makes_no_class_a_frame():
    """MediaPipe's own ``process`` builds a new named-tuple class on every call (a third of our detect thread's
    Python time); ours answers every frame with the one class, in the order of its outputs."""
    from streamhand.detect.mediapipe_graph import OUTPUTS, HandsOutputs

    with MediaPipeHands(max_hands=2, tracking=True) as ours:
        got = [ours._hands.process(np.zeros((48, 64, 3), np.uint8)) for _ in range(3)]
    assert all(type(g) is HandsOutputs for g in got) and HandsOutputs._fields == OUTPUTS
    assert all(v is None for g in got for v in g)  # a blank frame: no hand, every output empty


def test_a_mediapipe_whose_graph_lacks_the_score_still_detects(monkeypatch, caplog):
    """Another MediaPipe release whose graph has other stream names: its own graph runs, each hand's score is its
    handedness score, and the log says so once."""
    from streamhand.detect import mediapipe_graph

    monkeypatch.setattr(mediapipe_graph, "_SCORE", "no_such_stream")
    rng = np.random.default_rng(5)
    hs = sample_hands(rng, 1, detection_test_config())
    rgb = render(rng, [hs.joints_cam[0]], hs.intrinsics[0], [hs.scale[0]], left=[bool(hs.left[0])]).rgb
    with caplog.at_level("WARNING"), MediaPipeHands(max_hands=1, tracking=False) as det:
        (d,) = det(rgb)
    assert d.score == d.handedness_score
    assert "has no no_such_stream" in caplog.text


def test_detector_rejects_bad_images():
    with MediaPipeHands(tracking=False) as det, pytest.raises(ValueError):
        det(np.zeros((10, 10), np.uint8))
    with MediaPipeHands(tracking=False) as det:
        assert det(np.zeros((120, 160, 3), np.uint8)) == []


def test_mediapipe_pairs_cache_follows_the_renderer(tmp_path, monkeypatch):
    from train.datasets import mediapipe_pairs as mpp

    data = {"landmarks": np.zeros((1, 21, 2)), "joints_cam": np.ones((1, 21, 3)), "left": np.array([True])}
    np.savez(mpp.cache_path(tmp_path, 5, 1), **data)
    got = mpp.load_or_generate(tmp_path, 5, 1)  # cached: MediaPipe does not run
    np.testing.assert_array_equal(got["joints_cam"], data["joints_cam"])
    monkeypatch.setattr(mpp, "RENDER_VERSION", mpp.RENDER_VERSION + 1)
    assert not mpp.cache_path(tmp_path, 5, 1).exists()  # a new renderer does not reuse old labels


def test_mediapipe_pairs_keep_every_reading_of_each_hand_found():
    """``generate``: the real MediaPipe on renders; per hand found its 2D, both readings of depth (world landmarks and
    the image landmarks' relative depth, from the wrist), its labels and scores, with the truth and the camera."""
    from train.datasets.mediapipe_pairs import generate

    got = generate(8, seed=31, progress=False)
    m = len(got["left"])
    assert m >= 4
    shapes = {"landmarks": (m, 21, 2), "landmarks_z": (m, 21), "world": (m, 21, 3), "joints_cam": (m, 21, 3)}
    assert {k: got[k].shape for k in shapes} == shapes
    assert all(len(got[k]) == m for k in ("mp_left", "handedness_score", "score", "fx", "fy", "cx", "cy"))
    assert np.abs(got["landmarks_z"][:, 0]).max() < 1.0  # MediaPipe's relative depth starts at the wrist
    assert np.ptp(got["landmarks_z"], axis=1).min() > 1.0  # and varies along the hand (pixels)


def _det(landmarks, score, label="right"):
    from streamhand.detect.mediapipe_hands import Detection

    return Detection(np.asarray(landmarks, float), np.zeros(21), np.zeros((21, 3)), label, score, score)


_X = np.array([1.0, 0.0])
_HAND = np.stack([np.linspace(100, 180, 21), 200 + 40 * np.sin(np.linspace(0, 3, 21))], 1)  # ~80 px across
_MID = (_HAND.min(0) + _HAND.max(0)) / 2
#: a stale copy: half the size within the hand's box, turned the same way, 0.33 of its size from the hand's landmarks
_STALE = _MID + 0.5 * (_HAND - _MID)
#: the other hand over the same box: the hand's mirror image (upside down within it), 0.30 of the hand's size off
_MIRRORED = _HAND * [1, -1] + [0, 2 * _MID[1]]


@pytest.mark.parametrize(
    ("others", "kept"),
    [
        ([], [0.9]),
        ([(_HAND + 3, 0.8)], [0.9]),  # the same hand, 3 px off: one
        ([(_HAND + 3, 0.95)], [0.95]),  # ... the more confident one is kept
        ([(_HAND + 10, 0.8)], [0.9]),  # 14 px mean distance, under a fifth of the 80 px hand: still one
        ([(_HAND + 14, 0.8)], [0.9, 0.8]),  # 20 px: over a fifth, two hands
        ([(_HAND + _X * 200, 0.8)], [0.9, 0.8]),  # another hand beside it: two
        ([(_HAND[::-1], 0.8)], [0.9, 0.8]),  # a hand over the same box, landmarks reversed (clasped): two
        ([(_STALE, 0.8, "right")], [0.9]),  # within its box, of its label and turn, 0.33 of its size off: one
        ([(_STALE, 0.8, "left")], [0.9, 0.8]),  # ... of the other label: two
        ([(_STALE + _X * 30, 0.8, "right")], [0.9, 0.8]),  # partly outside its box: two
        ([(_MIRRORED, 0.8, "right")], [0.9, 0.8]),  # the other hand, named alike by a slip (mirror image): two
        ([(_HAND + 2, 0.8), (_HAND + _X * 300, 0.7), (_HAND + _X * 300 + 1, 0.75)], [0.9, 0.75]),  # two pairs
    ],
)
def test_duplicate_detections_of_one_hand_are_merged(others, kept):
    from streamhand.detect.dedup import merge_duplicates

    dets = [_det(_HAND, 0.9)] + [_det(*other) for other in others]
    assert [d.score for d in merge_duplicates(dets)] == kept
