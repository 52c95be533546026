"""File sources: a video (paced at its frame rate unless ``realtime=False``) and still-image sets.

A still-image set is not a live camera: every image is processed exactly once, also when paced with
``fps`` (pacing waits between images, nothing is dropped), and by default each image is detected on its
own (no tracking across images). Tracked (``--tracking on``), the images are smoothed on their own clock, one
frame every 1 / ``--fps`` (30 a second unless told), so a set gives the same poses however fast it is read.
"""

from __future__ import annotations

import glob
import logging
import math
import time
from pathlib import Path

import cv2
import numpy as np

from streamhand.capture.base import MIN_SIDE, Frame, FrameSource, Pacer, SourceError, is_stream_url, now
from streamhand.geometry import Intrinsics

log = logging.getLogger(__name__)
#: the fastest frame rate a video's header is believed (a phone's slow motion); above it (WebM and Matroska files often
#: say 1000, their clock's), or not a rate, 30 is used, and a warning says so
MAX_VIDEO_FPS = 240.0
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb(bgr: np.ndarray, mirror: bool) -> np.ndarray:
    """OpenCV's BGR -> RGB, flipped back to a true view when the source is mirrored."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb[:, ::-1]) if mirror else rgb


def default_intrinsics(width: int, height: int, fov_deg: float, override: Intrinsics | None) -> Intrinsics:
    """The ``--intrinsics`` file's intrinsics fitted to the frame (a :class:`SourceError` where the aspect ratio
    differs), else square pixels with ``fov_deg`` across."""
    if override is not None:
        try:
            return override.for_frame(width, height)
        except ValueError as e:
            raise SourceError(f"--intrinsics: {e}") from None
    return Intrinsics.from_fov(width, height, fov_deg)


class VideoSource(FrameSource):
    name = "video"

    def __init__(self, path: str | Path, realtime: bool = True, fov_deg: float = 60.0,
                 intrinsics: Intrinsics | None = None, mirror: bool = False):  # fmt: skip
        super().__init__()
        self.url = str(path) if is_stream_url(str(path)) else None  # Path() folds "http://" into "http:/"
        self.path = Path(path)
        self.realtime, self.fov, self.override, self.mirror = realtime, fov_deg, intrinsics, mirror
        self._cap: cv2.VideoCapture | None = None
        self._k: Intrinsics | None = None
        self._first: np.ndarray | None = None

    @property
    def camera_id(self) -> str:
        return f"video:{self.path.name}"

    def open(self) -> None:
        if self.url is not None:
            raise SourceError(f"--video {self.url}: a stream URL is read as a live camera (--camera URL); a video "
                              "file on a server: download it first")  # fmt: skip
        if self.path.is_dir():
            raise SourceError(f"--video {self.path}: a folder, not a video (use --images for a folder of pictures)")
        if not self.path.is_file():
            raise SourceError(f"video not found: {self.path}")
        if self.path.suffix.lower() in IMAGE_EXTENSIONS:
            raise SourceError(f"--video {self.path}: an image, not a video (use --images for pictures)")
        if not named_in_utf8(self.path):
            raise SourceError(f"--video {self.path!r}: its name is not valid UTF-8 (OpenCV cannot open it); rename it")
        cap = cv2.VideoCapture(str(self.path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            cap.release()
            raise SourceError(f"cannot read video: {self.path} (not a video, or a codec OpenCV lacks)")
        self._first = first  # the first read() gives it: seeking back loses it (one-frame files, MJPEG streams)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0.01 <= fps <= MAX_VIDEO_FPS else 30.0
        if self.fps != fps:
            log.warning("%s: its frame rate reads %s; timed as 30 frames a second", self.path.name, f"{fps:g}")
        self._t0: float | None = None  # read in real time: when the video's first frame was due (monotonic s)
        self._cannot_skip = False  # skipping was seen to lose ground: the clock moves on instead
        h, w = first.shape[:2]
        self._k = default_intrinsics(w, h, self.fov, self.override)
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._length = int(n) if n and n > 0 else None
        self._cap = cap

    @property
    def length(self) -> int | None:
        return getattr(self, "_length", None)

    def read(self) -> Frame | None:
        """The next frame; read in real time, on the video's own clock: a frame not due yet is waited for, and a
        machine that decodes slower than the video's rate skips frames (grabbed, not converted; counted in
        :attr:`skipped_frames`) rather than playing it in slow motion."""
        assert self._cap is not None, "open() first"
        if self.realtime:
            self._skip_late()
        while True:
            ok, bgr = (True, self._first) if self._first is not None else self._cap.read()
            self._first = None
            if not ok:
                return None
            if bgr is None or bgr.ndim != 3:
                self.corrupt_frames += 1
                continue
            break
        if self.realtime:
            time.sleep(max(self._due() - time.monotonic(), 0.0))
        t, tu = now()
        i = self._next_index()
        return Frame(i, t, tu, to_rgb(bgr, self.mirror), self._k, self.camera_id,
                     t_media=i / self.fps)  # fmt: skip

    def _due(self) -> float:
        """When the next frame is due on the video's clock (its first frame: now)."""
        if self._t0 is None:
            self._t0 = time.monotonic() - self._index / self.fps
        return self._t0 + self._index / self.fps

    def _skip_late(self) -> None:
        """Skip the frames whose time has passed by more than a frame's (decoded but not converted: ``grab``). Where
        skipping clearly loses ground (three skips or more taking half as long again as the frames they pass over: a
        120 fps 4K clip), it would pass over the rest of the file: it stops for good, and the video plays slower than
        real time at the rate it decodes, said once."""
        period = 1.0 / self.fps
        late = time.monotonic() - self._due()
        if self._first is not None or late <= period:
            return
        if self._cannot_skip:
            self._t0 = (self._t0 or 0.0) + late  # what is due now is the next frame
            return
        t0 = time.perf_counter()
        for n in range(1, int(late / period) + 1):  # the frames whose time has passed, as it was when this began
            if not self._cap.grab():
                return
            self._index += 1
            self.skipped_frames += 1
            spent = time.perf_counter() - t0
            if n >= 3 and spent >= 1.5 * n * period:
                self._cannot_skip = True
                log.warning("%s: skipping a frame takes %.0f ms, longer than its %.0f ms at %g frames a second: "
                            "it plays slower than real time", self.path.name, 1e3 * spent / n, 1e3 * period,
                            self.fps)  # fmt: skip
                return

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


_END_MARKS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND"}  # end-of-image marker, end of chunks


def _complete(path: Path) -> bool:
    """False for a JPEG or PNG cut short (no end-of-image marker, no final IEND chunk): a JPEG would decode half
    grey, and libjpeg or libpng would print its own message on stderr; such a file is counted as corrupt instead."""
    mark = _END_MARKS.get(path.suffix.lower())
    if mark is None:
        return True
    try:
        with open(path, "rb") as f:
            f.seek(max(path.stat().st_size - 64, 0))
            return mark in f.read()
    except OSError:
        return False


def named_in_utf8(path: Path) -> bool:
    """Whether ``path``'s name is valid UTF-8 (OpenCV's readers and writers crash on the bytes of another encoding,
    as an old zip file may leave, which Python keeps as lone surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _imread(path: Path, flags: int) -> np.ndarray | None:
    """``cv2.imread``; through ``cv2.imdecode`` of the file's bytes where the name is not valid UTF-8."""
    if named_in_utf8(path):
        return cv2.imread(str(path), flags)
    try:
        return cv2.imdecode(np.fromfile(path, np.uint8), flags)
    except (OSError, ValueError):
        return None


def _decodable(path: Path) -> bool:
    return _complete(path) and _imread(path, cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None


class ImageSource(FrameSource):
    name = "images"
    stills = True

    def __init__(self, spec: str | Path, fps: float | None = None, fov_deg: float = 60.0,
                 intrinsics: Intrinsics | None = None, mirror: bool = False, rate: float | None = None):  # fmt: skip
        super().__init__()
        self.spec = str(spec)
        self.fov, self.override, self.mirror = fov_deg, intrinsics, mirror
        self._pacer = Pacer(fps)
        #: the images' frame rate: their clock (``t_media``, what tracked hands are smoothed by), the same however
        #: fast they are read (``rate``, else the pace ``fps``, else 30)
        self.rate = float(rate or fps or 30.0)
        self.paths: list[Path] = []

    @property
    def camera_id(self) -> str:
        """``images:<the folder, pattern or file as given>``: one for the whole set (a name per picture made each
        message look like another camera's, whose ``seq`` gaps nobody could count)."""
        return f"images:{Path(self.spec).name or self.spec}"

    def open(self) -> None:
        p = Path(self.spec)
        if p.is_dir():  # hidden files left out, as a glob leaves them (macOS's ._NAME companions are not pictures)
            paths = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS and q.name[:1] != ".")
            if not paths:
                raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder: {p}")
        elif p.is_file():  # before the pattern: a file's name may hold [ ] or ?
            paths = [p]
        elif any(c in self.spec for c in "*?["):
            paths = sorted(Path(q) for q in glob.glob(self.spec) if Path(q).suffix.lower() in IMAGE_EXTENSIONS)
            if not paths:
                raise SourceError(f"no images match: {self.spec}")
        else:
            raise SourceError(f"image folder or pattern not found: {self.spec}")
        first = next((q for q in paths if _decodable(q)), None)
        if first is None:
            what = f"{paths[0]} is not" if len(paths) == 1 else f"none of the {len(paths)} files in {self.spec} is"
            raise SourceError(f"--images: {what} a readable image ({', '.join(IMAGE_EXTENSIONS)})")
        if self.override is not None:  # the intrinsics must fit the pictures: checked on the first, before the run
            h, w = _imread(first, cv2.IMREAD_COLOR).shape[:2]
            default_intrinsics(w, h, self.fov, self.override)
        self.paths = paths
        self._i = 0

    @property
    def length(self) -> int | None:
        return len(self.paths) or None

    def read(self) -> Frame | None:
        while self._i < len(self.paths):
            path = self.paths[self._i]
            self._i += 1
            bgr = _imread(path, cv2.IMREAD_COLOR) if _complete(path) else None
            if bgr is None:
                self.corrupt_frames += 1
                log.warning("skipping unreadable image %s", path)
                continue
            h, w = bgr.shape[:2]
            if min(h, w) < MIN_SIDE:
                self.corrupt_frames += 1
                log.warning("skipping %s: %dx%d, under %d pixels across", path, w, h, MIN_SIDE)
                continue
            self._pacer.wait()
            t, tu = now()
            rgb = to_rgb(bgr, self.mirror)
            try:
                k = default_intrinsics(w, h, self.fov, self.override)
            except SourceError as e:
                self.corrupt_frames += 1
                log.warning("skipping %s: %s", path, e)
                continue
            i = self._next_index()
            return Frame(i, t, tu, rgb, k, self.camera_id, t_media=i / self.rate)
        return None
