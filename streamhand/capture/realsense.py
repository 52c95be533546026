"""Intel RealSense colour + depth (aligned to colour) with device intrinsics and depth scale, live or recorded.

pyrealsense2 is imported lazily (the ``realsense`` extra). Hardware goes through ``rs.pipeline``; a recording
(``file=``: the rosbag2 ``.db3`` that librealsense 2.59's recorder and Viewer write, or an older ROS1 ``.bag``)
through the same pipeline, from ``config.enable_device_from_file``, with the file's intrinsics, depth scale and
clock; :meth:`RealSenseSource.from_syncer` feeds the same frame handling from any frameset producer, e.g. a
``software_device`` in tests, so the alignment and conversion code path is the real one either way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost, now
from streamhand.geometry import Intrinsics

log = logging.getLogger(__name__)

#: how the recordings librealsense reads begin: rosbag2 (an SQLite file, read only as ``.db3``) and ROS1
RECORDING_MAGIC = {b"SQLite format 3\x00": "rosbag2", b"#ROSBAG V2.0": "ROS1"}
#: colour formats a recording may hold, as RGB
COLOUR_FORMATS = ("rgb8", "bgr8", "rgba8", "bgra8", "yuyv", "uyvy")
#: how long closing waits for librealsense to stop a playback (seconds)
STOP_WAIT_S = 2.0


def colour_frames(path: Path, fps: float) -> int | None:
    """How many colour frames a rosbag2 recording (an SQLite file) holds beside its depth: the colour messages of its
    index that lie within the depth messages' span (a colour frame more than a frame period before the first depth
    frame or after the last has none to be paired with, and librealsense's playback hands it on to no one); None where
    it cannot be told."""
    import sqlite3

    like = "SELECT timestamp FROM messages JOIN topics ON messages.topic_id = topics.id WHERE topics.name LIKE ?"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            colour = [t for (t,) in db.execute(like, ("/device_%/sensor_%/Color_%/image/data%",))]
            depth = [t for (t,) in db.execute(like, ("/device_%/sensor_%/Depth_%/image/data%",))]
    except sqlite3.Error:
        return None
    if not colour or not depth:
        return None
    slack = 1.5e9 / max(fps, 1.0)  # nanoseconds
    lo, hi = min(depth) - slack, max(depth) + slack
    return sum(lo <= t <= hi for t in colour) or None


def import_rs(option: str = "--realsense"):
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        raise SourceError(
            f"{option} needs pyrealsense2: pip install 'streamhand[realsense]' "
            f"(and the system library libusb-1.0) [{e}]"
        ) from None
    return rs


def to_rgb(color: Any, fmt: str) -> np.ndarray:
    """A colour frame's pixels as a new (H, W, 3) uint8 RGB array, from any of :data:`COLOUR_FORMATS`."""
    a = np.asanyarray(color.get_data())
    if fmt in ("yuyv", "uyvy"):
        import cv2

        vp = color.profile.as_video_stream_profile()
        code = cv2.COLOR_YUV2RGB_YUYV if fmt == "yuyv" else cv2.COLOR_YUV2RGB_UYVY
        return cv2.cvtColor(np.ascontiguousarray(a).view(np.uint8).reshape(vp.height(), vp.width(), 2), code)
    order = {"rgb8": [0, 1, 2], "bgr8": [2, 1, 0], "rgba8": [0, 1, 2], "bgra8": [2, 1, 0]}[fmt]
    return a.copy() if fmt == "rgb8" else np.ascontiguousarray(a[:, :, order])


def _reason(e: Exception, path: Path) -> str:
    """librealsense's reason for refusing a file, on one line, with the file by its name."""
    text = " ".join(str(e).split("Reason: ", 1)[-1].replace(str(path), path.name).split())
    cut = "malformed" in text or "wanted" in text  # SQLite's and the ROS1 reader's words for a file cut short
    return f"damaged or cut short ({text})" if cut else text


class RealSenseSource(FrameSource):
    """A RealSense camera (``serial``, ``width`` x ``height`` at ``fps``) or, with ``file``, a recording of one played
    through the same pipeline: paced at its recorded rate (``realtime``; frames are dropped as from a camera when the
    pipeline is slower) or as fast as it is read, every frame (``realtime=False``); the end of the file ends it."""

    name = "realsense"
    live = True
    has_depth = True

    def __init__(self, serial: str | None = None, width: int = 640, height: int = 480, fps: int = 30,
                 mirror: bool = False, timeout_ms: int = 1000, file: str | Path | None = None,
                 realtime: bool = True, stall_s: float = 10.0):  # fmt: skip
        super().__init__()
        self.serial, self.width, self.height, self.fps = serial, width, height, fps
        self.mirror, self.timeout_ms = mirror, timeout_ms
        self._wait: Callable[[int], Any] | None = None
        self._pipeline = None
        self._align = None
        self.depth_scale = 0.001
        self.file = Path(file) if file is not None else None
        self._file_text = str(file) if file is not None else ""
        self.realtime, self.stall_s = realtime, stall_s
        self._playback: Any = None
        self._stopped: Any = None  # rs.playback_status.stopped
        self._colour_format = "rgb8"
        self._last_colour: tuple[int, float] | None = None  # (frame number, timestamp) of the last frame read
        self._t0: float | None = None  # the recording's clock at its first frame (s)
        self._colour_read = 0  # colour frames the playback handed on
        self._colour_frames: int | None = None  # colour frames the recording holds (None: not known)
        self._started: float | None = None  # when the playback started (time.monotonic)
        self.duration_s = 0.0  # the recording's length (s)
        if self.file is not None:
            self.name, self.live = "realsense-file", False

    @classmethod
    def from_syncer(cls, wait: Callable[[int], Any], depth_scale: float, serial: str = "software") -> RealSenseSource:
        """A source reading framesets from ``wait(timeout_ms)`` (e.g. ``rs.syncer().wait_for_frames``)."""
        src = cls(serial=serial)
        rs = import_rs()
        src._wait, src.depth_scale, src._align = wait, depth_scale, rs.align(rs.stream.color)
        return src

    @property
    def camera_id(self) -> str:
        return f"realsense:{self.serial or 'default'}" if self.file is None else f"realsense-file:{self.file.name}"

    def open(self) -> None:
        if self._wait is not None and self._pipeline is None and self._align is not None:
            return  # from_syncer
        if self.file is not None:
            self._open_file(self.file)
            return
        rs = import_rs()
        devices = rs.context().query_devices()
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
        asked = f"--serial {self.serial!r}: " if self.serial is not None else ""
        if not serials:
            raise SourceError(f"{asked}no RealSense device found (is it plugged in, and is libusb-1.0 installed?)")
        if self.serial is not None and self.serial not in serials:
            raise SourceError(f"{asked}no such RealSense (connected: {', '.join(serials)})")
        cfg = rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        pipe = rs.pipeline()
        queue = rs.frame_queue(2, keep_frames=True)  # small queue: lag never builds
        try:
            profile = pipe.start(cfg, queue)
        except RuntimeError as e:
            raise SourceError(f"RealSense could not start {self.width}x{self.height}@{self.fps}: {e}") from None
        self.depth_scale = profile.get_device().first_depth_sensor().get_depth_scale()
        self._pipeline = pipe
        self._wait = lambda timeout_ms: queue.wait_for_frame(timeout_ms).as_frameset()
        self._align = rs.align(rs.stream.color)

    def _open_file(self, path: Path) -> None:
        """Check that ``path`` is a recording with colour and depth, and read its streams and depth scale (one line if
        not); it plays from the first :meth:`read`."""
        opt = f"--realsense-file {self._file_text}"
        if not self._file_text:
            raise SourceError("--realsense-file: give a recording (a .bag or .db3 file)")
        if path.is_dir():
            raise SourceError(f"{opt}: a folder, not a recording (give a .bag or .db3 file)")
        if not path.is_file():
            raise SourceError(f"{opt}: not found" if not path.exists() else f"{opt}: not a file")
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as e:
            raise SourceError(f"{opt}: cannot read it ({e.strerror})") from None
        kind = next((k for magic, k in RECORDING_MAGIC.items() if head.startswith(magic)), None)
        if kind is None:  # never handed to librealsense's parsers: the file is not a recording at all
            raise SourceError(f"{opt}: not a RealSense recording (a .bag or .db3 file from the RealSense Viewer or "
                              "rs.recorder)")  # fmt: skip
        suffix = ".db3" if kind == "rosbag2" else ".bag"
        if path.suffix != suffix:
            raise SourceError(f"{opt}: a {kind} recording; librealsense reads it only if its name ends in {suffix} "
                              "(in lower case)")  # fmt: skip
        rs = import_rs("--realsense-file")
        try:  # what the file holds, on a look of its own: the playing starts at the first read (none missed)
            probe = rs.config()
            probe.enable_device_from_file(str(path), repeat_playback=False)
            device = probe.resolve(rs.pipeline_wrapper(rs.pipeline())).get_device()
            profiles = {p.stream_type().name: p for s in device.query_sensors() for p in s.get_stream_profiles()}
            duration = device.as_playback().get_duration().total_seconds()
        except RuntimeError as e:
            raise SourceError(f"{opt}: cannot read the recording: {_reason(e, path)}") from None
        kinds = {k: p.format().name for k, p in profiles.items()}
        missing = [name for name, key in (("colour", "color"), ("depth", "depth")) if key not in kinds]
        if missing:
            has = ", ".join(f"{k} ({f})" for k, f in kinds.items()) or "no streams"
            raise SourceError(f"{opt}: the recording has no {' and no '.join(missing)} stream (it has {has}); "
                              "streamhand needs colour and depth")  # fmt: skip
        if kinds["color"] not in COLOUR_FORMATS or kinds["depth"] != "z16":
            raise SourceError(f"{opt}: colour in {kinds['color']}, depth in {kinds['depth']}; readable: colour in "
                              f"{', '.join(COLOUR_FORMATS)}, depth in z16")  # fmt: skip
        try:
            self.depth_scale = device.first_depth_sensor().get_depth_scale()
        except RuntimeError:
            log.warning("%s: the recording has no depth units; assuming %g m", path.name, self.depth_scale)
        colour = profiles["color"].as_video_stream_profile()
        self.width, self.height, self.fps = colour.width(), colour.height(), colour.fps()
        self._colour_format = kinds["color"]
        self._align, self._stopped = rs.align(rs.stream.color), rs.playback_status.stopped
        self._last_colour, self._t0, self.duration_s = None, None, float(duration)
        # counted only where every frame is read (paced, frames are dropped as from a camera)
        counted = kind == "rosbag2" and not self.realtime
        self._colour_read, self._colour_frames = 0, colour_frames(path, self.fps) if counted else None
        log.info("%s: colour %dx%d %s at %d fps, depth scale %g m, %.1f s; played %s", path.name, self.width,
                 self.height, self._colour_format, self.fps, self.depth_scale, duration,
                 "at its recorded rate" if self.realtime else "as fast as it is read")  # fmt: skip

    def _play(self) -> None:
        """Start playing the file (at the first read, so that a real-time playback misses nothing while the rest of
        the run gets ready)."""
        import pyrealsense2 as rs

        assert self.file is not None
        cfg, pipe = rs.config(), rs.pipeline()
        try:
            cfg.enable_device_from_file(str(self.file), repeat_playback=False)
            cfg.enable_stream(rs.stream.depth)
            cfg.enable_stream(rs.stream.color)
            # resolved first, so that the pace is set before the playback starts (no frame missed at its start);
            # start() then plays this same device, as the config does not change in between
            cfg.resolve(rs.pipeline_wrapper(pipe)).get_device().as_playback().set_real_time(self.realtime)
            playback = pipe.start(cfg).get_device().as_playback()
        except RuntimeError as e:
            raise SourceError(f"--realsense-file {self._file_text}: cannot play the recording: "
                              f"{_reason(e, self.file)}") from None  # fmt: skip
        if playback.is_real_time() != self.realtime:  # not the device set above: set it now (frames may be missed)
            log.warning("%s: the playback started at the wrong pace; frames at its start may be missed", self.file)
            playback.set_real_time(self.realtime)
        self._pipeline, self._playback = pipe, playback

    def read(self) -> Frame | None:
        if self.file is not None:
            return self._read_file()
        assert self._wait is not None and self._align is not None, "open() first"
        while True:  # a frameset without both streams is counted and let go (held, they would drain the frame pool)
            try:
                fs = self._wait(self.timeout_ms)
            except RuntimeError as e:
                raise SourceLost(f"RealSense stopped delivering frames ({e})") from None
            frame = self._frame(fs)
            del fs
            if frame is not None:
                return frame

    def _read_file(self) -> Frame | None:
        """The recording's next colour frame with the depth aligned to it; None at the end of the file. The pipeline
        hands a colour frame on again with each newer depth frame: each colour frame is read once, with the depth
        it first came with. The end: the playback has stopped and nothing more arrives; or, a guard against a
        recording that never ends, nothing for ``stall_s`` (played in real time: nor for the recording's whole length
        since the playback started, so that a pause in the recording is waited out). A playback read frame by frame
        that hands on fewer colour frames than the recording holds (a damaged frame) ends with a warning."""
        assert self._align is not None, "open() first"
        if self._pipeline is None:
            self._play()
        if self._started is None:
            self._started = time.monotonic()
        last, ending = time.monotonic(), False
        while True:
            try:
                ok, fs = self._pipeline.try_wait_for_frames(100)
            except RuntimeError as e:
                log.warning("%s: playback failed (%s); ending it", self.file, e)
                return None
            if ok:
                last = time.monotonic()
                colour = fs.get_color_frame()
                key = (colour.get_frame_number(), colour.get_timestamp()) if colour else None
                if key is None or key == self._last_colour:
                    continue
                self._last_colour = key
                self._colour_read += 1
                t = key[1] / 1000.0  # the recording's clock (ms), from its first frame
                self._t0 = t if self._t0 is None else self._t0
                frame = self._frame(fs, t - self._t0)
                if frame is not None:
                    return frame
                continue
            if ending:
                self._check_whole()
                return None
            if self._playback.current_status() == self._stopped:
                ending = True  # one more wait: a last frame may still be on its way into the pipeline
                continue
            now_ = time.monotonic()
            whole = not self.realtime or now_ - self._started > self.duration_s + self.stall_s
            if now_ - last > self.stall_s and whole:
                log.warning("%s: no frame for %.0f s at %.1f s of %.1f s; ending it", self.file, self.stall_s,
                            self._playback.get_position() / 1e9,
                            self._playback.get_duration().total_seconds())  # fmt: skip
                return None

    def _check_whole(self) -> None:
        """At the end of a playback read frame by frame: a warning where it handed on fewer colour frames than the
        recording holds beside its depth (librealsense stops at a frame it cannot read, and says so only in its own
        log): what is left of the recording was not played."""
        # one colour frame at either end may find no depth to be paired with
        if self._colour_frames is not None and self._colour_read < self._colour_frames - 1:
            log.warning("%s: the playback handed on %d of the %d colour frames the recording holds beside its depth: "
                        "librealsense skips a colour frame it cannot pair with depth, and stops at a frame it cannot "
                        "read (a damaged recording; its own log says which)", self.file, self._colour_read,
                        self._colour_frames)  # fmt: skip

    def _frame(self, fs: Any, t_media: float | None = None) -> Frame | None:
        """A frameset as a :class:`Frame` (depth aligned to colour, in metres); None (counted) if a stream is
        missing."""
        t, tu = now()
        aligned = self._align.process(fs)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            self.corrupt_frames += 1
            return None
        rgb = to_rgb(color, self._colour_format)
        d = np.asanyarray(depth.get_data()).astype(np.float32) * np.float32(self.depth_scale)
        ci = color.profile.as_video_stream_profile().get_intrinsics()
        k = Intrinsics(ci.width, ci.height, ci.fx, ci.fy, ci.ppx, ci.ppy)
        if self.mirror:
            rgb, d, k = np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(d[:, ::-1]), k.mirrored()
        return Frame(self._next_index(), t, tu, rgb, k, self.camera_id, depth=d, t_media=t_media)

    def close(self) -> None:
        if self._pipeline is not None:
            pipe = self._pipeline

            def stop() -> None:
                try:
                    pipe.stop()
                except RuntimeError:
                    pass

            # librealsense's stop waits out a pause in a recording played in real time (minutes, for a long one):
            # a closing run does not wait for it
            t = threading.Thread(target=stop, name="realsense-stop", daemon=True)
            t.start()
            t.join(STOP_WAIT_S)
            if t.is_alive():
                log.warning("the RealSense playback did not stop within %.0f s (librealsense waits out a pause in "
                            "the recording); leaving it", STOP_WAIT_S)  # fmt: skip
            self._pipeline = None
            self._wait = None
            self._playback = None
