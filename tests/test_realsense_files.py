"""RealSense recordings in: recordings written here through librealsense's own software device and recorder (the
rosbag2 ``.db3`` pyrealsense2 2.59 writes) from rendered hands with depth, played back by
:class:`~streamhand.capture.realsense.RealSenseSource` (``config.enable_device_from_file``) and by
``streamhand run --realsense-file``: every frame, the file's intrinsics, depth scale and clock, the end of the file
ending the source, and the same poses as the same frames fed to the tracker directly; files that are not
recordings, or not whole, are one line and exit 2."""

from __future__ import annotations

import gc
import json
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamhand.capture.base import SourceError
from streamhand.geometry import Intrinsics
from tests.conftest import free_port
from tests.helpers import invoke, rendered_frames

rs = pytest.importorskip("pyrealsense2", reason="needs pyrealsense2 and libusb-1.0")

from streamhand.capture.realsense import RealSenseSource  # noqa: E402 - after the skip

N = 8  # frames in the main recording
FPS = 30
UNITS = 0.0001  # depth units of the main recording (a D405's): not the 1 mm a reader might assume


def _intrinsics(k: Intrinsics) -> rs.intrinsics:
    i = rs.intrinsics()
    i.width, i.height, i.ppx, i.ppy, i.fx, i.fy = k.width, k.height, k.cx, k.cy, k.fx, k.fy
    i.model, i.coeffs = rs.distortion.none, [0.0] * 5
    return i


def _pixels(rgb: np.ndarray, fmt: str) -> tuple[np.ndarray, int]:
    """An RGB image in a RealSense colour format, and its bytes per pixel."""
    if fmt == "bgr8":
        return np.ascontiguousarray(rgb[:, :, ::-1]), 3
    if fmt == "yuyv":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUYV), 2
    return np.ascontiguousarray(rgb), 3


def software_camera(k: Intrinsics, *, colour: str = "rgb8", units: float = UNITS,
                    streams: tuple[str, ...] = ("depth", "color")) -> tuple[rs.software_device, list]:  # fmt: skip
    """A software device with a depth and a colour sensor of intrinsics ``k`` (identity extrinsics between them):
    the device, and (kind, sensor, stream profile, bytes per pixel) per stream."""
    dev = rs.software_device()
    sensors = []
    for kind in streams:
        s = dev.add_sensor("Depth" if kind == "depth" else "Color")
        fmt = rs.format.z16 if kind == "depth" else getattr(rs.format, colour)
        bpp = 2 if kind == "depth" else {"yuyv": 2}.get(colour, 3)
        vs = rs.video_stream()
        vs.type = rs.stream.depth if kind == "depth" else rs.stream.color
        vs.index, vs.uid, vs.width, vs.height, vs.fps = 0, len(sensors), k.width, k.height, FPS
        vs.bpp, vs.fmt = bpp, fmt
        vs.intrinsics = _intrinsics(k)
        profile = s.add_video_stream(vs)
        if kind == "depth":
            s.add_read_only_option(rs.option.depth_units, units)
        sensors.append((kind, s, profile, bpp))
    if len(sensors) == 2:
        ext = rs.extrinsics()
        ext.rotation, ext.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0.0, 0.0, 0.0]
        sensors[0][2].register_extrinsics_to(sensors[1][2], ext)
    return dev, sensors


def push(sensors: list, i: int, rgb: np.ndarray, depth: np.ndarray, k: Intrinsics, colour: str = "rgb8",
         units: float = UNITS) -> list[np.ndarray]:  # fmt: skip
    """Frame ``i`` (timestamp ``i / FPS`` s) to each sensor; the pixel buffers, to be kept until the frames are used."""
    keep = []
    for kind, s, profile, bpp in sensors:
        if kind == "depth":
            pixels = np.clip(np.round(depth / units), 0, 65535).astype(np.uint16)
        else:
            pixels = _pixels(rgb, colour)[0]
        keep.append(pixels)
        f = rs.software_video_frame()
        f.pixels, f.stride, f.bpp = pixels, k.width * bpp, bpp
        f.timestamp, f.domain, f.frame_number = i * 1000.0 / FPS, rs.timestamp_domain.hardware_clock, i
        f.profile = profile.as_video_stream_profile()
        s.on_video_frame(f)
    return keep


def record(path: Path, rgbs: list[np.ndarray], depths: list[np.ndarray], k: Intrinsics, *, colour: str = "rgb8",
           units: float = UNITS, streams: tuple[str, ...] = ("depth", "color"),
           pace: bool = False) -> Path:  # fmt: skip
    """Write ``rgbs`` and ``depths`` (metres) as a RealSense recording: :func:`software_camera` wrapped by
    ``rs.recorder``; frame ``i`` carries the timestamp ``i / FPS`` s. ``pace``: push the frames at FPS (the recorder
    keeps the time it got them)."""
    dev, sensors = software_camera(k, colour=colour, units=units, streams=streams)
    recorder = rs.recorder(str(path), dev)
    queue = rs.frame_queue(len(rgbs) * 2 + 2)
    for _, s, profile, _ in sensors:
        s.open(profile)
        s.start(queue)
    keep = []
    for i, (rgb, depth) in enumerate(zip(rgbs, depths)):
        keep += push(sensors, i, rgb, depth, k, colour, units)
        if pace:
            time.sleep(1.0 / FPS)
    for _, s, _, _ in sensors:
        s.stop()
        s.close()
    del recorder, sensors, dev, queue, keep  # the recorder writes the file's end when it goes
    gc.collect()
    assert path.is_file() and path.stat().st_size > 0
    return path


def live_frames(rgbs: list[np.ndarray], depths: list[np.ndarray], k: Intrinsics) -> list:
    """The same frames as from a live camera: :func:`software_camera` into a syncer, read by
    ``RealSenseSource.from_syncer`` (the live path's alignment and conversion). A blank frame goes first: a syncer
    hands the first frames on unpaired."""
    _dev, sensors = software_camera(k)  # the device lives as long as its sensors are used
    sync = rs.syncer(len(rgbs) * 2 + 4)
    for _, s, profile, _ in sensors:
        s.open(profile)
        s.start(sync)
    keep, framesets = [], []
    blank = (np.zeros_like(rgbs[0]), np.zeros_like(depths[0]))
    for i, (rgb, depth) in enumerate([blank, *zip(rgbs, depths)]):
        keep += push(sensors, i, rgb, depth, k)
        while (got := sync.try_wait_for_frames(100))[0]:
            if got[1].get_color_frame() and got[1].get_depth_frame() and i > 0:
                framesets.append(got[1])
    src = RealSenseSource.from_syncer(lambda _ms: framesets.pop(0), depth_scale=UNITS)
    src.open()
    frames = [src.read() for _ in range(len(framesets))]
    for _, s, _, _ in sensors:
        s.stop()
        s.close()
    return frames


def read_all(src: RealSenseSource, limit_s: float = 60.0) -> tuple[list, float]:
    """Every frame of an opened source until it ends, and the seconds from its last frame to the end."""
    frames, t_last, t0 = [], time.monotonic(), time.monotonic()
    while (f := src.read()) is not None:
        frames.append(f)
        t_last = time.monotonic()
        assert t_last - t0 < limit_s, "the recording does not end"
    return frames, time.monotonic() - t_last


def play(path: Path, **options) -> tuple[list, RealSenseSource]:
    """Every frame of a recording played through a :class:`RealSenseSource` (``options``: its own), and the source."""
    src = RealSenseSource(file=path, **options)
    src.open()
    try:
        frames, _ = read_all(src)
    finally:
        src.close()
    return frames, src


@pytest.fixture(scope="module")
def hands():
    """N rendered 320x240 frames of one hand each (no occluders), their depth in metres, one camera's intrinsics."""
    rgbs, depths, hs = rendered_frames(N, 320, 240, seed=11, occluders=0.0)
    return rgbs, depths, hs.intrinsics[0]


@pytest.fixture(scope="module")
def recording(hands, tmp_path_factory) -> Path:
    rgbs, depths, k = hands
    return record(tmp_path_factory.mktemp("rec") / "hands.db3", rgbs, depths, k)


@pytest.fixture(scope="module")
def direct(hands):
    """The hands of the same colour and depth frames fed to the tracker directly (no recording, no alignment)."""
    from streamhand import HandTracker

    rgbs, depths, k = hands
    with HandTracker(with_depth=True, intrinsics=k, tracking=False) as tracker:  # each frame on its own
        return [tracker.process(rgb, t=i / FPS, depth=d) for i, (rgb, d) in enumerate(zip(rgbs, depths))]


@pytest.fixture(scope="module")
def live(hands):
    """The hands of the same frames from a live RealSense (the software device, no recording): what a camera gives."""
    from streamhand import HandTracker

    rgbs, depths, k = hands
    frames = live_frames(rgbs, depths, k)
    assert len(frames) == N
    with HandTracker(with_depth=True) as tracker:
        return [tracker.process_frame(f) for f in frames]


@pytest.fixture(scope="module")
def live_each(hands):
    """The same, each frame on its own (no tracking across frames: a frame missing from a playback changes no other)."""
    from streamhand import HandTracker

    rgbs, depths, k = hands
    with HandTracker(with_depth=True, tracking=False) as tracker:
        return [tracker.process_frame(f) for f in live_frames(rgbs, depths, k)]


def test_recorder_writes_rosbag2(recording):
    """What pyrealsense2 2.59's recorder writes: a rosbag2 SQLite file (it refuses any name but .db3)."""
    assert recording.read_bytes()[:16] == b"SQLite format 3\x00"
    with pytest.raises(RuntimeError, match=r"\.db3"):
        rs.recorder(str(recording.with_suffix(".bag")), rs.software_device())


def test_every_frame_with_the_files_intrinsics_depth_scale_and_clock(recording, hands):
    rgbs, depths, k = hands
    src = RealSenseSource(file=recording, realtime=False)
    src.open()
    try:
        frames, end_s = read_all(src)
        assert src.read() is None  # ended stays ended
    finally:
        src.close()
    # every frame, in order; librealsense's pipeline was seen to drop one of the eight on a machine loaded by the
    # rest of the suite even in non-real-time playback, so one may be missing (each is found by its colour, stored
    # losslessly)
    assert len(frames) >= N - 1 and [f.index for f in frames] == list(range(len(frames)))
    order = [next(i for i in range(N) if np.array_equal(f.rgb, rgbs[i])) for f in frames]
    assert order == sorted(set(order))
    assert end_s < 2.0  # the end of the file is seen within a poll or two
    assert src.depth_scale == pytest.approx(UNITS) and (src.width, src.height, src.fps) == (320, 240, FPS)
    assert not src.live and src.has_depth and src.name == "realsense-file"
    for i, f in zip(order, frames):
        assert f.camera_id == "realsense-file:hands.db3"
        assert f.t_media == pytest.approx((i - order[0]) / FPS, abs=1e-6)  # the recording's clock, from its first frame
        assert (f.intrinsics.fx, f.intrinsics.fy, f.intrinsics.cx, f.intrinsics.cy) == pytest.approx(
            (k.fx, k.fy, k.cx, k.cy), rel=1e-6
        )
        np.testing.assert_array_equal(f.rgb, rgbs[i])  # colour is stored losslessly
        valid = (depths[i] > 0) & (f.depth > 0)
        assert valid.mean() > 0.85
        err = np.abs(f.depth[valid] - depths[i][valid])
        # aligned to colour by librealsense (rs.align): the depth fed, but at the depth edges (about 2 % of pixels)
        assert np.median(err) <= UNITS and np.mean(err > 0.001) < 0.05


def test_played_in_real_time_at_the_recorded_rate(hands, tmp_path):
    rgbs, depths, k = hands
    rgbs, depths = (rgbs * 2)[:12], (depths * 2)[:12]
    path = record(tmp_path / "paced.db3", rgbs, depths, k, pace=True)  # 12 frames over 0.4 s
    t0 = time.monotonic()
    frames, _ = play(path)
    elapsed = time.monotonic() - t0
    # paced at the recorded rate from the first read (a frame is missed only when the reader falls behind)
    # (under load a real-time playback drops frames, the last one too: the clock, not the count, is what is checked)
    steps = [f.t_media * FPS for f in frames]
    assert 6 <= len(frames) <= 12 and all(abs(v - round(v)) < 1e-3 and 0 <= round(v) <= 11 for v in steps)
    assert elapsed >= 0.3
    assert all(b.t_media > a.t_media for a, b in zip(frames, frames[1:]))


@pytest.mark.parametrize("colour", ["bgr8", "yuyv"])
def test_other_colour_formats_come_out_rgb(hands, tmp_path, colour):
    rgbs, depths, k = hands
    path = record(tmp_path / f"{colour}.db3", rgbs[:2], depths[:2], k, colour=colour, units=0.001)
    frames, src = play(path, realtime=False)
    # librealsense's playback on a loaded machine may drop one of the two: each frame read is one of them
    assert 1 <= len(frames) <= 2 and src.depth_scale == pytest.approx(0.001)
    for f in frames:
        diff = min((np.abs(f.rgb.astype(int) - rgb) for rgb in rgbs[:2]), key=lambda d: d.mean())
        assert f.rgb.shape == (240, 320, 3) and (diff.max() == 0 if colour == "bgr8" else diff.mean() < 4)


def test_mirror_flips_colour_depth_and_intrinsics(recording, hands):
    src = RealSenseSource(file=recording, realtime=False, mirror=True)
    src.open()
    try:
        f = src.read()
    finally:
        src.close()
    # the first frame read (on a loaded machine the playback may have dropped the very first: found by its colour)
    assert any(np.array_equal(f.rgb, rgb[:, ::-1]) for rgb in hands[0])
    assert f.intrinsics.cx == pytest.approx(319 - hands[2].cx, rel=1e-6)


def _worst(a: list, b: list) -> float:
    """The largest joint difference (m) between two runs' hands, frame by frame (the same hands found in both)."""
    worst = 0.0
    assert len(a) == len(b)
    for ha, hb in zip(a, b):
        assert len(ha) == len(hb) and [h.handedness for h in ha] == [h.handedness for h in hb]
        worst = max([worst] + [float(np.abs(x.joints_cam - y.joints_cam).max()) for x, y in zip(ha, hb)])
    return worst


def test_same_poses_as_the_same_frames_live(recording, hands, live_each, direct):
    """The recording through the source and the tracker: depth places every hand (``root_source`` ``depth``), and
    the joints are those of the same frames from the live camera path (within 1 mm; measured: identical). Against
    the raw depth fed to the tracker without librealsense (``direct``) the hands agree too but where rs.align
    moves depth edges by a pixel near a joint (measured: 4 of 5 hands identical, one 4.3 mm apart)."""
    from streamhand import HandTracker

    frames, _ = play(recording, realtime=False)
    with HandTracker(with_depth=True, tracking=False) as tracker:
        played = [tracker.process_frame(f) for f in frames]
    # the frames' places in the recording, by their colour (one may be missing on a loaded machine: see above)
    rgbs = hands[0]
    order = [next(i for i in range(N) if np.array_equal(f.rgb, rgbs[i])) for f in frames]
    live, direct = [live_each[i] for i in order], [direct[i] for i in order]
    assert len(played) >= N - 1 and sum(1 for h in played if h) >= N // 2  # most hands found (each a new one)
    assert all(h.root_source == "depth" for hs in played for h in hs)
    assert _worst(played, live) < 0.001
    assert _worst(played, direct) < 0.01
    diffs = [np.abs(x.joints_cam - y.joints_cam).max() for a, b in zip(played, direct) for x, y in zip(a, b)]
    assert sum(d < 1e-6 for d in diffs) >= len(diffs) - 2


def test_run_plays_a_recording(recording, live, tmp_path):
    """``streamhand run --realsense-file``: every frame processed, the hands published placed by depth, the same
    joints as the frames fed directly."""
    rep, saved = tmp_path / "r.json", tmp_path / "p.jsonl"
    r = invoke("run", "--realsense-file", str(recording), "--no-realtime", "--no-smooth", "--report", str(rep),
               "--save", str(saved), "--port", str(free_port()), "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    report = json.loads(rep.read_text())
    assert report["frames_in"] == report["frames_processed"] >= N - 1  # one may be missing on a loaded machine
    whole = report["frames_processed"] == N
    if whole:
        assert report["detection_rate"] == pytest.approx(sum(1 for h in live if h) / N)
    poses = [json.loads(x) for x in saved.read_text().splitlines()]
    poses = [p for p in poses if p["topic"].startswith("hand.pose.")]
    assert all(p["root_source"] == "depth" for p in poses)
    assert len(poses) == sum(map(len, live)) if whole else len(poses) >= sum(map(len, live)) - 2
    for p in poses if whole else []:  # the same as from the live camera path, to within the wire's rounding
        want = live[p["frame_id"]][0]
        assert np.abs(np.array(p["joints_cam"]) - want.joints_cam).max() < 0.001
        assert p["camera"]["id"] == "realsense-file:hands.db3"


class _Stuck:
    """A pipeline that delivers nothing more and a playback that says it is still playing, at the positions (ns)
    given, one a call, the last for ever."""

    def __init__(self, *positions: int) -> None:
        self.positions = list(positions)

    def try_wait_for_frames(self, timeout_ms: int) -> tuple[bool, None]:
        time.sleep(timeout_ms / 1000)
        return False, None

    def current_status(self) -> str:
        return "playing"

    def get_position(self) -> int:
        return self.positions.pop(0) if len(self.positions) > 1 else self.positions[0]

    def get_duration(self):
        import datetime

        return datetime.timedelta(seconds=9)

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("realtime", [False, True])
def test_a_playback_that_never_ends_is_ended(recording, realtime):
    """The guard behind the end of the file: no frame for ``stall_s`` ends the source instead of waiting for ever;
    played in real time, not before the recording's whole length has passed since the playback started, so that a
    pause in the recording is waited out (librealsense's position did not tell one: a pause cut playbacks short)."""
    src = RealSenseSource(file=recording, realtime=realtime, stall_s=0.3)
    src.open()
    src._pipeline = src._playback = _Stuck(0)
    src.duration_s = 1.0
    t0 = time.monotonic()
    assert src.read() is None
    took = time.monotonic() - t0
    assert (1.3 <= took < 3.0) if realtime else (0.3 <= took < 2.0), took


def test_a_recording_named_in_capitals_says_so(recording, tmp_path):
    """`UP.DB3` passed the name check and then failed inside librealsense with a line about a version."""
    up = tmp_path / "UP.DB3"
    up.write_bytes(recording.read_bytes())
    with pytest.raises(SourceError, match=r"only if its name ends in \.db3 \(in lower case\)"):
        RealSenseSource(file=up).open()


def test_a_live_camera_skipping_many_unpaired_framesets_goes_on():
    """Each frameset without both streams was skipped by a recursive read that held every one of them: librealsense's
    frame pool ran dry after 16 and the camera looked lost."""
    src = RealSenseSource.from_syncer(lambda _ms: object(), depth_scale=UNITS)
    src.open()
    results = [None] * 5000 + ["the frame"]
    src._frame = lambda fs, t_media=None: results.pop(0)
    assert src.read() == "the frame" and not results


def test_closing_does_not_wait_out_a_pause_in_the_recording(recording, caplog):
    """librealsense's stop waits out a pause in a recording played in real time (two minutes, for one): a run that
    stopped then took that long to exit."""

    class Slow(_Stuck):
        def stop(self) -> None:
            time.sleep(30)

    src = RealSenseSource(file=recording)
    src.open()
    src._pipeline = src._playback = Slow(0)
    t0 = time.monotonic()
    src.close()
    assert time.monotonic() - t0 < 5 and "did not stop within" in caplog.text


def test_a_recording_damaged_mid_way_is_said(hands, tmp_path, caplog):
    """librealsense stops at a frame it cannot read and says so only in its own log: the run ended with exit 0 and
    the rest of the recording lost without a word. Played frame by frame, the frames handed on are counted against
    the recording's own index."""
    import sqlite3

    path = record(tmp_path / "damaged.db3", *hands)
    src = RealSenseSource(file=path, realtime=False)
    src.open()
    try:
        # whole: nothing to say (under load librealsense was seen to drop one frame even so: allowed, as elsewhere)
        assert len(read_all(src)[0]) >= N - 1 and "colour frames" not in caplog.text
    finally:
        src.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT messages.id, length(data) FROM messages JOIN topics ON messages.topic_id = topics.id "
                          "WHERE topics.name LIKE '%/Color_%/image/data%' ORDER BY timestamp").fetchall()  # fmt: skip
        msg, size = rows[len(rows) // 2]
        db.execute("UPDATE messages SET data = ? WHERE id = ?", (np.random.default_rng(0).bytes(size), msg))
    src = RealSenseSource(file=path, realtime=False)
    src.open()
    try:
        played = len(read_all(src)[0])
    finally:
        src.close()
    assert played <= len(rows) // 2
    assert f"handed on {played} of the {len(rows)} colour frames the recording holds" in caplog.text


def _sqlite_not_a_recording(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("create table notes (text)")
        db.execute("insert into notes values ('not a recording')")
    db.close()


@pytest.fixture(scope="module")
def bad_files(hands, recording, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """Files that are not (whole) recordings: name -> (path, what the error line says)."""
    rgbs, depths, k = hands
    d = tmp_path_factory.mktemp("bad")
    (d / "folder.db3").mkdir()
    (d / "notes.txt").write_text("hello, not a recording\n")
    (d / "junk.bag").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d / "empty.db3").write_bytes(b"")
    data = recording.read_bytes()
    (d / "half.db3").write_bytes(data[: len(data) // 2])
    (d / "head.db3").write_bytes(data[:100])
    (d / "ros1-cut.bag").write_bytes(b"#ROSBAG V2.0\n" + bytes(range(256)) * 4)
    (d / "named.bag").write_bytes(data)
    _sqlite_not_a_recording(d / "other.db3")
    record(d / "colour-only.db3", rgbs[:2], depths[:2], k, streams=("color",))
    record(d / "depth-only.db3", rgbs[:2], depths[:2], k, streams=("depth",))
    return {
        "missing": (str(d / "no-such.db3"), "not found"),
        "folder": (str(d / "folder.db3"), "a folder"),
        "text": (str(d / "notes.txt"), "not a RealSense recording"),
        "random bytes": (str(d / "junk.bag"), "not a RealSense recording"),
        "empty": (str(d / "empty.db3"), "not a RealSense recording"),
        "cut in half": (str(d / "half.db3"), "damaged or cut short"),
        "cut after 100 bytes": (str(d / "head.db3"), "cannot read the recording"),
        "a cut ROS1 bag": (str(d / "ros1-cut.bag"), "damaged or cut short"),
        "a .db3 named .bag": (str(d / "named.bag"), "ends in .db3"),
        "another program's SQLite": (str(d / "other.db3"), "cannot read the recording"),
        "colour only": (str(d / "colour-only.db3"), "no depth stream"),
        "depth only": (str(d / "depth-only.db3"), "no colour stream"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "folder", "text", "random bytes", "empty", "cut in half", "cut after 100 bytes", "a cut ROS1 bag",
     "a .db3 named .bag", "another program's SQLite", "colour only", "depth only"],
)  # fmt: skip
def test_bad_recording_is_one_line(bad_files, case):
    path, says = bad_files[case]
    with pytest.raises(SourceError) as e:
        RealSenseSource(file=path, realtime=False).open()
    assert says in str(e.value) and "\n" not in str(e.value) and "--realsense-file" in str(e.value)


@pytest.mark.parametrize("case", ["folder", "random bytes", "cut in half", "colour only"])
def test_bad_recording_through_run_is_one_line_and_exit_2(bad_files, case):
    path, says = bad_files[case]
    t0 = time.monotonic()
    r = invoke("run", "--realsense-file", path, "--no-realtime", "--port", str(free_port()), "--control-port",
               str(free_port()))  # fmt: skip
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert len(errors) == 1 and errors[0].startswith("error: --realsense-file") and says in errors[0], r.stderr
    assert time.monotonic() - t0 < 60


def test_one_source_at_a_time(recording):
    r = invoke("run", "--realsense-file", str(recording), "--camera", "0")
    assert r.returncode == 2 and "choose one source" in r.stderr and "Traceback" not in r.stderr
    r = invoke("run", "--realsense-file", str(recording), "--source", "video")
    assert r.returncode == 2 and "choose one source" in r.stderr
