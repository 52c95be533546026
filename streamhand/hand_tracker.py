"""3D hands in your own Python loop, no process or socket: :class:`HandTracker` and its typed result :class:`Hand`.

    from streamhand import HandTracker

    with HandTracker() as tracker:               # the default model; intrinsics from a 60-degree field of view
        for hand in tracker.process(rgb):        # rgb: (H, W, 3) uint8, RGB
            print(hand.handedness, hand.joints_cam[8])  # index fingertip, metres, camera frame

    for hands in HandTracker.stream("demo"):     # or a video file, an image folder, a camera index
        ...

The frames go through the same steps as ``streamhand run`` — parts made by :func:`streamhand.app.build_parts`,
then :class:`~streamhand.run.work.DetectStep`, :class:`~streamhand.run.work.InferStep` and
:class:`~streamhand.run.place_step.PlaceStep` — one after another in the caller's thread instead of on the
pipeline's threads, so a hand here is the hand ``run`` publishes for the same frame and settings.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamhand.geometry import Intrinsics, finite_number
from streamhand.modalities import NEEDS_DEPTH
from streamhand.runtime_config import RunConfig

log = logging.getLogger(__name__)


@dataclass
class Hand:
    """One hand in one frame (the fields of a ``hand.pose.*`` message that describe the hand)."""

    track_id: int
    handedness: str  # "left" | "right": the person's real hand, voted over the track
    handedness_score: float  # the track's confidence in it, 0.5-1
    score: float  # the detector's confidence that this is a hand
    joints_cam: np.ndarray  # (21, 3) metres, camera frame (x right, y down, z forward), mediapipe21 order
    joints_rel: np.ndarray  # (21, 3) metres, relative to the wrist
    joints_2d: np.ndarray  # (21, 2) pixels
    joint_std: np.ndarray  # (21,) metres: the expected error of each wrist-relative joint
    root_source: str  # "depth" (placed by the depth image) | "estimate" (by the hand's size)
    frame_index: int = 0
    #: the expected mean joint error in metres (the model's error model; without one, the mean of ``joint_std``)
    quality: float = float("nan")
    #: the chance that the mean joint error is below 2 cm (None: the model has no error model); docs/usage.md
    confidence: float | None = None


def checked_intrinsics(k: Intrinsics | dict | str | Path) -> Intrinsics:
    """Intrinsics given in code (an :class:`Intrinsics`, a dict or a JSON/YAML file), checked as a file of them is:
    a ValueError in one line for a missing field, a value that is not a number, or intrinsics no camera has."""
    if isinstance(k, Intrinsics):
        return Intrinsics.from_mapping(asdict(k), "intrinsics")
    if isinstance(k, dict):
        return Intrinsics.from_mapping(k, "intrinsics")
    if isinstance(k, (str, Path)):
        return Intrinsics.from_file(k)
    raise ValueError(f"intrinsics: give an Intrinsics, a dict or a JSON/YAML file, not a {type(k).__name__}")


def _intrinsics(k: Intrinsics | dict | str | Path | None) -> Intrinsics | None:
    """``intrinsics`` as given to :class:`HandTracker`, checked as a file of them is (a RunError in one line)."""
    from streamhand.app import RunError

    if k is None:
        return None
    try:
        return checked_intrinsics(k)
    except ValueError as e:
        raise RunError(str(e)) from None


def _time(t: Any) -> float:
    """``process``'s ``t``: a finite number of seconds (a ValueError in one line otherwise)."""
    if not finite_number(t):
        raise ValueError(f"t: the frame's time in seconds, a finite number, not {t!r}"[:200])
    return float(t)


class HandTracker:
    """Frames in, :class:`Hand` lists out, in this process.

    ``model``: a shipped model's name or a checkpoint (None: the default); ``intrinsics``: an
    :class:`~streamhand.geometry.Intrinsics`, a dict or a JSON/YAML file (None: square pixels, ``fov_deg`` across,
    fitted to each frame); ``smooth``: One Euro along each track (off by default: each call's hands are that
    frame's); ``tracking``: frames are a sequence (MediaPipe's video mode, track ids and handedness across calls)
    rather than unrelated photos; ``modalities``: the experts to use (None: all the model and a colour image
    support); ``flip_average``: each hand read with its mirrored crop too, as ``run --flip-average`` (MediaPipe's
    networks); ``config``: a full :class:`~streamhand.runtime_config.RunConfig` instead (the arguments above then
    override it only where given). Raises :class:`streamhand.app.RunError` (one line) for what a user can fix.
    One tracker may be shared by threads: their calls take turns (MediaPipe's graph reads one frame at a time)."""

    def __init__(self, model: str | None = None, intrinsics: Intrinsics | dict | str | Path | None = None,
                 smooth: bool = False, tracking: bool = True, max_hands: int = 2,
                 modalities: Sequence[str] | None = None, fov_deg: float = 60.0, hand_length_m: float | None = None,
                 backend: str = "auto", with_depth: bool = False, flip_average: bool = False,
                 config: RunConfig | None = None):  # fmt: skip
        from pydantic import ValidationError

        from streamhand.app import RunError, build_parts
        from streamhand.configio import format_validation_error
        from streamhand.detect import TrackLinker
        from streamhand.run.place_step import PlaceStep
        from streamhand.run.work import DetectStep, InferStep

        # what the config holds beyond its defaults (a default is checked where it applies, e.g. an engines folder)
        base = config.model_dump(exclude_defaults=True) if config is not None else {}
        given = {"model": model, "backend": backend, "hand_length_m": hand_length_m, "modalities": modalities,
                 "smooth": smooth, "fov_deg": fov_deg, "max_hands": max_hands, "tracking": tracking,
                 "flip_average": flip_average}  # fmt: skip
        over = _settings(**given)
        if config is not None:  # the arguments override it only where given: where they differ from their defaults
            signature = inspect.signature(HandTracker.__init__).parameters
            unset = _settings(**{name: signature[name].default for name in given})
            over = {sec: {k: v for k, v in vals.items() if v != unset[sec][k]} for sec, vals in over.items()}
        for section, values in over.items():
            base.setdefault(section, {}).update(values)
        try:
            self.cfg = RunConfig.model_validate(base)
        except ValidationError as e:
            raise RunError(format_validation_error(e, RunConfig, "HandTracker")) from None
        self.intrinsics = _intrinsics(intrinsics)
        self._closed = False
        parts = build_parts(self.cfg, with_depth, "frames", stills=not tracking)
        self.lifter, self.modalities, self.detector = parts.lifter, parts.modalities, parts.detector
        self.tracking = parts.tracking
        try:
            d = self.cfg.detect  # tracks are linked as the detector reads: a sequence, or unrelated photos
            self._detect = DetectStep(self.detector, TrackLinker(link=self.tracking), self.lifter, self.modalities,
                                      d.max_hands, d.crop_margin)  # fmt: skip
            self._infer = InferStep(self.lifter, self.modalities)
            self._place = PlaceStep(self.cfg.smooth, self.lifter.backend.error_model, self.cfg.model.ray_pull)
        except BaseException:  # nothing of a tracker that was never made stays behind (MediaPipe's graph, threads)
            self.detector.close()
            raise
        self._index = 0
        self._t0 = time.monotonic()
        self._last_t: float | None = None
        self._lock = threading.RLock()  # MediaPipe's graph and the tracks read one frame at a time

    def process(self, rgb: np.ndarray, t: float | None = None, depth: np.ndarray | None = None,
                intrinsics: Intrinsics | dict | str | Path | None = None) -> list[Hand]:  # fmt: skip
        """The hands in one RGB frame (``(H, W, 3)`` uint8); ``t``: its time in seconds (for smoothing; default:
        now); ``depth``: metres, aligned to ``rgb``, for a tracker made ``with_depth``; ``intrinsics``: this frame's
        (as the tracker's are given), instead of the tracker's."""
        from streamhand.capture.base import Frame

        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
            raise ValueError(f"process() takes an (H, W, 3) uint8 RGB image, not {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        depth = _depth_for(depth, h, w)
        if depth is None and self.modalities and all(m in NEEDS_DEPTH for m in self.modalities):
            raise ValueError(f"depth: this tracker reads depth alone (modalities {','.join(self.modalities)}); give "
                             "each frame's depth")  # fmt: skip
        t = None if t is None else _time(t)
        k = self.intrinsics if intrinsics is None else checked_intrinsics(intrinsics)
        k = k.for_frame(w, h) if k is not None else Intrinsics.from_fov(w, h, self.cfg.source.fov_deg)
        with self._lock:
            self._check_open()
            now = time.monotonic()
            t_media = now - self._t0 if t is None else t
            if self.cfg.smooth.enabled and self._last_t is not None and t_media <= self._last_t:
                log.warning("HandTracker: t %.6g s after %.6g s does not move forward: each hand's smoothing starts "
                            "again (give each frame's time in seconds, increasing)", t_media, self._last_t)
            self._last_t = t_media
            frame = Frame(self._index, now, time.time(), np.ascontiguousarray(rgb), k, "frames", depth=depth,
                          t_media=t_media)  # fmt: skip
            self._index += 1
            return self.process_frame(frame)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this HandTracker is closed; make a new one")

    def process_frame(self, frame: Any) -> list[Hand]:
        """The hands in a :class:`streamhand.capture.base.Frame` (what a source reads)."""
        with self._lock:
            self._check_open()
            return self._hands(frame)

    def _hands(self, frame: Any) -> list[Hand]:
        from streamhand.run.work import Work

        w = Work(frame)
        self._detect(w)
        for tid in w.ended:
            self._place.end(tid)
        self._infer(w)
        return [Hand(p.track_id, p.detection.handedness, float(p.detection.handedness_score),
                     float(p.detection.score), p.joints_cam, p.joints_rel, np.asarray(p.detection.landmarks_px, float),
                     np.asarray(p.joint_std, float), p.root_source, frame.index, p.quality, p.confidence)
                for p in self._place(w)]  # fmt: skip

    @classmethod
    def stream(cls, source: Any, **options: Any) -> Iterator[list[Hand]]:
        """The hands of every frame of ``source``: ``"demo"``, a camera index (int), a network camera's stream URL
        (``http://...``, ``rtsp://...``), a video file, an image folder or glob, or a
        :class:`streamhand.capture.base.FrameSource`; ``options`` as for :class:`HandTracker`. Frames
        are read as fast as they come (a file: as fast as possible)."""
        from streamhand.app import RunError
        from streamhand.capture.base import FrameSource, SourceError
        from streamhand.capture.factory import make_source

        if isinstance(source, FrameSource):
            src = source
        else:
            src = make_source(_source_config(source, options.get("fov_deg", 60.0)))
        try:
            src.open()
        except SourceError as e:
            raise RunError(str(e)) from None
        try:
            options.setdefault("tracking", not src.stills)
            options.setdefault("with_depth", src.has_depth)
            with cls(**options) as tracker:
                while (frame := _read_or_reconnect(src)) is not None:
                    yield tracker.process_frame(frame)
        finally:
            src.close()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.detector.close()

    def __enter__(self) -> HandTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _depth_for(depth: Any, h: int, w: int) -> np.ndarray | None:
    """``process``'s depth image checked against its (h, w) colour image: (h, w) metres, float."""
    if depth is None:
        return None
    d = np.asarray(depth)
    if d.shape != (h, w):
        raise ValueError(f"depth: an (H, W) image aligned to the colour image, {(h, w)}, not {d.shape}")
    if d.dtype not in (np.float32, np.float64):
        mm = " (a sensor's millimetres: divide by 1000)" if np.issubdtype(d.dtype, np.integer) else ""
        raise ValueError(f"depth: metres as float32 or float64, not {d.dtype}{mm}")
    from streamhand.detect.crops import has_depth

    sample = d[::8, ::8]  # a 64th of the pixels: the units show in any of them, and the median costs 0.05 ms
    valid = sample[has_depth(sample)]
    median = float(np.median(valid)) if valid.size else 0.0
    if median > MAX_DEPTH_M:
        raise ValueError(f"depth: metres, but half its pixels lie beyond {MAX_DEPTH_M:g} m (median {median:g}): "
                         "millimetres or centimetres? divide by 1000 or 100")  # fmt: skip
    return d


#: no depth camera reads a scene this far away (metres): a depth image whose median is beyond it is in other units
MAX_DEPTH_M = 20.0


def _settings(model: str | None, backend: str, hand_length_m: float | None, modalities: Any, smooth: bool,
              fov_deg: float, max_hands: int, tracking: bool, flip_average: bool) -> dict[str, dict]:  # fmt: skip
    """:class:`HandTracker`'s arguments as the sections and fields of a RunConfig (``modalities``: a list, or the
    command line's comma list)."""
    if isinstance(modalities, str):
        modalities = [m.strip() for m in modalities.split(",") if m.strip()]
    return {"model": {"path": model, "backend": backend, "hand_length_m": hand_length_m,
                      "modalities": list(modalities) if modalities is not None else None},
            "smooth": {"enabled": smooth}, "source": {"fov_deg": fov_deg},
            "detect": {"max_hands": max_hands, "tracking": "on" if tracking else "off",
                       "flip_average": flip_average}}  # fmt: skip


def _read_or_reconnect(src: Any) -> Any:
    """The source's next frame; a live source that is lost (a camera unplugged, a network stream dropped) is
    reopened with growing pauses until frames come again, as ``streamhand run`` does (a lost file is a RunError)."""
    from streamhand.app import RunError
    from streamhand.capture.base import SourceLost, reopen_until_back

    while True:
        try:
            return src.read()
        except SourceLost as e:
            if not src.live:
                raise RunError(str(e)) from None
            log.warning("source lost (%s); retrying", e)
        reopen_until_back(src)


def _source_config(source: Any, fov_deg: float) -> Any:
    """:meth:`HandTracker.stream`'s source as a run's source settings (a RunError in one line for what is none)."""
    from pydantic import ValidationError

    from streamhand.app import RunError
    from streamhand.capture.base import is_stream_url
    from streamhand.capture.files import IMAGE_EXTENSIONS
    from streamhand.configio import format_validation_error
    from streamhand.runtime_config import SourceConfig

    if isinstance(source, bool) or not isinstance(source, (int, str, Path)):
        raise RunError(f"stream(): the source is \"demo\", a camera index or stream URL, a video file, an image folder "
                       f"or glob, or a FrameSource, not {type(source).__name__}")  # fmt: skip
    try:
        if isinstance(source, int) or (isinstance(source, str) and source.isdigit()) or is_stream_url(source):
            return SourceConfig(kind="camera", camera=str(source), fov_deg=fov_deg)  # a stream URL: a camera too
        text = str(source)
        if text == "demo":
            return SourceConfig(kind="demo", realtime=False, fov_deg=fov_deg)
        p = Path(text)
        if p.is_dir() or any(c in text for c in "*?[") or p.suffix.lower() in IMAGE_EXTENSIONS:
            return SourceConfig(kind="images", images=text, realtime=False, fov_deg=fov_deg)
        return SourceConfig(kind="video", video=text, realtime=False, fov_deg=fov_deg)
    except ValidationError as e:
        raise RunError(format_validation_error(e, SourceConfig, "HandTracker.stream")) from None
