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
from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost, is_stream_url, now
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


#: a network camera (a stream URL): FFmpeg's longest wait to open it and for each frame (OpenCV's own default is 30 s
#: each, which held a stalled stream's reader, and a stop, for as long)
URL_OPEN_TIMEOUT_MS = 8000
URL_READ_TIMEOUT_MS = 4000
#: a live source is lost after this many of its own frame intervals without a frame (and never before
#: ``lost_after_s``): a camera slower than one frame a second is not lost between two of its frames
LOST_AFTER_FRAMES = 4
#: until two frames have come and the interval is known, a live source is lost only after this long without one
FIRST_FRAMES_GRACE_S = 5.0


def without_password(device: object) -> str:
    """``device`` as it may be shown and published: a stream URL's password (``rtsp://user:secret@host/...``) masked."""
    text = str(device)
    if not is_stream_url(text):
        return text
    scheme, rest = text.split("://", 1)
    netloc, slash, path = rest.partition("/")
    credentials, at, host = netloc.rpartition("@")
    if at and ":" in credentials:
        netloc = f"{credentials.split(':', 1)[0]}:***@{host}"
    return f"{scheme}://{netloc}{slash}{path}"


class CameraSource(FrameSource):
    """A local camera (an index, a device path) or a network camera's stream URL, read by a grabber thread that keeps
    only the newest frame. Each grabber thread owns its capture and releases it itself, so a capture is never
    released under a read in progress (a stalled stream's read, still blocked when the source was closed or
    reopened, crashed the process)."""

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
        self._lock = threading.Condition()
        self._latest: tuple[np.ndarray, float, float] | None = None
        self._seq = 0
        self._taken = 0
        self._stop = threading.Event()  # the running grabber's (each open makes its own)
        self._thread: threading.Thread | None = None
        self._last_ok = 0.0
        self._interval = 0.0  # the stream's recent frame interval (s), for when it counts as lost
        self._prev_t: float | None = None  # the time of the grabber's last frame (None: none yet since opening)
        self._closed = threading.Event()  # close() was called: an open under way (a reconnect) gives up

    @property
    def camera_id(self) -> str:
        return f"camera:{without_password(self.device)}"

    def open(self) -> None:
        self._closed.clear()
        self._open()

    def reopen(self) -> None:
        """Reconnect (the grabber before is stopped, its capture released by its own thread); a :meth:`close` from
        another thread meanwhile ends the attempt with :class:`SourceLost`."""
        self._stop_grabber()
        self._open()

    def _open(self) -> None:
        dev = int(self.device) if isinstance(self.device, str) and self.device.isdigit() else self.device
        cap = self._open_url(dev) if is_stream_url(dev) else self._open_local(dev)
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._not_opened())
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
        stop = self._stop = threading.Event()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._grab, args=(cap, stop), name="camera-grabber", daemon=True)
        self._thread.start()

    @staticmethod
    def _open_local(dev: int | str) -> cv2.VideoCapture:
        with quiet.opencv_silenced():  # a camera that is not there: our one line says so, not OpenCV's two
            return cv2.VideoCapture(dev)

    def _open_url(self, url: str) -> cv2.VideoCapture:
        """Open a stream URL on a thread of its own (FFmpeg's open is one blocking call of up to
        :data:`URL_OPEN_TIMEOUT_MS`), waiting in short slices: a signal or a :meth:`close` ends the wait at once, and a
        capture opened after it was given up is released by the thread that opened it."""
        lock, box, done = threading.Lock(), {}, threading.Event()
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, URL_OPEN_TIMEOUT_MS,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, URL_READ_TIMEOUT_MS]  # fmt: skip

        def opener() -> None:
            with quiet.opencv_silenced():
                cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
            with lock:
                if box.get("abandoned"):
                    cap.release()
                    return
                box["cap"] = cap
            done.set()

        threading.Thread(target=opener, name="camera-opener", daemon=True).start()
        try:
            while not done.wait(0.1):
                if self._closed.is_set():
                    raise SourceLost(f"camera {without_password(url)}: closed while connecting")
        except BaseException:
            with lock:
                box["abandoned"] = True
                cap = box.pop("cap", None)
            if cap is not None:
                cap.release()
            raise
        return box["cap"]

    def _not_opened(self) -> str:
        name = str(self.device)
        if is_stream_url(name):  # the cameras plugged in here say nothing about a URL
            return (f"--camera {without_password(name)!r}: the stream did not open (nothing answers there, it is not a "
                    "video stream OpenCV's FFmpeg reads, or it needs a user and password in the URL)")  # fmt: skip
        cams = list_cameras()
        have = ", ".join(cams) if cams else "none found"
        what = "not available"
        if not name.isdigit() and not Path(name).exists():
            what = "neither a camera index (0, 1, ...), a device path that exists, nor a stream URL"
            if name.lower() in ("realsense", "rs", "intel"):
                what += "; an Intel RealSense: --realsense"
        return f"--camera {self.device!r}: {what} (cameras: {have})"

    def _grab(self, cap: cv2.VideoCapture, stop: threading.Event) -> None:
        """Read ``cap`` until ``stop``; the newest frame is kept. Releases ``cap`` when it ends, whenever that is."""
        try:
            while not stop.is_set():
                ok, bgr = cap.read()
                t, tu = now()
                if not ok or bgr is None:
                    stop.wait(0.01)
                    continue
                with self._lock:
                    if stop.is_set():  # a reopen took over while this read was blocked
                        break
                    if self._prev_t is not None:
                        gap = t - self._prev_t
                        self._interval = gap if not self._interval else 0.8 * self._interval + 0.2 * gap
                    self._prev_t = t
                    self._latest = (bgr, t, tu)
                    self._seq += 1
                    self._last_ok = t
                    self._lock.notify_all()
        finally:
            cap.release()

    def read(self) -> Frame | None:
        with self._lock:
            while self._seq == self._taken:
                self._lock.wait(timeout=0.1)
                wait = max(self.lost_after_s, LOST_AFTER_FRAMES * self._interval if self._interval else
                           FIRST_FRAMES_GRACE_S)  # fmt: skip
                if time.monotonic() - self._last_ok > wait:
                    raise SourceLost(f"camera {without_password(self.device)} stopped delivering frames")
            bgr, t, tu = self._latest  # type: ignore[misc]
            self._taken = self._seq
        if bgr.ndim != 3:
            self.corrupt_frames += 1
            return self.read()
        rgb = to_rgb(bgr, self.mirror)  # selfie view -> true view, once, here
        h, w = rgb.shape[:2]
        k = default_intrinsics(w, h, self.fov, self.override)
        return Frame(self._next_index(), t, tu, rgb, k, self.camera_id)

    def _stop_grabber(self) -> None:
        """Stop the grabber; one whose read is blocked (a stalled stream) ends within FFmpeg's read timeout and
        releases its capture then, not under this thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            self._prev_t = None  # the interval is the stream's: kept across a reconnect, not the gap over it

    def close(self) -> None:
        self._closed.set()
        self._stop_grabber()
