"""Intel RealSense colour + depth (aligned to colour) with device intrinsics and depth scale.

pyrealsense2 is imported lazily (the ``realsense`` extra). Hardware goes through ``rs.pipeline``;
:meth:`RealSenseSource.from_syncer` feeds the same frame handling from any frameset producer, e.g. a
``software_device`` in tests, so the alignment and conversion code path is the real one either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost, now
from streamhand.geometry import Intrinsics

log = logging.getLogger(__name__)


def import_rs():
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        raise SourceError(
            "--realsense needs pyrealsense2: pip install 'streamhand[realsense]' "
            f"(and the system library libusb-1.0) [{e}]"
        ) from None
    return rs


class RealSenseSource(FrameSource):
    name = "realsense"
    live = True
    has_depth = True

    def __init__(self, serial: str | None = None, width: int = 640, height: int = 480, fps: int = 30,
                 mirror: bool = False, timeout_ms: int = 1000):  # fmt: skip
        super().__init__()
        self.serial, self.width, self.height, self.fps = serial, width, height, fps
        self.mirror, self.timeout_ms = mirror, timeout_ms
        self._wait: Callable[[int], Any] | None = None
        self._pipeline = None
        self._align = None
        self.depth_scale = 0.001

    @classmethod
    def from_syncer(cls, wait: Callable[[int], Any], depth_scale: float, serial: str = "software") -> RealSenseSource:
        """A source reading framesets from ``wait(timeout_ms)`` (e.g. ``rs.syncer().wait_for_frames``)."""
        src = cls(serial=serial)
        rs = import_rs()
        src._wait, src.depth_scale, src._align = wait, depth_scale, rs.align(rs.stream.color)
        return src

    def open(self) -> None:
        if self._wait is not None and self._pipeline is None and self._align is not None:
            return  # from_syncer
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

    def read(self) -> Frame | None:
        assert self._wait is not None and self._align is not None, "open() first"
        try:
            fs = self._wait(self.timeout_ms)
        except RuntimeError as e:
            raise SourceLost(f"RealSense stopped delivering frames ({e})") from None
        t, tu = now()
        aligned = self._align.process(fs)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            self.corrupt_frames += 1
            return self.read()
        rgb = np.asanyarray(color.get_data()).copy()
        d = np.asanyarray(depth.get_data()).astype(np.float32) * np.float32(self.depth_scale)
        ci = color.profile.as_video_stream_profile().get_intrinsics()
        k = Intrinsics(ci.width, ci.height, ci.fx, ci.fy, ci.ppx, ci.ppy)
        if self.mirror:
            rgb, d, k = np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(d[:, ::-1]), k.mirrored()
        return Frame(self._next_index(), t, tu, rgb, k, f"realsense:{self.serial or 'default'}", depth=d)

    def close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
            self._pipeline = None
            self._wait = None
