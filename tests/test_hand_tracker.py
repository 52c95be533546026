"""The in-process tracker: the hands ``streamhand run`` publishes, without a process or a socket (real MediaPipe,
the shipped default model on ONNX Runtime, real sockets for the comparison)."""

from __future__ import annotations

import json
import re
import threading
import time

import cv2
import numpy as np
import pytest

from streamhand import Hand, HandTracker
from streamhand.app import RunError
from streamhand.capture.base import Frame
from streamhand.geometry import Intrinsics
from streamhand.stream.client import PoseSubscriber
from tests.conftest import free_port
from tests.helpers import invoke, rendered_frames


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three rendered 640x480 photos of one hand each, as PNG files, and their RGB arrays."""
    d = tmp_path_factory.mktemp("photos")
    rgbs, _, _ = rendered_frames(3, 640, 480, seed=5, occluders=0.0)
    for i, rgb in enumerate(rgbs):
        cv2.imwrite(str(d / f"{i}.png"), rgb[:, :, ::-1])
    return d, rgbs


def _published(args: list[str]) -> dict[int, list[dict]]:
    """``streamhand run ARGS`` (in this process) and the poses a subscriber received, by frame."""
    port = free_port()
    got: dict[int, list[dict]] = {}
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.pose",), raw=True, timeout=0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                m = sub.recv()
            except TimeoutError:
                continue
            got.setdefault(m.data["frame_id"], []).append(m.data)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        r = invoke("run", *args, "--port", str(port), "--control-port", str(free_port()), "--no-realtime")
        assert r.returncode == 0, r.stderr[-1500:]
        deadline = time.monotonic() + 5.0  # what was sent reaches the subscriber's thread, however busy the machine
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        stop.set()
        t.join(5)
        sub.close()
    return got


@pytest.mark.slow
def test_flip_average_gives_what_run_flip_average_publishes(photos):
    folder, rgbs = photos
    published = _published(["--images", str(folder / "0.png"), "--no-smooth", "--flip-average"])
    with HandTracker(tracking=False, flip_average=True) as tracker:
        hands = tracker.process(rgbs[0])
        assert tracker.detector.label.endswith("+flip")  # MediaPipe's networks, on whatever runtime auto picks
    assert len(hands) == len(published[0]) == 1
    assert np.abs(hands[0].joints_cam - np.array(published[0][0]["joints_cam"])).max() < 1e-4


@pytest.mark.parametrize("tracking", [False, True])
def test_process_gives_the_joints_run_publishes(photos, tracking):
    folder, rgbs = photos
    published = _published(["--images", str(folder / "0.png"), "--no-smooth"])
    assert len(published[0]) == 1
    with HandTracker(tracking=tracking) as tracker:
        hands = tracker.process(rgbs[0])
    assert len(hands) == 1 and isinstance(hands[0], Hand)
    h, p = hands[0], published[0][0]
    assert np.abs(h.joints_cam - np.array(p["joints_cam"])).max() < 1e-4
    assert np.abs(h.joints_rel - np.array(p["joints_rel"])).max() < 1e-4
    assert np.abs(h.joints_2d - np.array(p["joints_2d"])).max() < 1e-3
    assert h.handedness == p["handedness"] and h.root_source == p["root_source"] == "estimate"
    assert h.joint_std.shape == (21,) and h.quality == pytest.approx(float(np.mean(p["joint_std"])), rel=0.5)


def test_the_published_hand_is_pulled_toward_mediapipes_2d_as_configured(photos):
    """``model.ray_pull``: each published joint keeps the depth it was placed at and reprojects (1 - share) as far
    from MediaPipe's landmark as the placement alone did (real MediaPipe and model); the error model judges the
    answer published: its bones as pulled, its joints' reach from the wrist."""
    from streamhand.geometry import project
    from streamhand.runtime_config import RunConfig

    _, rgbs = photos
    got = {}
    for share in (0.0, 0.3):  # share 1 and the geometry: tests/test_runtime_parts.py
        with HandTracker(config=RunConfig.model_validate({"model": {"ray_pull": share}})) as tracker:
            (got[share],) = tracker.process(rgbs[1])
        k = tracker.intrinsics or Intrinsics.from_fov(640, 480, 60.0)
    rigid = got[0.0]
    miss = np.linalg.norm(project(rigid.joints_cam, k) - rigid.joints_2d, axis=1)
    assert miss.mean() > 1.0  # the lifted shape does not reproject onto the landmarks by itself
    h = got[0.3]
    np.testing.assert_allclose(h.joints_cam[:, 2], rigid.joints_cam[:, 2], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(project(h.joints_cam, k) - h.joints_2d, axis=1), (1 - 0.3) * miss,
                               atol=1e-6)  # fmt: skip
    assert np.abs(h.joint_std - rigid.joint_std).max() > 1e-7  # judged on what it publishes
    np.testing.assert_allclose(h.joint_std, rigid.joint_std, rtol=0.2)  # the same hand, a little reshaped


def test_stream_over_an_image_folder_and_tracks_across_calls(photos):
    folder, rgbs = photos
    per_frame = list(HandTracker.stream(folder))
    assert len(per_frame) == 3 and all(len(h) <= 1 for h in per_frame) and sum(map(len, per_frame)) >= 2
    ids = [h[0].track_id for h in per_frame if h]
    assert len(set(ids)) == len(ids)  # unrelated photos: a track each
    with HandTracker(intrinsics={"width": 640, "height": 480, "fx": 500, "fy": 500, "cx": 320, "cy": 240}) as t:
        ids = [t.process(rgbs[0], t=i / 30)[0].track_id for i in range(3)]  # one hand held still: one track
        assert ids == [ids[0]] * 3
        small = t.process(cv2.resize(rgbs[0], (320, 240)))  # the intrinsics follow the frame's size
        assert len(small) == 1 and 0.2 < small[0].joints_cam[0, 2] < 0.8


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (np.zeros((10, 10), np.uint8), "(H, W, 3) uint8"),
        (np.zeros((10, 10, 3), np.float32), "(H, W, 3) uint8"),
        (np.zeros((10, 10, 4), np.uint8), "(H, W, 3) uint8"),
    ],
)
def test_process_refuses_what_is_not_an_rgb_image(image, says):
    with HandTracker() as t, pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        t.process(image)


def test_bad_input_to_process_leaves_the_tracker_working():
    """An empty image (which MediaPipe's graph would take and be broken by for good), a depth image of another size,
    depth in millimetres: a ValueError each, and the next frame is read; after close, a clear error."""
    rgbs, _, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    with HandTracker(with_depth=True) as t:
        for image, depth, says in [(np.zeros((0, 0, 3), np.uint8), None, r"\(H, W, 3\) uint8"),
                                   (rgbs[0], np.ones((120, 160), np.float32), r"aligned to the colour image"),
                                   (rgbs[0], np.ones((240, 320, 3), np.float32), r"aligned to the colour image"),
                                   (rgbs[0], np.full((240, 320), 500, np.uint16), r"millimetres: divide by 1000"),
                                   (rgbs[0], np.full((240, 320), 0.5, np.float16), r"float32 or float64, not float16$"),
                                   (rgbs[0], np.full((240, 320), 500.0, np.float32), r"millimetres or centimetres\?"),
                                   (rgbs[0], np.full((240, 320), 50.0), r"millimetres or centimetres\?")]:
            with pytest.raises(ValueError, match=says):
                t.process(image, depth=depth)
        assert len(t.process(rgbs[0], depth=np.full((240, 320), 0.5, np.float32))) == 1  # metres, and no depth
        assert len(t.process(rgbs[0], depth=np.zeros((240, 320), np.float32))) == 1
        assert len(t.process(rgbs[0])) == 1
    with pytest.raises(RuntimeError, match="this HandTracker is closed"):
        t.process(rgbs[0])
    with pytest.raises(RuntimeError, match="this HandTracker is closed"):
        t.process_frame(object())
    t.close()  # twice: nothing to do


def test_a_depth_only_tracker_says_what_it_needs():
    with pytest.raises(RunError, match="with_depth=True and give each frame's depth") as e:
        HandTracker(model="depth", modalities="depth")
    assert "--realsense" not in str(e.value)
    rgbs, depths, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    with HandTracker(model="depth", modalities="depth", with_depth=True) as t:
        with pytest.raises(ValueError, match=r"this tracker reads depth alone \(modalities depth\); give each frame's"):
            t.process(rgbs[0])
        assert len(t.process(rgbs[0], depth=depths[0])) == 1


def test_infinite_depth_reads_as_no_depth():
    """Depth of infinity everywhere gave NaN joints with the depth model (infinity counted as a distance)."""
    rgbs, _, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    with HandTracker(model="depth", with_depth=True) as t:
        hands = t.process(rgbs[0], depth=np.full((240, 320), np.inf, np.float32))
    assert len(hands) == 1 and np.isfinite(hands[0].joints_cam).all() and np.isfinite(hands[0].quality)
    assert hands[0].root_source == "estimate"


@pytest.mark.parametrize("t_bad", [float("nan"), float("inf"), "0.1", True])
def test_a_frame_time_that_is_not_a_finite_number_is_refused_and_smoothing_goes_on(t_bad):
    """A NaN time used to poison every later pose of the track (the filter's clock stayed NaN)."""
    rgbs, _, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    with HandTracker(smooth=True) as t:
        t.process(rgbs[0], t=0.0)
        with pytest.raises(ValueError, match="t: the frame's time in seconds, a finite number"):
            t.process(rgbs[0], t=t_bad)
        later = t.process(rgbs[0], t=2 / 30)
        assert len(later) == 1 and np.isfinite(later[0].joints_cam).all()


def test_a_time_that_does_not_move_forward_is_said_once_per_frame(caplog):
    rgbs, _, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    with HandTracker(smooth=True) as t, caplog.at_level("WARNING"):
        t.process(rgbs[0], t=1.0)
        t.process(rgbs[0], t=1.0)
    assert "does not move forward" in caplog.text


@pytest.mark.parametrize(
    ("k", "says"),
    [
        (Intrinsics(640, 480, 600.0, 600.0, 9000.0, 240.0), "the principal point (9000, 240) lies outside"),
        (Intrinsics(640, 480, -600.0, 600.0, 320.0, 240.0), "fx must be positive"),
        (Intrinsics(640, 480, 0.0, 600.0, 320.0, 240.0), "fx must be positive"),
        (Intrinsics(640, 480, float("nan"), 600.0, 320.0, 240.0), "fx must be a number"),
    ],
)
def test_intrinsics_given_as_an_object_are_checked_as_a_file_of_them_is(k, says):
    with pytest.raises(RunError) as e:
        HandTracker(intrinsics=k)
    assert says in str(e.value) and "\n" not in str(e.value)
    with HandTracker() as t, pytest.raises(ValueError, match=re.escape(says)):  # a frame's own: a ValueError
        t.process(np.zeros((480, 640, 3), np.uint8), intrinsics=k)


def test_a_frames_own_intrinsics_as_a_dict_or_a_file(tmp_path):
    rgbs, _, _ = rendered_frames(1, 640, 480, seed=5, occluders=0.0)
    k = {"width": 640, "height": 480, "fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0}
    (tmp_path / "k.json").write_text(json.dumps(k))
    with HandTracker(tracking=False) as t:  # unrelated photos: each read the same way
        a = t.process(rgbs[0], intrinsics=Intrinsics(**k))
        b = t.process(rgbs[0], intrinsics=k)
        c = t.process(rgbs[0], intrinsics=tmp_path / "k.json")
    assert len(a) == len(b) == len(c) == 1
    assert np.allclose(a[0].joints_cam, b[0].joints_cam) and np.allclose(a[0].joints_cam, c[0].joints_cam)


def test_one_tracker_shared_by_two_threads():
    """Two threads calling one tracker crashed the interpreter (MediaPipe's graph read two frames at once)."""
    rgbs, _, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    found: list[int] = []
    errors: list[BaseException] = []
    with HandTracker() as t:

        def work() -> None:
            try:
                for _ in range(12):
                    found.append(len(t.process(rgbs[0])))
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
    assert not errors and len(found) == 24 and min(found) >= 1


@pytest.mark.parametrize(
    ("source", "options", "says"),
    [
        (None, {}, "stream(): the source is \"demo\", a camera index"),
        ("demo", {"fov_deg": 0}, "HandTracker.stream: fov_deg"),
        ("no/such/clip.mp4", {}, "video not found: no/such/clip.mp4"),
        # a stream URL is a camera (it was taken for a video whose path lost a slash: "video not found: http:/...")
        ("http://u:pw@127.0.0.1:9/video", {}, "--camera 'http://u:***@127.0.0.1:9/video': the stream did not open"),
    ],
)
def test_stream_says_what_is_wrong_in_one_line(source, options, says):
    with pytest.raises(RunError) as e:
        next(HandTracker.stream(source, **options))
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_stream_reconnects_a_lost_live_source_as_run_does():
    """``HandTracker.stream`` over a camera that is unplugged and comes back: it raised SourceLost; it reopens the
    source with growing pauses and goes on, as ``streamhand run`` does."""
    from streamhand.hand_tracker import _read_or_reconnect
    from tests.test_sources import FlakySource

    img = np.zeros((120, 160, 3), np.uint8)
    src = FlakySource(Frame(0, 0.0, 0.0, img, Intrinsics.from_fov(160, 120, 60), "x"), total=6)
    got = []
    while (f := _read_or_reconnect(src)) is not None:
        got.append(f.index)
    assert got == [0, 1, 2, 3, 4, 5] and src.reopens == 3


def test_stream_over_one_picture(photos):
    folder, _ = photos
    assert [len(h) for h in HandTracker.stream(folder / "0.png")] == [1]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"intrinsics": {"width": 640, "height": 480, "fx": -500, "fy": 500, "cx": 320, "cy": 240}},
         "intrinsics: fx must be positive (pixels), got -500"),
        ({"intrinsics": {"width": 640, "height": 480, "fx": 500}}, "intrinsics: intrinsics need width, height, fx, fy"),
        ({"intrinsics": [1, 2, 3]}, "intrinsics: give an Intrinsics, a dict or a JSON/YAML file, not a list"),
        ({"intrinsics": "no/such/k.json"}, "no/such/k.json: cannot read the intrinsics"),
        ({"max_hands": 0}, "HandTracker: detect.max_hands: Input should be greater than or equal to 1"),
        ({"fov_deg": 200}, "HandTracker: source.fov_deg:"),
        ({"backend": "bogus"}, "HandTracker: model.backend:"),
    ],
)
def test_bad_options_are_one_line(options, says):
    with pytest.raises(RunError) as e:
        HandTracker(**options)
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_options_as_the_command_line_spells_them_and_a_config_made_anywhere(tmp_path, monkeypatch):
    """``modalities`` as a comma list, and a RunConfig of defaults in a folder without an engines folder."""
    from streamhand.runtime_config import RunConfig

    monkeypatch.chdir(tmp_path)
    with HandTracker(modalities="2d,world") as t:
        assert tuple(t.modalities) == ("2d", "world")
    with HandTracker(config=RunConfig()) as t:
        assert t.cfg.detect.max_hands == 2
    cfg = RunConfig()
    cfg.detect.max_hands, cfg.smooth.enabled = 1, True  # set after it was made: kept too
    with HandTracker(config=cfg) as t:
        assert t.cfg.detect.max_hands == 1 and t.cfg.smooth.enabled


def test_a_bad_model_is_one_line():
    with pytest.raises(RunError) as e:
        HandTracker(model="no-such-model")
    assert "no-such-model" in str(e.value) and "\n" not in str(e.value)


def test_smoothing_and_an_empty_frame():
    rgbs, _, _ = rendered_frames(1, 320, 240, seed=6, occluders=0.0)
    k = Intrinsics.from_fov(320, 240, 60.0)
    with HandTracker(smooth=True, intrinsics=k) as t:
        assert t.process(np.zeros((240, 320, 3), np.uint8)) == []
        first = t.process(rgbs[0], t=0.0)
        moved = t.process(np.roll(rgbs[0], 12, axis=1), t=1 / 30)  # 12 px to the right, one frame later
        assert len(first) == len(moved) == 1
        raw_shift = 12 / k.fx * first[0].joints_cam[0, 2]  # what the wrist moved, in metres
        assert 0 < moved[0].joints_cam[0, 0] - first[0].joints_cam[0, 0] < raw_shift  # smoothed: part of the way
