"""The frame type every source produces, the source interface, and reopening a lost live source."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from streamhand.geometry import Intrinsics

#: a picture narrower than this (pixels) is no frame to detect a hand in: the pipeline skips it, from any source
MIN_SIDE = 16


class SourceError(RuntimeError):
    """A source that cannot be opened or read (the message is one line for the user)."""


class SourceLost(RuntimeError):
    """A live source stopped delivering (unplugged); the pipeline retries with backoff."""


@dataclass
class Frame:
    index: int
    t_capture: float  # time.monotonic() at capture
    t_capture_unix: float
    rgb: np.ndarray  # (H, W, 3) uint8, RGB, a true (un-mirrored) view
    intrinsics: Intrinsics
    camera_id: str
    depth: np.ndarray | None = None  # (H, W) float32 metres, 0 = no data, aligned to rgb
    truth: dict | None = field(default=None)  # demo: {"joints_cam": [...], "left": [...]}
    #: the frame's time in its recording (seconds: a video file, the demo clip), None for live sources. Motion
    #: smoothing follows it, so a recording gives the same poses however fast this machine reads it.
    t_media: float | None = None

    def arrived(self) -> Frame:
        """This frame with its capture clock restarted now: a frame read ahead of the pipeline (a file, the demo
        read as fast as the pipeline goes) arrives when the detector takes it, as a camera's arrives when the camera
        delivers it; its latency does not count the time it waited to be taken."""
        t, tu = now()
        return replace(self, t_capture=t, t_capture_unix=tu)


def is_stream_url(device: object) -> bool:
    """Whether ``device`` names a network camera's stream (``http://...``, ``rtsp://...``) rather than a local camera
    or a file."""
    return isinstance(device, str) and "://" in device


def now() -> tuple[float, float]:
    return time.monotonic(), time.time()


class FrameSource(ABC):
    """``read()`` returns the next frame, ``None`` at the end of a finite source, raises
    :class:`SourceLost` when a live device disappears, and skips (and counts) corrupt frames."""

    name: str = "source"
    live: bool = False  # a camera: frames arrive in real time, retry when lost
    stills: bool = False  # unrelated still images: each is processed (never dropped) and detected on its own
    has_depth: bool = False

    def __init__(self) -> None:
        self.corrupt_frames = 0
        #: frames a source read in real time passed over because it fell behind its own clock (a video decoded slower
        #: than its rate): the run counts them as dropped by the source
        self.skipped_frames = 0
        self._index = 0

    def open(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    def read(self) -> Frame | None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @property
    def camera_id(self) -> str:
        """The ``camera.id`` of every frame and message of this source (``--camera-id`` overrides it): one per source,
        so that a subscriber tells cameras apart and counts each one's ``seq`` gaps."""
        return self.name

    @property
    def length(self) -> int | None:
        """Frames a finite source will deliver, when known after ``open()`` (None: live, endless or unknown)."""
        return None

    def reopen(self) -> None:
        """Try to reconnect a lost live source; raises :class:`SourceLost` if it is still gone."""
        self.close()
        self.open()

    def _next_index(self) -> int:
        i = self._index
        self._index += 1
        return i

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def reopen_until_back(source: FrameSource, stop: threading.Event | None = None,
                      on_failure: Callable[[Exception], None] | None = None) -> bool:
    """Reopen a lost live ``source`` with growing pauses (0.25 s, doubling, up to 5 s) until it answers (True) or
    ``stop`` is set (False); ``on_failure`` hears why each try failed."""
    stop = stop or threading.Event()
    pause = 0.25
    while not stop.is_set():
        stop.wait(pause)
        pause = min(pause * 2, 5.0)
        try:
            source.reopen()
            return True
        except (SourceLost, SourceError) as e:
            if on_failure is not None:
                on_failure(e)
    return False


class Pacer:
    """Sleeps so frames are delivered at ``fps`` (no-op when fps is None)."""

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self._next = None

    def wait(self) -> None:
        if not self.period:
            return
        t = time.monotonic()
        if self._next is None:
            self._next = t
        if self._next > t:
            time.sleep(self._next - t)
        self._next = max(self._next + self.period, time.monotonic() - self.period)
