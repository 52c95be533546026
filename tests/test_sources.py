"""Frame sources without hardware: mp4 and image folders written here, RealSense via software_device,
the demo clip, and a live source that is lost and comes back."""

from __future__ import annotations

import logging
import os
import time

import cv2
import numpy as np
import pytest

from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost
from streamhand.capture.files import ImageSource, VideoSource
from streamhand.geometry import Intrinsics
from tests.helpers import rendered_frames


@pytest.fixture(scope="module")
def frames():
    rgbs, depths, hs = rendered_frames(6, 320, 240, seed=3)
    return rgbs, depths, hs


def _write_mp4(path, rgbs, fps=20.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (rgbs[0].shape[1], rgbs[0].shape[0]))
    for f in rgbs:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()


def _read_all(src) -> tuple[list, float]:
    """Every frame of ``src`` (opened here, closed after), and the seconds the reading took."""
    src.open()
    t0 = time.monotonic()
    got = list(iter(src.read, None))
    elapsed = time.monotonic() - t0
    src.close()
    return got, elapsed


def _slow_decoder(monkeypatch, files, read_s: float, grab_s: float = 0.0) -> None:
    """OpenCV's video reader in ``files`` made slow: each ``read`` (decoded and converted) takes ``read_s``, each
    ``grab`` (decoded only) ``grab_s`` more. A wrapper: a subclass of OpenCV's class crashes the garbage collector."""
    real = cv2.VideoCapture

    class SlowDecoder:
        def __init__(self, *a):
            self._cap = real(*a)

        def read(self, *a):
            time.sleep(read_s)
            return self._cap.read(*a)

        def grab(self):
            time.sleep(grab_s)
            return self._cap.grab()

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(files.cv2, "VideoCapture", SlowDecoder)


def test_video_source_reads_all_frames_paced(tmp_path, frames):
    rgbs = frames[0]
    p = tmp_path / "clip.mp4"
    _write_mp4(p, rgbs, fps=20.0)
    src = VideoSource(p, realtime=True, fov_deg=70)
    got, elapsed = _read_all(src)
    assert len(got) == len(rgbs)
    assert [f.index for f in got] == list(range(len(rgbs)))
    assert elapsed >= (len(rgbs) - 1) / 20.0 * 0.8  # paced at the file's rate
    assert got[0].intrinsics == Intrinsics.from_fov(320, 240, 70)
    assert np.abs(got[2].rgb.astype(int) - rgbs[2]).mean() < 12  # lossy codec, same picture
    assert all(b.t_capture >= a.t_capture for a, b in zip(got, got[1:]))
    assert [f.t_media for f in got] == [i / 20.0 for i in range(len(rgbs))]  # the file's own clock


@pytest.mark.slow
def test_a_video_decoded_slower_than_its_rate_skips_frames_on_its_own_clock(tmp_path, frames, monkeypatch):
    """A machine that decodes a video slower than its frame rate (a 4K clip on one core) played it in slow motion
    (8 s took 24 s) with no frame counted as dropped: frames whose time has passed are now skipped (grabbed, not
    converted) and counted, so the video keeps its own clock."""
    import streamhand.capture.files as files

    rgbs = frames[0] * 5  # 30 frames
    p = tmp_path / "clip.mp4"
    _write_mp4(p, rgbs, fps=30.0)

    _slow_decoder(monkeypatch, files, read_s=2.5 / 30)  # each converted frame takes two and a half frames' time
    src = VideoSource(p, realtime=True)
    got, elapsed = _read_all(src)
    assert elapsed < 1.6, elapsed  # about the video's second (2.5 s in slow motion)
    assert src.skipped_frames >= 10 and len(got) + src.skipped_frames == 30, (len(got), src.skipped_frames)
    assert [f.t_media for f in got] == [f.index / 30.0 for f in got] and got[-1].index >= 25  # the file's clock
    fast = VideoSource(p, realtime=False)  # read as fast as it goes: never skipped
    fast.open()
    n = sum(1 for _ in iter(fast.read, None))
    fast.close()
    assert n == 30 and fast.skipped_frames == 0
    # a run: the skipped frames are read and dropped by the source (the report's frames_in and drops agree)
    import json

    from tests.conftest import free_port
    from tests.helpers import invoke

    rep = tmp_path / "r.json"
    r = invoke("run", "--video", str(p), "--port", str(free_port()), "--control-port", str(free_port()), "--report",
               str(rep))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    report = json.loads(rep.read_text())
    drops = report["drops"]
    assert drops.get("source", 0) >= 10 and report["frames_in"] == 30, report
    assert report["frames_processed"] + sum(drops.values()) == 30 and f"{sum(drops.values())} dropped" in r.stderr


def test_a_video_whose_frames_cannot_even_be_skipped_in_time_plays_slower_not_empty(tmp_path, frames, monkeypatch,
                                                                                      caplog):  # fmt: skip
    """Where skipping a frame takes longer than a frame's time (a 120 fps 4K clip), skipping to catch up passed over
    the whole file (1 of 240 frames processed): it stops skipping, says so once, and plays at the rate it decodes."""
    import logging

    import streamhand.capture.files as files

    rgbs = frames[0] * 4  # 24 frames
    p = tmp_path / "clip.mp4"
    _write_mp4(p, rgbs, fps=60.0)
    _slow_decoder(monkeypatch, files, read_s=2 / 60, grab_s=2 / 60)  # a frame, converted or not, takes two frames'
    src = VideoSource(p, realtime=True)
    src.open()
    with caplog.at_level(logging.WARNING):
        got = list(iter(src.read, None))
    src.close()
    assert len(got) >= 18 and len(got) + src.skipped_frames == 24, (len(got), src.skipped_frames)
    said = [r.getMessage() for r in caplog.records if "plays slower than real time" in r.getMessage()]
    assert len(said) == 1 and "at 60 frames a second" in said[0], said


@pytest.mark.parametrize(("written", "timed", "warned"), [(0.5, 0.5, False), (240.0, 240.0, False),
                                                        (1000.0, 30.0, True)])  # fmt: skip
def test_a_videos_clock_is_its_header_rate_within_reason(tmp_path, frames, caplog, written, timed, warned):
    """A time-lapse at half a frame a second keeps its clock; a rate above any camera's (WebM's 1000, its clock's)
    is taken as 30, and said."""
    p = tmp_path / "clip.mp4"
    _write_mp4(p, frames[0][:3], fps=written)
    src = VideoSource(p, realtime=False)
    with caplog.at_level(logging.WARNING, logger="streamhand.capture.files"):
        src.open()
    got = [src.read() for _ in range(3)]
    src.close()
    assert src.fps == pytest.approx(timed, rel=1e-3)
    assert [f.t_media for f in got] == pytest.approx([i / timed for i in range(3)], rel=1e-3)
    assert ("timed as 30 frames a second" in caplog.text) is warned


def test_video_source_mirror_and_fast(tmp_path, frames):
    p = tmp_path / "clip.mp4"
    _write_mp4(p, frames[0])
    a, b = VideoSource(p, realtime=False), VideoSource(p, realtime=False, mirror=True)
    a.open()
    b.open()
    fa, fb = a.read(), b.read()
    np.testing.assert_array_equal(fa.rgb[:, ::-1], fb.rgb)


def test_image_sequences_keep_their_own_clock_however_fast_they_are_read(tmp_path, frames):
    """Tracked images are smoothed by ``t_media``: one frame every 1 / --fps (30 a second unless told), not the
    time each was read, so two runs of one folder give the same poses; the factory passes --fps as the rate also
    when the images are read as fast as they go."""
    from streamhand.capture.factory import make_source
    from streamhand.runtime_config import SourceConfig

    for i, f in enumerate(frames[0][:3]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    for kwargs, rate in [({}, 30.0), ({"fps": 5.0}, 5.0)]:
        src = make_source(SourceConfig(kind="images", images=str(tmp_path), realtime=False, **kwargs))
        src.open()
        got = [src.read() for _ in range(3)]
        src.close()
        assert [f.t_media for f in got] == [i / rate for i in range(3)]


def test_image_source_skips_and_counts_corrupt_files(tmp_path, frames, caplog):
    rgbs = frames[0]
    for i, f in enumerate(rgbs[:3]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    (tmp_path / "001b.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "001c.png"), np.zeros((8, 8, 3), np.uint8))  # no frame: skipped, named, no index
    (tmp_path / "notes.txt").write_text("ignored")
    src = ImageSource(tmp_path)
    src.open()
    got = []
    with caplog.at_level(logging.WARNING, logger="streamhand.capture.files"):
        while (f := src.read()) is not None:
            got.append(f)
    assert len(got) == 3 and src.corrupt_frames == 2 and [f.index for f in got] == [0, 1, 2]
    assert "001c.png: 8x8, under 16 pixels across" in caplog.text
    np.testing.assert_array_equal(got[0].rgb, rgbs[0])
    glob_src = ImageSource(str(tmp_path / "00[02].png"))
    glob_src.open()
    assert len(glob_src.paths) == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: VideoSource(d / "missing.mp4"), "video not found"),
        (lambda d: VideoSource((d / "bad.mp4", (d / "bad.mp4").write_text("junk"))[0]), "cannot read video"),
        (lambda d: ImageSource(d), "no images"),
        (lambda d: ImageSource(str(d / "*.jpg")), "no images match"),
        (lambda d: ImageSource(d / "nowhere"), "not found"),
    ],
)
def test_file_source_errors(tmp_path, make, message):
    with pytest.raises(SourceError, match=message):
        make(tmp_path).open()


def _software_realsense(rgbs, depths, k):
    rs = pytest.importorskip("pyrealsense2", reason="needs pyrealsense2 and libusb-1.0")
    h, w = rgbs[0].shape[:2]

    def intr():
        i = rs.intrinsics()
        i.width, i.height, i.ppx, i.ppy, i.fx, i.fy = w, h, k.cx, k.cy, k.fx, k.fy
        i.model, i.coeffs = rs.distortion.none, [0.0] * 5
        return i

    dev = rs.software_device()
    ds, cs = dev.add_sensor("Depth"), dev.add_sensor("Color")
    streams = []
    for sensor, typ, uid, bpp, fmt in (
        (ds, rs.stream.depth, 0, 2, rs.format.z16),
        (cs, rs.stream.color, 1, 3, rs.format.rgb8),
    ):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = typ, 0, uid, w, h, 30, bpp, fmt
        vs.intrinsics = intr()
        streams.append(sensor.add_video_stream(vs))
    ds.add_read_only_option(rs.option.depth_units, 0.001)
    ext = rs.extrinsics()
    ext.rotation, ext.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0.0, 0.0, 0.0]
    streams[0].register_extrinsics_to(streams[1], ext)
    dev.create_matcher(rs.matchers.default)
    sync = rs.syncer()
    ds.open(streams[0])
    cs.open(streams[1])
    ds.start(sync)
    cs.start(sync)
    keep = []

    def feed(i):
        mm = np.clip(depths[i] * 1000, 0, 65535).astype(np.uint16)
        for sensor, prof, arr, bpp in ((ds, streams[0], mm, 2), (cs, streams[1], rgbs[i], 3)):
            f = rs.software_video_frame()
            a = np.ascontiguousarray(arr)
            keep.append(a)
            f.pixels, f.stride, f.bpp = a, w * bpp, bpp
            f.timestamp, f.domain, f.frame_number = i * 33.3, rs.timestamp_domain.hardware_clock, i
            f.profile = prof.as_video_stream_profile()
            sensor.on_video_frame(f)

    return rs, sync, feed, (dev, ds, cs, keep)


def test_realsense_source_through_software_device(frames):
    from streamhand.capture.realsense import RealSenseSource

    rgbs, depths, hs = frames
    k = hs.intrinsics[0]
    _rs, sync, feed, _keep = _software_realsense(rgbs, depths, k)
    src = RealSenseSource.from_syncer(sync.wait_for_frames, depth_scale=0.001)
    src.open()
    got = None
    for i in range(4):
        feed(i)
        try:
            f = src.read()
        except SourceLost:
            continue
        if f is not None and i >= 1:
            got = (i, f)
    assert got is not None
    i, f = got
    assert f.depth is not None and f.depth.dtype == np.float32
    assert (f.intrinsics.fx, f.intrinsics.cx) == pytest.approx((k.fx, k.cx))
    valid = depths[i] > 0
    # aligned depth equals what was fed (identity extrinsics, same intrinsics), in metres
    assert np.median(np.abs(f.depth[valid] - depths[i][valid])) < 0.002
    np.testing.assert_array_equal(f.rgb, rgbs[i])


def test_realsense_without_device_is_a_clear_error():
    pytest.importorskip("pyrealsense2", reason="needs pyrealsense2 and libusb-1.0")
    from streamhand.capture.realsense import RealSenseSource

    with pytest.raises(SourceError, match="no RealSense device found"):
        RealSenseSource().open()


def _all_frames(src) -> list:
    src.open()
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    return frames


def test_demo_source_has_truth_and_depth(tmp_path, monkeypatch):
    from streamhand.capture.demo import DemoSource

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path))  # rendered here, not found in a cache
    # the pipeline tests' clip
    frames = _all_frames(DemoSource(width=320, height=240, seconds=0.5, fps=30, realtime=False, loop=False))
    assert len(frames) == 15
    f = frames[0]
    assert f.depth is not None and f.truth is not None
    j = np.asarray(f.truth["joints_cam"][0])
    u, v = np.round(f.truth["joints_2d"][0][9]).astype(int)
    assert abs(np.median(f.depth[v - 2 : v + 3, u - 2 : u + 3]) - j[9, 2]) < 0.04
    # from the cache: the same pixels and the same depth as rendered (a run is the same on the first day as later)
    again = _all_frames(DemoSource(width=320, height=240, seconds=0.5, fps=30, realtime=False, loop=False))
    assert list(tmp_path.glob("demo-*.zip"))
    for a, b in zip(again, frames, strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)


class FlakySource(FrameSource):
    """A live source that disappears after a few frames and comes back after two reconnect attempts."""

    name = "flaky"
    live = True

    def __init__(self, frame: Frame, total: int = 12):
        super().__init__()
        self.frame, self.total, self.delivered, self.reopens, self.lost = frame, total, 0, 0, False

    def read(self):
        if self.delivered >= self.total:
            return None
        if self.delivered == 4 and not self.lost and self.reopens == 0:
            self.lost = True
            raise SourceLost("unplugged")
        self.delivered += 1
        return Frame(self._next_index(), time.monotonic(), time.time(), self.frame.rgb, self.frame.intrinsics, "flaky")

    def reopen(self):
        self.reopens += 1
        if self.reopens < 3:
            raise SourceError("still gone")
        self.lost = False


def test_camera_source_grabber_with_a_file_device(tmp_path, frames):
    """OpenCV opens a file like a device: the grabber thread, newest-frame hand-off and loss detection run."""
    from streamhand.capture.camera import CameraSource

    p = tmp_path / "cam.mp4"
    _write_mp4(p, frames[0] * 4, fps=30)
    cam = CameraSource(str(p), mirror=True, fov_deg=65, lost_after_s=0.5)
    cam.open()
    try:
        f = cam.read()
        assert f.rgb.shape == (240, 320, 3) and f.camera_id.startswith("camera:")
        assert f.intrinsics == Intrinsics.from_fov(320, 240, 65)
        time.sleep(0.3)  # the grabber keeps only the newest frame meanwhile
        g = cam.read()
        assert g.index == f.index + 1
        with pytest.raises(SourceLost):
            for _ in range(100):  # the file ends: the "camera" stops delivering
                cam.read()
    finally:
        cam.close()


class _MjpegServer:
    """A network camera as phones' webcam apps and IP cameras serve one: JPEG frames over HTTP
    (``multipart/x-mixed-replace``), at 30 fps, on the loopback, to each client until it leaves or the server closes."""

    def __init__(self, rgb_frames: list[np.ndarray], stall_after: int | None = None, stall_s: float = 0.0,
                 fps: float = 30.0):
        """``stall_after``: the first client's stream stops after that many frames for ``stall_s`` seconds, the
        connection held open (a network that stalls), then goes on; later clients are served without a stall."""
        import http.server
        import socketserver
        import threading

        jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in rgb_frames]
        stop = self.stop = threading.Event()
        clients = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                clients.append(self)
                stalls = stall_after is not None and len(clients) == 1
                try:
                    while not stop.is_set() and i < 3000:  # bounded: at most 100 s of frames
                        if stalls and i == stall_after:
                            stop.wait(stall_s)
                        j = jpegs[i % len(jpegs)]
                        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(j)
                        self.wfile.write(head + j + b"\r\n")
                        i += 1
                        stop.wait(1 / fps)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_camera_given_as_a_stream_url(frames):
    """``--camera http://...`` (a network camera's MJPEG stream): opened as a camera, its newest frame each read,
    and lost when the server goes."""
    from streamhand.capture.camera import CameraSource

    rgbs = frames[0][:4]
    server = _MjpegServer(rgbs)
    cam = CameraSource(server.url, lost_after_s=0.5)
    try:
        cam.open()
        got = [cam.read() for _ in range(5)]
        assert [f.index for f in got] == [0, 1, 2, 3, 4] and got[0].camera_id == f"camera:{server.url}"
        assert got[0].rgb.shape == rgbs[0].shape
        assert min(np.abs(got[0].rgb.astype(int) - f).mean() for f in rgbs) < 6  # one of them, JPEG's loss only
        server.close()
        with pytest.raises(SourceLost):
            for _ in range(100):
                cam.read()
    finally:
        cam.close()
        server.close()


@pytest.mark.slow
def test_a_stream_that_stalls_is_reconnected_without_crashing(frames, tmp_path):
    """A network camera whose stream stalls (the connection held open, nothing sent): the source is lost, reopened
    and read again, and the stalled read, when its data comes, does not touch a released capture (it segfaulted
    the process, or aborted it with a corrupted heap). In a child process, so that a crash fails only this test."""
    import subprocess
    import sys

    np.save(tmp_path / "rgbs.npy", np.stack(frames[0][:4]))
    code = f"""
import time, numpy as np
from streamhand.capture.base import SourceLost
from streamhand.capture.camera import CameraSource
from tests.test_sources import _MjpegServer
server = _MjpegServer(list(np.load({str(tmp_path / "rgbs.npy")!r})), stall_after=3, stall_s=6.0)
cam = CameraSource(server.url, lost_after_s=0.5)
cam.open()
got = [cam.read().index for _ in range(3)]
try:
    for _ in range(50):
        cam.read()
    print("never lost")
except SourceLost:
    cam.reopen()
    got += [cam.read().index for _ in range(3)]
time.sleep(7.0)  # the stalled read's data arrives, and its read timeout passes
got.append(cam.read().index)
cam.close()
server.close()
print("ok", got)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok [0, 1, 2, 3, 4, 5, "), (r.returncode, r.stdout,
                                                                               r.stderr[-2000:])  # fmt: skip


@pytest.mark.parametrize(
    ("device", "shown"),
    [
        ("rtsp://admin:s3cret@127.0.0.1:554/live?channel=1", "rtsp://admin:***@127.0.0.1:554/live?channel=1"),
        ("http://user:p@ss:w@127.0.0.1:8080/video", "http://user:***@127.0.0.1:8080/video"),
        ("http://user@127.0.0.1:8080/video", "http://user@127.0.0.1:8080/video"),  # no password to hide
        ("http://127.0.0.1:8080/video", "http://127.0.0.1:8080/video"),
        ("/dev/video2", "/dev/video2"),
        (0, "0"),
    ],
)
def test_a_stream_urls_password_is_never_shown(device, shown):
    """The password in a camera's URL went out in every message's camera.id, in status and log messages, the saved
    poses and the error line."""
    from streamhand.capture.camera import CameraSource, without_password

    assert without_password(device) == shown
    assert CameraSource(device).camera_id == f"camera:{shown}"


def test_a_stream_url_that_does_not_open_says_so_without_its_password():
    """A URL that does not open (nothing listens there) is named as a stream, not as a missing local camera with
    the list of /dev/video*, and without its password."""
    from streamhand.capture.camera import CameraSource
    from tests.conftest import free_port

    url = f"http://viewer:hunter2@127.0.0.1:{free_port()}/video"
    with pytest.raises(SourceError) as e:
        CameraSource(url).open()
    assert "hunter2" not in str(e.value) and "the stream did not open" in str(e.value)
    assert "viewer:***@" in str(e.value) and "cameras:" not in str(e.value)


def test_a_camera_slower_than_a_frame_a_second_is_not_lost_between_frames(frames):
    """A stream at 0.7 frames a second was declared lost (and reconnected) between every two of its frames: the
    time without a frame that counts as lost follows the stream's own interval."""
    from streamhand.capture.camera import CameraSource

    server = _MjpegServer(frames[0][:4], fps=2.5)
    cam = CameraSource(server.url, lost_after_s=0.3)
    try:
        cam.open()
        got = [cam.read().index for _ in range(5)]  # 2 s of frames, each 0.4 s after the last: past 0.3, not lost
        assert got == [0, 1, 2, 3, 4]
    finally:
        cam.close()
        server.close()


def test_a_video_given_as_a_url_is_pointed_to_the_camera():
    """``--video http://...`` said "video not found: http:/..." (the URL folded as a path)."""
    with pytest.raises(SourceError, match=r"--video http://127.0.0.1:9/clip.mp4: a stream URL is read as a live "):
        VideoSource("http://127.0.0.1:9/clip.mp4").open()


def test_a_missing_camera_opened_from_python_prints_no_opencv_lines():
    """``HandTracker.stream(7)`` and ``CameraSource(7)`` in a program that imported cv2 first: OpenCV's own two lines
    (``[ WARN:0@...] ... can't open camera by index``, ``[ERROR:0@...] ... out of range``) came before our one, and
    OpenCV's log level is the program's again afterwards."""
    import subprocess
    import sys

    code = ("import cv2\nfrom streamhand.capture.camera import CameraSource\n"
            "try:\n    CameraSource(7).open()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
            "print('level', cv2.getLogLevel())\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.startswith("SourceError --camera 7: not available") and "level 3" in r.stdout, r.stdout + r.stderr
    assert "WARN" not in r.stderr and "ERROR" not in r.stderr, r.stderr


def test_missing_camera_names_existing_ones():
    from streamhand.capture.camera import CameraSource, list_cameras

    with pytest.raises(SourceError, match=r"--camera 9: not available \(cameras: "):
        CameraSource(9).open()
    assert isinstance(list_cameras(), list)


def test_realsense_frame_timeout_is_a_lost_source(frames):
    """No frameset within the timeout: SourceLost, which the pipeline reports and retries."""
    from streamhand.capture.realsense import RealSenseSource

    rgbs, depths, hs = frames
    _rs, sync, _feed, _keep = _software_realsense(rgbs, depths, hs.intrinsics[0])
    src = RealSenseSource.from_syncer(sync.wait_for_frames, depth_scale=0.001)
    src.timeout_ms = 200
    src.open()
    t0 = time.monotonic()
    with pytest.raises(SourceLost, match="stopped delivering frames"):
        src.read()  # nothing fed
    assert time.monotonic() - t0 < 5


def test_demo_seed_draws_the_script_with_other_hands_and_scene():
    from streamhand.capture.factory import make_source
    from streamhand.runtime_config import SourceConfig

    frames = {}
    for seed in (0, 1):
        src = make_source(SourceConfig(kind="demo", demo_seed=seed, demo_seconds=0.1, realtime=False))
        src.open()
        frames[seed] = src.read()
        src.close()
    a, b = frames[0], frames[1]
    assert a.rgb.shape == b.rgb.shape and np.abs(a.rgb.astype(int) - b.rgb).mean() > 5  # another scene
    ta, tb = np.asarray(a.truth["joints_cam"][0]), np.asarray(b.truth["joints_cam"][0])
    assert 0 < np.linalg.norm(ta - tb, axis=1).max() < 0.05  # the same script, a hand of another shape


def test_a_clip_render_removes_what_killed_renders_left(tmp_path):
    """A render killed by SIGTERM leaves its partial clip (NAME.PID.tmp); the next render removes those of
    processes no longer alive and leaves one a live process is still writing."""
    import subprocess
    import sys

    from streamhand.capture.demo import _save_clip
    from streamhand.geometry import Intrinsics

    path = tmp_path / "demo-x.zip"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = path.with_name(f"{path.name}.{gone.stdout.strip()}.tmp")
    alive = path.with_name(f"{path.name}.{os.getppid()}.tmp")
    for p in (dead, alive):
        p.write_bytes(b"partial")
    k = Intrinsics.from_fov(32, 24, 60.0)
    frame = (np.zeros((24, 32, 3), np.uint8), np.ones((24, 32), np.float32), [np.zeros((21, 3))], [False], k)
    _save_clip(path, [frame])
    assert path.is_file() and not dead.exists() and alive.exists()


def test_a_clip_save_cut_short_leaves_no_partial_clip(tmp_path, monkeypatch):
    """Ctrl-C (or a full disk) while the rendered clip is saved: the partial file goes with it."""
    import streamhand.capture.demo as demo
    from streamhand.geometry import Intrinsics

    k = Intrinsics.from_fov(32, 24, 60.0)
    frame = (np.zeros((24, 32, 3), np.uint8), np.ones((24, 32), np.float32), [np.zeros((21, 3))], [False], k)
    calls = []

    def interrupted(*_a, **_k):
        calls.append(1)
        if len(calls) == 2:  # the second frame's truth: the zip is half written
            raise KeyboardInterrupt
        return None

    monkeypatch.setattr(demo.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demo._save_clip(tmp_path / "demo-y.zip", [frame, frame])
    assert list(tmp_path.iterdir()) == []


def test_a_one_frame_video_gives_its_frame(tmp_path):
    """The first frame, read to learn the video's size, is the first frame given (seeking back to it lost it: a
    one-frame file gave none)."""
    path = tmp_path / "one.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    w.write(np.full((48, 64, 3), 128, np.uint8))
    w.release()
    src = VideoSource(path, realtime=False)
    src.open()
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 1 and frames[0].rgb.shape == (48, 64, 3)


def test_an_image_folder_as_users_fill_them(tmp_path):
    """A name in another encoding than UTF-8 (read from its bytes: OpenCV's reader crashed on it), a name with
    brackets given alone (a file, not a pattern), a hidden file and macOS's ._ companion (left out); a portrait
    picture gets the camera of the same picture turned (the field of view across the longer side)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    img = np.zeros((48, 64, 3), np.uint8)
    odd = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a lone surrogate in Python's str
    for name in (odd, "shot [1].png", ".hidden.png", "._shot.png"):
        (folder / name).write_bytes(cv2.imencode(".png", img)[1].tobytes() if name != "._shot.png" else b"\x00\x05")
    cv2.imwrite(str(folder / "upright.png"), np.zeros((64, 48, 3), np.uint8))
    src = ImageSource(folder)
    src.open()
    assert [p.name for p in src.paths] == sorted([odd, "shot [1].png", "upright.png"])
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert len(frames) == 3 and src.corrupt_frames == 0
    wide = next(f.intrinsics for f in frames if f.rgb.shape[:2] == (48, 64))
    tall = next(f.intrinsics for f in frames if f.rgb.shape[:2] == (64, 48))
    assert tall.fx == tall.fy == pytest.approx(wide.fx)
    single = ImageSource(folder / "shot [1].png")
    single.open()
    assert [p.name for p in single.paths] == ["shot [1].png"]


def test_every_frame_of_an_image_set_carries_one_camera_id(tmp_path, frames):
    """One id for the whole set, as the status before the first frame has it: a name per picture made every message
    look like another camera's, whose seq gaps no subscriber could count."""
    for i, f in enumerate(frames[0][:3]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    src = ImageSource(tmp_path)
    src.open()
    ids = set()
    while (f := src.read()) is not None:
        ids.add(f.camera_id)
    assert ids == {src.camera_id} == {f"images:{tmp_path.name}"}
    assert ImageSource(str(tmp_path / "*.png")).camera_id == "images:*.png"
