"""Placement, smoothing, tracking, crops, protocol: table-driven, with their error cases."""

import msgpack
import numpy as np
import pytest

from streamhand.detect import TrackLinker, crop_square, square_box
from streamhand.geometry import Intrinsics, project
from streamhand.place.placement import (
    JOINT_BELOW_SKIN_M,
    depth_at,
    fit_scale,
    masked_median,
    place_hand,
    place_hands,
    pull_to_rays,
    root_depth_from_depth,
    solve_root,
    solve_roots,
)
from streamhand.place.smoothing import OneEuro, TrackSmoother
from streamhand.skeleton import normalize
from streamhand.stream import protocol
from streamhand.synth.hand import reference_pose

K = Intrinsics.from_fov(640, 480, 60)


def _hand(offset=(0.05, 0.02, 0.5)):
    return reference_pose() @ np.diag([1.0, -1.0, -1.0]).T + np.array(offset)


@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.3), (0.1, -0.05, 0.6), (-0.2, 0.1, 0.9)])
def test_solve_root_exact_without_noise(offset):
    j = _hand(offset)
    np.testing.assert_allclose(solve_root(project(j, K), j - j[0], K), j[0], atol=1e-9)


def _lstsq_root(uv, rel, k, z_root=None):
    """The pinhole equations of solve_root by general least squares (the reference for the closed forms)."""
    n, (u, v), (x, y, z) = len(uv), uv.T, rel.T
    a, b = np.zeros((2 * n, 3)), np.zeros(2 * n)
    a[:n, 0], a[:n, 2], b[:n] = k.fx, k.cx - u, (u - k.cx) * z - k.fx * x
    a[n:, 1], a[n:, 2], b[n:] = k.fy, k.cy - v, (v - k.cy) * z - k.fy * y
    if z_root is not None:
        return np.r_[np.linalg.lstsq(a[:, :2], b - a[:, 2] * z_root, rcond=None)[0], z_root]
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _lstsq_scale(uv, rel, k, z_root):
    n, (u, v), (x, y, z) = len(uv), uv.T, rel.T
    a, b = np.zeros((2 * n, 3)), np.zeros(2 * n)
    a[:n, 0], a[:n, 2], b[:n] = k.fx, k.fx * x - (u - k.cx) * z, (u - k.cx) * z_root
    a[n:, 1], a[n:, 2], b[n:] = k.fy, k.fy * y - (v - k.cy) * z, (v - k.cy) * z_root
    return np.linalg.lstsq(a, b, rcond=None)[0][2]


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_solves_equal_general_least_squares(seed):
    """Noisy landmarks, off-centre intrinsics: the closed forms are the least-squares answers, batched or not."""
    rng = np.random.default_rng(seed)
    k = Intrinsics(640, 480, rng.uniform(300, 900), rng.uniform(300, 900), rng.uniform(250, 390), rng.uniform(190, 290))
    z = rng.uniform(0.2, 1.5, 3)
    hands = np.stack([_hand((rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), d)) for d in z])
    uv = np.stack([project(j, k) for j in hands]) + rng.normal(0, 3, (3, 21, 2))
    rel = hands - hands[:, :1] + rng.normal(0, 0.005, (3, 21, 3))
    for i in range(3):
        np.testing.assert_allclose(solve_root(uv[i], rel[i], k), _lstsq_root(uv[i], rel[i], k), atol=1e-9)
        np.testing.assert_allclose(solve_root(uv[i], rel[i], k, z[i]), _lstsq_root(uv[i], rel[i], k, z[i]), atol=1e-9)
        assert fit_scale(uv[i], rel[i] * 10, k, z[i]) == pytest.approx(_lstsq_scale(uv[i], rel[i] * 10, k, z[i]))
    fs = [np.full(3, q) for q in (k.fx, k.fy, k.cx, k.cy)]
    want = np.stack([solve_root(uv[i], rel[i], k) for i in range(3)])
    np.testing.assert_allclose(solve_roots(uv, rel, *fs), want, atol=1e-12)
    np.testing.assert_allclose(solve_roots(uv, rel, k.fx, k.fy, k.cx, k.cy), want, atol=1e-12)


def test_root_depth_when_the_palm_votes_split():
    """The palm's two middle votes 0.3 m apart keep no vote within the window: their mean, not NaN."""
    depth = np.zeros((100, 100), np.float32)
    uv = np.full((21, 2), 90.0)
    for i, d in zip((0, 5, 9, 13), (0.5, 0.5, 0.8, 0.8)):
        uv[i] = (10 + 20 * (i % 4), 10 + 5 * i)
        depth[int(uv[i, 1]) - 3 : int(uv[i, 1]) + 4, int(uv[i, 0]) - 3 : int(uv[i, 0]) + 4] = d
    z = root_depth_from_depth(depth, uv, np.zeros((21, 3)))
    assert z == pytest.approx(0.65 + JOINT_BELOW_SKIN_M[[0, 5, 9, 13]].mean(), abs=0.01)


def test_place_hand_with_depth_recovers_scale_and_root():
    j = _hand()
    uv = project(j, K)
    depth = np.zeros((480, 640), np.float32)
    for i, (p, z) in enumerate(zip(np.round(uv).astype(int), j[:, 2])):
        depth[p[1] - 4 : p[1] + 5, p[0] - 4 : p[0] + 5] = z - JOINT_BELOW_SKIN_M[i]  # the skin in front of the joint
    n, s = normalize(j)
    _cam, root, src, scale = place_hand(uv, n, s * 1.3, K, depth)  # wrong prior scale
    assert src == "depth"
    assert scale == pytest.approx(s, rel=0.03)
    np.testing.assert_allclose(root, j[0], atol=0.01)
    cam2, _, src2, _ = place_hand(uv, n, s, K, None)
    assert src2 == "estimate"
    np.testing.assert_allclose(cam2, j, atol=1e-6)


def test_hands_placed_together_as_one_by_one():
    """place_hands on a frame whose depth sees one hand and not the other: each hand as place_hand places it alone
    (depth for the one, the perspective solve for the other)."""
    a, b = _hand((0.05, 0.02, 0.5)), _hand((-0.15, 0.0, 0.7))
    uv = np.stack([project(a, K), project(b, K)])
    depth = np.zeros((480, 640), np.float32)
    for i, (p, z) in enumerate(zip(np.round(uv[0]).astype(int), a[:, 2])):
        depth[p[1] - 4 : p[1] + 5, p[0] - 4 : p[0] + 5] = z - JOINT_BELOW_SKIN_M[i]
    (na, sa), (nb, sb) = normalize(a), normalize(b)
    both = place_hands(uv, np.stack([na, nb]), np.array([sa * 1.2, sb]), K, depth)
    assert both.from_depth.tolist() == [True, False]
    for i, (n, s) in enumerate(((na, sa * 1.2), (nb, sb))):
        cam, _root, src, scale = place_hand(uv[i], n, s, K, depth)
        np.testing.assert_allclose(both.joints_cam[i], cam, atol=1e-12)
        assert (src == "depth") == both.from_depth[i] and scale == pytest.approx(both.scale[i])
    none = place_hands(uv[:0], np.zeros((0, 21, 3)), np.zeros(0), K, depth)
    assert none.joints_cam.shape == (0, 21, 3)


def test_depth_holes_ignored():
    d = np.zeros((20, 20), np.float32)
    d[5:15, 5:15] = 0.5
    d[10, 10] = 0  # a hole
    assert depth_at(d, np.array([[10, 10], [1, 1]]))[0] == pytest.approx(0.5)
    assert np.isnan(depth_at(d, np.array([[1, 1]]))[0])
    assert root_depth_from_depth(np.zeros((20, 20)), np.zeros((21, 2)), np.zeros((21, 3))) is None


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_the_pull_moves_each_joint_across_the_image_toward_its_ray_at_its_own_depth(share):
    """A placed hand whose 2D landmarks lie off its joints' projections: each joint keeps its depth and moves
    ``share`` of the way to the point of its ray at that depth (1: it reprojects onto its landmark exactly)."""
    rng = np.random.default_rng(3)
    cam = np.stack([_hand(), _hand((-0.1, 0.0, 0.7))])
    uv = project(cam, K) + rng.normal(0, 6.0, (2, 21, 2))
    before = cam.copy()
    got = pull_to_rays(cam, uv, K.fx, K.fy, K.cx, K.cy, share)
    np.testing.assert_array_equal(cam, before)  # the input is kept
    np.testing.assert_array_equal(got[..., 2], cam[..., 2])
    on_ray = np.stack([(uv[..., 0] - K.cx) * cam[..., 2] / K.fx, (uv[..., 1] - K.cy) * cam[..., 2] / K.fy], -1)
    np.testing.assert_allclose(got[..., :2], cam[..., :2] + share * (on_ray - cam[..., :2]), atol=1e-12)
    miss = np.linalg.norm(project(got, K) - uv, axis=-1)
    np.testing.assert_allclose(miss, (1 - share) * np.linalg.norm(project(cam, K) - uv, axis=-1), atol=1e-9)


def test_the_pull_takes_one_camera_per_hand():
    """Intrinsics (B,) (renders, each with its own camera) pull each hand as its own camera alone would."""
    cam = np.stack([_hand(), _hand((0.02, -0.03, 0.4))])
    k2 = Intrinsics.from_fov(640, 480, 75)
    uv = np.stack([project(cam[0], K), project(cam[1], k2)]) + 4.0
    both = pull_to_rays(cam, uv, *(np.array([getattr(K, a), getattr(k2, a)]) for a in ("fx", "fy", "cx", "cy")))
    for i, k in enumerate((K, k2)):
        np.testing.assert_allclose(both[i], pull_to_rays(cam[i : i + 1], uv[i : i + 1], k.fx, k.fy, k.cx, k.cy)[0])


def test_one_euro_reduces_jitter_and_follows_steps():
    rng = np.random.default_rng(0)
    f = OneEuro(min_cutoff=1.0, beta=0.0)
    xs = 1.0 + rng.normal(0, 0.01, 300)
    out = np.array([f(np.array([x]), t / 30)[0] for t, x in enumerate(xs)])
    assert out[50:].std() < 0.5 * xs[50:].std()
    g = OneEuro(min_cutoff=1.0, beta=5.0)
    ys = [g(np.array([0.0 if t < 30 else 1.0]), t / 30)[0] for t in range(90)]
    assert ys[-1] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(("kwargs"), [{"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": 0}])
def test_one_euro_bad_params(kwargs):
    with pytest.raises(ValueError):
        OneEuro(**kwargs)


def test_the_filters_defaults_are_the_runs():
    """``OneEuro()``, ``TrackSmoother()`` (what ``HandTracker`` and scripts get) and ``streamhand run`` smooth alike."""
    from streamhand.runtime_config import SmoothConfig

    run, one, track = SmoothConfig(), OneEuro(), TrackSmoother()
    want = (run.min_cutoff, run.beta, run.d_cutoff)
    assert (one.min_cutoff, one.beta, one.d_cutoff) == want
    assert (track.min_cutoff, track.beta, track.d_cutoff, track.enabled) == (*want, True)


def test_track_smoother_resets_ended_tracks():
    s = TrackSmoother(min_cutoff=0.1, beta=0.0)
    s(1, np.zeros(3), 0.0)
    assert s(1, np.ones(3), 0.1)[0] < 0.5
    s.end(1)
    assert s(1, np.ones(3), 0.2)[0] == 1.0
    assert TrackSmoother(enabled=False)(1, np.ones(3), 0.0)[0] == 1.0


def test_tracker_keeps_ids_when_order_swaps_and_ends_lost_tracks():
    a, b = np.full((21, 2), 100.0), np.full((21, 2), 400.0)
    a[:, 0] += np.arange(21)
    b[:, 0] += np.arange(21)
    t = TrackLinker(max_missed=1)
    ids0 = t.update([a, b], ["left", "right"]).ids
    ids1 = t.update([b + 5, a + 5], ["right", "left"]).ids
    assert ids1 == ids0[::-1]
    t.update([a], ["left"])
    upd = t.update([a], ["left"])
    assert upd.ended == [ids0[1]] and upd.ids == [ids0[0]]
    new = t.update([a, b], ["left", "right"]).ids
    assert new[0] == ids0[0] and new[1] not in ids0


@pytest.mark.parametrize(("box_centre", "inside"), [((50, 50), True), ((0, 0), True), ((300, 200), True)])
def test_square_crops(box_centre, inside):
    img = np.zeros((240, 320, 3), np.uint8)
    img[40:60, 40:60] = 255
    lm = np.array(box_centre, float) + np.random.default_rng(0).uniform(-10, 10, (21, 2))
    box = square_box(lm, 320, 240, margin=1.5)
    c = crop_square(img, box, 64)
    assert c.shape == (64, 64, 3)
    assert box.side >= 32
    centre_in_crop = box.to_crop(np.array([box_centre]), 64)[0]
    assert np.all((centre_in_crop > 0) & (centre_in_crop < 64)) == inside


def test_the_runtime_and_training_crop_with_one_margin():
    from streamhand.detect.crops import CROP_MARGIN
    from streamhand.runtime_config import DetectConfig
    from train.config import DataConfig

    assert DetectConfig().crop_margin == DataConfig().crop_margin == CROP_MARGIN


def _pose_msg():
    z = np.zeros
    return {"topic": "hand.pose.left", "schema": protocol.SCHEMA, "seq": 0, "frame_id": 1, "t_capture": 1.0,
            "t_capture_unix": 2.0, "t_publish": 1.1, "camera": protocol.camera_block("c", K), "track_id": 1,
            "handedness": "left", "handedness_score": 0.9, "score": 0.9, "layout": "mediapipe21", "units": "m",
            "joints_cam": z((21, 3)), "joints_rel": z((21, 3)), "joints_2d": z((21, 2)), "joint_std": z(21),
            "root_source": "estimate", "modalities": ["2d"], "model": "m", "latency_ms": {}}  # fmt: skip


def test_protocol_round_trip_with_plain_msgpack():
    parts = protocol.encode("hand.pose.left", _pose_msg())
    raw = msgpack.unpackb(parts[1])  # a plain msgpack decoder, no streamhand
    assert isinstance(raw["joints_cam"], list) and len(raw["joints_cam"]) == 21
    topic, msg = protocol.decode(parts)
    assert topic == "hand.pose.left" and protocol.validate(topic, msg) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda m: m.pop("joint_std"), "missing joint_std"),
        (lambda m: m.update(joints_cam=np.zeros((20, 3))), "joints_cam has shape"),
        (lambda m: m.update(handedness="right"), "handedness does not match"),
        (lambda m: m.update(schema=99), "schema 99"),
        (lambda m: m.update(root_source="magic"), "root_source"),
        (lambda m: m["camera"].pop("fx"), "camera missing fx"),
    ],
)
def test_protocol_validation_errors(mutate, problem):
    m = _pose_msg()
    mutate(m)
    topic, msg = protocol.decode(protocol.encode("hand.pose.left", m))
    assert any(problem in p for p in protocol.validate(topic, msg))


@pytest.mark.parametrize("bad", ["up", "", "LEFT"])
def test_pose_topic_rejects_bad_handedness(bad):
    with pytest.raises(ValueError):
        protocol.pose_topic(bad)


_GOOD_K = '{"width": 1280, "height": 720, "fx": 900.5, "fy": 900, "cx": 640, "cy": 360}'


def test_lens_distortion_in_an_intrinsics_file_is_said_not_applied(tmp_path, caplog):
    from streamhand.geometry import Intrinsics

    p = tmp_path / "k.json"
    p.write_text(_GOOD_K.replace("}", ', "coeffs": [0.1, -0.2, 0, 0, 0]}'))
    assert Intrinsics.from_file(p).fx == 900.5
    assert "coeffs given but not applied" in caplog.text
    caplog.clear()
    p.write_text(_GOOD_K.replace("}", ', "coeffs": [0, 0, 0, 0, 0]}'))  # none: nothing to say
    Intrinsics.from_file(p)
    assert "not applied" not in caplog.text


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("k.json", _GOOD_K, None),
        ("k.yaml", "width: 1280\nheight: 720\nfx: 900.5\nfy: 900\ncx: 640\ncy: 360\n", None),
        ("k.yaml", "width: 1280\nheight: 720\nfx: 9.005e2\nfy: 9e2\ncx: 640\ncy: 360\n", None),  # YAML 1.1: text
        ("k.json", _GOOD_K.replace("1280", "1" + "0" * 400), "width must be a number, got 1000"),  # too big for a float
        ("k.yaml", "width: 1280\nheight: [720\n", "not valid YAML"),
        ("k.json", "{width: 1}", "not valid JSON"),
        ("k.json", "[1, 2]", "need a map"),
        ("k.json", '{"width": 1280, "height": 720, "fx": 900}', "fy, cx, cy missing"),
        ("k.json", _GOOD_K.replace("900.5", '"abc"'), "fx must be a number, got 'abc'"),
        ("k.json", _GOOD_K.replace("900.5", "-900"), "fx must be positive"),
        ("k.json", _GOOD_K.replace('"fy": 900', '"fy": 0'), "fy must be positive"),
        ("k.json", _GOOD_K.replace("1280", "12.5"), "width must be a positive whole number"),
        ("k.json", _GOOD_K.replace("360", "true"), "cy must be a number, got True"),
        ("k.json", _GOOD_K.replace("360", "NaN"), "cy must be a number"),
        ("k.json", _GOOD_K.replace('"cx": 640', '"cx": 5000'), r"principal point \(5000, 360\) lies outside"),
        ("k.json", _GOOD_K.replace("360", "-3"), "principal point"),
        ("k.json", _GOOD_K.replace("900.5", "9").replace('"fy": 900', '"fy": 9'), "not a camera's"),
        ("k.json", _GOOD_K.replace("900.5", "90000").replace('"fy": 900', '"fy": 90000'), "field of view of 0.8"),
        ("k.json", _GOOD_K.replace('"fy": 900', '"fy": 450'), "differ by more than 1.5x"),
    ],
)
def test_intrinsics_files(tmp_path, name, text, problem):
    from streamhand.geometry import Intrinsics

    p = tmp_path / name
    p.write_text(text)
    if problem is None:
        assert Intrinsics.from_file(p) == Intrinsics(1280, 720, 900.5, 900.0, 640.0, 360.0)
        return
    with pytest.raises(ValueError, match=problem) as e:
        Intrinsics.from_file(p)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), (900.5, 900.0, 640.0, 360.0)),  # as it is
        ((640, 360), (450.25, 450.0, 320.0, 180.0)),  # the same aspect ratio: scaled
        ((640, 480), None),  # 4:3 frames, 16:9 intrinsics: refused, naming both sizes
        ((720, 1280), None),
    ],
)
def test_intrinsics_fit_the_frame_or_name_the_mismatch(size, expected):
    from streamhand.capture.base import SourceError
    from streamhand.capture.files import default_intrinsics
    from streamhand.geometry import Intrinsics

    k = Intrinsics(1280, 720, 900.5, 900.0, 640.0, 360.0)
    if expected is None:
        with pytest.raises(SourceError, match=f"for 1280x720 but the frames are {size[0]}x{size[1]}"):
            default_intrinsics(*size, 60.0, k)
        return
    got = default_intrinsics(*size, 60.0, k)
    assert (got.fx, got.fy, got.cx, got.cy) == pytest.approx(expected)


def test_native_stderr_filter_drops_noise_and_keeps_the_rest(capfd):
    import os

    from streamhand.quiet import native_stderr_filtered

    with native_stderr_filtered():
        os.write(2, b"W0000 00:00:1796136578.449710    9841 inference_feedback_manager.cc:114] Feedback\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"[ WARN:0@0.053] global cap_v4l.cpp:913 open VIDEOIO(V4L2:/dev/video7)\n")
        os.write(2, b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5634545d5680] moov atom not found\n")
        os.write(2, b"error: ours, kept\n")
    err = capfd.readouterr().err
    assert err == "error: ours, kept\n"


def test_native_filter_keeps_a_live_line_that_runs_into_a_native_one(capfd):
    import os

    from streamhand.quiet import native_stderr_filtered

    with native_stderr_filtered():
        os.write(2, b"\r[---] 0/60 frames\x1b[KW0000 00:00:1796137198.045200   11804 landmark_projection_calc\n")
    assert capfd.readouterr().err == "\r[---] 0/60 frames\x1b[K\n"


@pytest.mark.parametrize(
    ("snap", "total", "text"),
    [
        ({}, None, "0 frames  0.0 fps  0 hands  e2e -"),
        ({"frames_processed": 30, "fps": 29.96, "hands_published": 31, "latency_ms": {"end_to_end": 40.4}}, 60,
         "[############------------] 30/60 frames  30.0 fps  31 hands  e2e 40 ms"),
        ({"frames_processed": 7, "source_state": "lost: unplugged"}, None, "7 frames  0.0 fps  0 hands  e2e -  lost: "
                                                                           "unplugged"),
        ({"frames_processed": 90}, 60, "[########################] 90/60 frames  0.0 fps  0 hands  e2e -"),
        ({"frames_processed": 9, "drops": {"capture": 4, "detect": 1}, "source_state": "lost: unplugged"}, None,
         "9 frames  0.0 fps  0 hands  e2e -  5 dropped  lost: unplugged"),
        ({"frames_processed": 9, "drops": {"capture": 0}}, None, "9 frames  0.0 fps  0 hands  e2e -"),
    ],
)  # fmt: skip
def test_live_status_text(snap, total, text):
    from streamhand.run.live_line import status_text

    assert status_text(snap, total) == text


def test_source_lengths_for_the_progress_bar(tmp_path):
    import cv2

    from streamhand.capture.demo import DemoSource
    from streamhand.capture.files import ImageSource, VideoSource

    img = np.zeros((48, 64, 3), np.uint8)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
    src = ImageSource(tmp_path)
    src.open()
    assert src.length == 3
    w = cv2.VideoWriter(str(tmp_path / "v.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(7):
        w.write(img)
    w.release()
    v = VideoSource(tmp_path / "v.mp4", realtime=False)
    v.open()
    assert v.length == 7
    v.close()
    assert DemoSource(seconds=1.0, loop=True).length is None  # endless
    assert DemoSource(seconds=1.0, fps=30, loop=False).length == 30


def test_frame_guard_cases():
    from streamhand.capture.base import Frame
    from streamhand.run.frame_guard import FrameGuard

    k = Intrinsics.from_fov(160, 120, 60)
    g = FrameGuard(live=False)

    def frame(img):
        return Frame(0, 0.0, 0.0, img, k, "x")

    assert g.check(frame(np.zeros((120, 160, 3), np.uint8))).intrinsics == k
    for bad in (np.zeros((120, 160), np.uint8), np.zeros((120, 160, 3), np.float32), np.zeros((8, 8, 3), np.uint8),
                np.zeros((120, 160, 4), np.uint8)):  # fmt: skip
        assert g.check(frame(bad)) is None
    assert g.bad_frames == 4
    big = g.check(frame(np.zeros((240, 320, 3), np.uint8)))
    assert (big.intrinsics.width, big.intrinsics.fx) == (320, pytest.approx(2 * k.fx))
    # another aspect ratio (a webcam switched from 4:3 to 16:9): pixels stay square, the field of view across
    # the longer side stays, the principal point stays at the centre; scaling each axis would stretch them 1.33x
    wide = g.check(frame(np.zeros((90, 160, 3), np.uint8))).intrinsics
    assert (wide.width, wide.height) == (160, 90)
    assert wide.fx == pytest.approx(k.fx) and wide.fy == pytest.approx(k.fx)
    assert (wide.cx, wide.cy) == (pytest.approx(k.cx), pytest.approx(k.cy * 90 / 120))
    assert wide.fov_deg()[0] == pytest.approx(60.0)
    portrait = g.check(frame(np.zeros((160, 120, 3), np.uint8))).intrinsics  # turned: the longer side keeps it
    assert portrait.fy == pytest.approx(portrait.fx) and portrait.fov_deg()[1] == pytest.approx(60.0)
    assert g.resized == 3
    assert g.state == ""  # not live: a still image repeated is no frozen camera


def test_ring_keeps_the_last_values_in_fixed_memory():
    from streamhand.run.stats import Ring, StageStats

    r = Ring(4)
    assert len(r) == 0 and r.values().size == 0
    for v in range(10):
        r.add(float(v))
    assert sorted(r.values()) == [6.0, 7.0, 8.0, 9.0] and r.total == 10
    nbytes = r._buf.nbytes
    for v in range(1000):
        r.add(float(v))
    assert r._buf.nbytes == nbytes  # no growth
    rows = Ring(3, width=2)
    rows.add([1.0, 2.0])
    assert rows.values().tolist() == [[1.0, 2.0]]
    st = StageStats(window=100)
    for i in range(1000):
        st.add("detect", i / 1000)
    p = st.percentiles_ms("detect")
    assert p["n"] == 100 and p["p50"] == pytest.approx(949.5)  # over the last 100 samples


def _depth_at_loop(depth: np.ndarray, uv: np.ndarray, radius: int = 3) -> np.ndarray:
    """The plain definition: each point's window, its valid pixels, their median."""
    h, w = depth.shape
    out = np.full(len(uv), np.nan)
    for i, (px, py) in enumerate(np.round(uv).astype(int)):
        win = depth[
            max(py - radius, 0) : max(min(py + radius + 1, h), 0), max(px - radius, 0) : max(min(px + radius + 1, w), 0)
        ]
        valid = win[win > 0]
        if valid.size:
            out[i] = float(np.median(valid))
    return out


def test_depth_at_matches_its_definition_everywhere():
    rng = np.random.default_rng(0)
    for _ in range(200):  # random sizes, holes, points inside, on the border and outside the image
        h, w = rng.integers(4, 50, 2)
        depth = rng.uniform(0.3, 1.0, (h, w)).astype(np.float32) * (rng.random((h, w)) > rng.random())
        uv = rng.uniform(-8, max(h, w) + 8, (21, 2))
        np.testing.assert_allclose(depth_at(depth, uv), _depth_at_loop(depth, uv), equal_nan=True)
        if min(h, w) >= 8:  # every window inside the image (a hand's usual case)
            inner = rng.uniform(3.0, [w - 4.0, h - 4.0], (21, 2))
            np.testing.assert_allclose(depth_at(depth, inner), _depth_at_loop(depth, inner), equal_nan=True)


@pytest.mark.parametrize(
    ("values", "mask", "expected"),
    [
        ([[3.0, 1.0, 2.0]], [[True, True, True]], [2.0]),  # odd count: the middle one
        ([[4.0, 1.0, 3.0, 2.0]], [[True, True, True, True]], [2.5]),  # even: the mean of the two middle ones
        ([[9.0, 1.0, 5.0, 7.0]], [[False, True, True, False]], [3.0]),  # masked values left out
        ([[1.0, 2.0], [5.0, 6.0]], [[False, False], [True, False]], [np.nan, 5.0]),  # a row with none: NaN
        ([[1.0, 2.0], [5.0, 6.0]], [[True, True], [False, False]], [1.5, np.nan]),  # ... first or last
        (np.zeros((0, 4)), np.zeros((0, 4), bool), []),  # no rows
    ],
)
def test_masked_median_table(values, mask, expected):
    got = masked_median(np.asarray(values, float), np.asarray(mask, bool))
    np.testing.assert_array_equal(got, np.asarray(expected, float))


def test_the_frame_rate_counts_from_the_first_frames_capture():
    """Two frames published 1 ms apart (the second waited in the pipeline while the first was placed) are not a
    rate of 1 000 frames a second: the span starts at the first frame's capture."""
    from streamhand.run.emit import Emitter

    e = object.__new__(Emitter)
    e.frames_processed, e.t_first, e.t_last = 2, 10.000, 10.041  # captured at 10.000, published at 10.040, 10.041
    assert e.fps() == pytest.approx(2 / 0.041)
    e.frames_processed, e.t_first, e.t_last = 0, None, None
    assert e.fps() == 0.0


def test_a_tracks_handedness_score_is_the_mean_over_the_frames_it_has_had():
    """A still image (every hand its own track) or a track's first frame: the frame's own score, not a fifth of its
    log-odds (which held every still under 0.6); a long, steady track: the same as that score."""
    from streamhand.detect.tracker import HandednessVote

    one = HandednessVote("left")
    one.add("left", 0.95)
    assert one.score == pytest.approx(0.95)
    steady = HandednessVote("right")
    for _ in range(200):
        steady.add("right", 0.9)
    assert steady.score == pytest.approx(0.9)
    mixed = HandednessVote("right")
    for s in (0.9, 0.6):
        mixed.add("right", s)
    assert 0.6 < mixed.score < 0.9
