"""OpenCV camera source with a grabber thread that keeps only the newest frame (lag never builds)."""

from __future__ import annotations

import glob
import logging
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from streamhand import quiet
from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost, now
from streamhand.capture.files import default_intrinsics, to_rgb
from streamhand.geometry import Intrinsics

log = logging.getLogger(__name__)


def list_cameras() -> list[str]:
    """Cameras the system shows (Linux: /dev/video*); elsewhere, indices 0-4 that open."""
    if sys.platform.startswith("linux"):
        return sorted(glob.glob("/dev/video*"))
    found = []
    for i in range(5):
        with quiet.opencv_silenced():
            cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append(str(i))
        cap.release()
    return found


class CameraSource(FrameSource):
    name = "camera"
    live = True

    def __init__(self, device: int | str = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None, mirror: bool = False, fov_deg: float = 60.0,
                 intrinsics: Intrinsics | None = None, lost_after_s: float = 1.0):  # fmt: skip
        super().__init__()
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.mirror, self.fov, self.override = mirror, fov_deg, intrinsics
        self.lost_after_s = lost_after_s
        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Condition()
        self._latest: tuple[np.ndarray, float, float] | None = None
        self._seq = 0
        self._taken = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok = 0.0

    @property
    def camera_id(self) -> str:
        return f"camera:{self.device}"

    def open(self) -> None:
        dev = int(self.device) if isinstance(self.device, str) and self.device.isdigit() else self.device
        with quiet.opencv_silenced():  # a camera that is not there: our one line says so, not OpenCV's two
            cap = cv2.VideoCapture(dev)
        if not cap.isOpened():
            cap.release()
            cams = list_cameras()
            have = ", ".join(cams) if cams else "none found"
            name = str(self.device)
            what = "not available"
            if not name.isdigit() and "://" not in name and not Path(name).exists():
                what = "neither a camera index (0, 1, ...), a device path that exists, nor a stream URL"
                if name.lower() in ("realsense", "rs", "intel"):
                    what += "; an Intel RealSense: --realsense"
            raise SourceError(f"--camera {self.device!r}: {what} (cameras: {have})")
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if self.override is not None and w > 0 and h > 0:  # the intrinsics must fit the size the camera gives
            try:
                default_intrinsics(w, h, self.fov, self.override)
            except SourceError:
                cap.release()
                raise
        self._cap = cap
        self._stop.clear()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._grab, name="camera-grabber", daemon=True)
        self._thread.start()

    def _grab(self) -> None:
        while not self._stop.is_set() and self._cap is not None:
            ok, bgr = self._cap.read()
            t, tu = now()
            if not ok or bgr is None:
                time.sleep(0.01)
                continue
            with self._lock:
                self._latest = (bgr, t, tu)
                self._seq += 1
                self._last_ok = t
                self._lock.notify_all()

    def read(self) -> Frame | None:
        with self._lock:
            while self._seq == self._taken:
                self._lock.wait(timeout=0.1)
                if time.monotonic() - self._last_ok > self.lost_after_s:
                    raise SourceLost(f"camera {self.device} stopped delivering frames")
            bgr, t, tu = self._latest  # type: ignore[misc]
            self._taken = self._seq
        if bgr.ndim != 3:
            self.corrupt_frames += 1
            return self.read()
        rgb = to_rgb(bgr, self.mirror)  # selfie view -> true view, once, here
        h, w = rgb.shape[:2]
        k = default_intrinsics(w, h, self.fov, self.override)
        return Frame(self._next_index(), t, tu, rgb, k, self.camera_id)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None
