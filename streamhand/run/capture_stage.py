"""The pipeline's first stage: frames read from the source (one frame ahead, or on demand, where hand-offs are
lossless), checked by the frame guard (corrupt, frozen, resized), counted and handed on; a lost source reopened with
growing pauses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost, reopen_until_back
from streamhand.run.frame_guard import FrameGuard
from streamhand.run.handoff import Slot
from streamhand.run.stats import StageStats, log_every_n_seconds

log = logging.getLogger(__name__)


class CaptureStage:
    def __init__(self, source: FrameSource, frames: int | None, stop: threading.Event, stats: StageStats,
                 out: Slot, read_ahead: bool = False) -> None:  # fmt: skip
        """``read_ahead`` (lossless hand-offs only): read the next frame while the detector works on this one (its
        clock is restarted when the detector takes it, :meth:`Frame.arrived`); otherwise a lossless hand-off reads
        a frame only when the detector is ready for it."""
        self.source, self.frames, self._stop, self.stats, self._out = source, frames, stop, stats, out
        self.read_ahead = read_ahead and out.lossless
        self.guard = FrameGuard(live=source.live)
        #: starting | ok | ended (the source ran out) | stopped (--frames, a stop) | lost: why | the guard's (frozen)
        self.state = "starting"
        self.frames_in = 0
        self._lost = False  # the source was lost and has given no frame since (reopened or not)
        self._frozen_reopened = False  # this freeze of the picture has had its reopen
        self._skipped = 0  # the source's skipped_frames counted so far

    def run(self, hand_on: Callable[[Frame], Any]) -> None:
        """Read until the source ends, ``frames`` are read or the run stops; ``hand_on(frame)`` returns whether the
        hand-off dropped an older frame."""
        while not self._stop.is_set():
            if self.frames is not None and self.frames_in >= self.frames:
                break
            if self._out.lossless and not self.read_ahead:  # read when the detector is ready: none waits in a queue
                self._out.wait_for_taker(self._stop)
            try:
                frame = self.source.read()
            except SourceLost as e:
                if not self._reconnect(e):
                    break
                continue
            if self.source.skipped_frames > self._skipped:  # passed over by the source itself: read, and dropped
                n, self._skipped = self.source.skipped_frames - self._skipped, self.source.skipped_frames
                self.frames_in += n
                self.stats.count("drop_source", n)
            if frame is None:
                self.state = "ended"
                break
            frame = self.guard.check(frame)
            if frame is None:
                continue
            if self._reopen_frozen():
                continue
            self.state = self.guard.state or "ok"
            if self._lost:  # back only once frames come again: a source can reopen and still give none
                self._lost = False
                log.warning("source recovered")
            self.frames_in += 1
            # capture latency: from the frame's capture to its hand-off (not the wait for the next frame)
            self.stats.add("capture", max(time.monotonic() - frame.t_capture, 0.0))
            if hand_on(frame):
                self.stats.count("drop_capture")
        if self.state != "ended" and not self.state.startswith("lost"):
            self.state = "stopped"  # the run's last status says why no more frames come

    def _reopen_frozen(self) -> bool:
        """A live source frozen on one image (a network camera whose stream changed size under OpenCV's decoder
        repeats its last picture for good): reopened once each time it freezes, as if lost; True where it was, and
        the frame in hand (that image again) is not used."""
        if not self.guard.state.startswith("frozen"):
            self._frozen_reopened = False  # moving again: the next freeze has its own reopen
            return False
        if not self.source.live or self._frozen_reopened:
            return False
        self._frozen_reopened = True
        log.warning("source frozen: reopening it")
        try:
            self.source.reopen()
        except (SourceLost, SourceError) as e:
            self._reconnect(e)  # until it answers, or the run stops
        return True

    def _reconnect(self, e: Exception) -> bool:
        """Reopen a lost source with growing pauses until it answers (True) or the run stops (False); its state stays
        ``lost: ...`` until a frame comes (a loss is counted once, however many reopens it takes)."""
        self.state = f"lost: {e}"
        log_every_n_seconds(log, logging.WARNING, "source lost (%s); retrying", e, n=5.0)
        if not self._lost:
            self._lost = True
            self.stats.count("source_lost")

        def still_lost(e2: Exception) -> None:
            self.state = f"lost: {e2}"

        back = reopen_until_back(self.source, self._stop, still_lost)
        if back:
            log.debug("source reopened; waiting for its frames")
        return back
