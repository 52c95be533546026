"""The stages' watchdog: which stage has been busy with one frame for longer than a limit (reported in ``status``,
the run report and, once per episode, the error log), and its recovery."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, limit_s: float, on_stall: Callable[[], None] | None = None) -> None:
        self.limit_s = limit_s
        self._on_stall = on_stall
        #: stage -> monotonic time it took its current frame (absent while it waits for one)
        self._busy_since: dict[str, float] = {}
        self._reported: set[str] = set()

    def busy(self, stage: str) -> None:
        self._busy_since[stage] = time.monotonic()

    def idle(self, stage: str) -> None:
        self._busy_since.pop(stage, None)

    def stalled(self) -> dict[str, float]:
        """Stages busy with one frame for longer than ``limit_s``: stage -> seconds so far."""
        now = time.monotonic()
        busy = dict(self._busy_since)
        return {k: round(now - t, 1) for k, t in busy.items() if now - t > self.limit_s}

    def check(self) -> None:
        """Log each newly stalled stage once (an error), and its recovery."""
        stalled = self.stalled()
        for stage, secs in stalled.items():
            if stage not in self._reported:
                self._reported.add(stage)
                log.error("%s stage stalled: one frame for %.0f s (watchdog %.0f s)", stage, secs, self.limit_s)
                if self._on_stall is not None:
                    self._on_stall()
        for stage in self._reported - set(stalled):
            self._reported.discard(stage)
            log.warning("%s stage running again", stage)
