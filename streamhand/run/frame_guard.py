"""Checks on every frame a source delivers, before detection: a frame that is not an RGB image is skipped and
counted; one whose size differs from its intrinsics gets them rescaled (a camera that changed resolution; square pixels
kept where the aspect ratio changed too); a
live camera that keeps delivering the same image (a frozen stream) is reported until the picture moves."""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib

import numpy as np

from streamhand.capture.base import MIN_SIDE, Frame

log = logging.getLogger(__name__)


class FrameGuard:
    """``check(frame)`` -> the frame to process (intrinsics rescaled if needed), or None to skip it.

    ``state``: "" while all is well, else why (e.g. ``frozen: the same image for 3 s``)."""

    def __init__(self, live: bool, frozen_s: float = 2.0):
        self.live, self.frozen_s = live, frozen_s
        self.bad_frames = 0
        self.resized = 0
        self.frozen_episodes = 0
        self.state = ""
        self._last_sum: int | None = None
        self._same_since: float | None = None
        self._warned_size: tuple[int, int] | None = None

    def check(self, frame: Frame) -> Frame | None:
        rgb = frame.rgb
        is_rgb = isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
        if not is_rgb or min(rgb.shape[:2]) < MIN_SIDE:
            self.bad_frames += 1
            shape = getattr(rgb, "shape", None)
            why = f"under {MIN_SIDE} pixels across" if is_rgb else "that is not an RGB image"
            log.warning("skipping a frame %s (%s %s)", why, getattr(rgb, "dtype", type(rgb)), shape)
            return None
        h, w = rgb.shape[:2]
        k = frame.intrinsics
        if (k.width, k.height) != (w, h):
            self.resized += 1
            if self._warned_size != (w, h):
                self._warned_size = (w, h)
                how = ("scaling them" if k.same_aspect(w, h) else
                       "another aspect ratio: keeping square pixels and the field of view across the longer side "
                       "(give --intrinsics for this resolution if they were measured)")  # fmt: skip
                log.warning("the source delivers %dx%d frames for %dx%d intrinsics: %s", w, h, k.width, k.height, how)
            frame = dataclasses.replace(frame, intrinsics=k.resized(w, h))
        if self.live:
            self._watch_frozen(rgb)
        return frame

    def _watch_frozen(self, rgb: np.ndarray) -> None:
        s = zlib.adler32(np.ascontiguousarray(rgb[::8, ::8]).tobytes())
        now = time.monotonic()
        if s != self._last_sum:
            if self.state.startswith("frozen"):
                log.warning("source moving again")
            self._last_sum, self._same_since, self.state = s, now, ""
            return
        assert self._same_since is not None
        if now - self._same_since >= self.frozen_s:
            if not self.state.startswith("frozen"):
                self.frozen_episodes += 1
                log.warning("source frozen: the same image for %.0f s", now - self._same_since)
            self.state = f"frozen: the same image for {now - self._same_since:.0f} s"
