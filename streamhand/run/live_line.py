"""The one-line live status of a run on a terminal: frames, fps, hands, latency, and a progress bar when the
number of frames is known (``--frames``, a video, an image folder). Log lines never collide with it: the line
is cleared before each one and redrawn on the next update."""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, Any

_BAR = 24


_SAYS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
log = logging.getLogger(__name__)


def wanted(stream: IO[str] | None = None) -> bool:
    """On a terminal (``STREAMHAND_LIVE=1`` (or true, yes, on) forces it, ``0`` (false, no, off) turns it off; another
    value is warned and left to the terminal); ``stream``: default the current stderr."""
    forced = os.environ.get("STREAMHAND_LIVE", "").strip().lower()
    if forced in _SAYS:
        return _SAYS[forced]
    if forced:
        log.warning("STREAMHAND_LIVE=%s: give 1 (a live line) or 0 (none); left to the terminal", forced[:20])
    try:
        return bool(getattr(stream or sys.stderr, "isatty", lambda: False)())
    except ValueError:  # a closed stream is no terminal
        return False


def dropped(drops: dict[str, int] | None) -> str | None:
    """``N dropped``: the frames dropped at the latest-wins hand-offs, all stages together (None: none were)."""
    n = sum((drops or {}).values())
    return f"{n} dropped" if n else None


def status_text(snap: dict[str, Any], total: int | None) -> str:
    """``snap``: :meth:`streamhand.run.pipeline.Pipeline.snapshot`; frames dropped are said where there are some."""
    done = int(snap.get("frames_processed", 0))
    e2e = snap.get("latency_ms", {}).get("end_to_end")
    parts = [
        f"{done} frames" if total is None else f"{done}/{total} frames",
        f"{snap.get('fps', 0.0):.1f} fps",
        f"{snap.get('hands_published', 0)} hands",
        f"e2e {e2e:.0f} ms" if e2e is not None else "e2e -",
    ]
    if lost := dropped(snap.get("drops")):
        parts.append(lost)
    state = snap.get("source_state", "ok")
    if state not in ("ok", "starting", "ended", "stopped"):
        parts.append(str(state))
    text = "  ".join(parts)
    if total:
        filled = min(int(_BAR * done / total), _BAR)
        text = f"[{'#' * filled}{'-' * (_BAR - filled)}] {text}"
    return text


class LiveLine:
    """Redraws one status line in place on ``stream``; :meth:`attach_logging` keeps log lines off it."""

    def __init__(self, total: int | None, stream: IO[str] | None = None):
        self.total, self.stream, self.shown = total, stream or sys.stderr, False
        self._patched: list[tuple[logging.StreamHandler, IO[str]]] = []

    def update(self, snap: dict[str, Any]) -> None:
        self.stream.write("\r" + status_text(snap, self.total) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def attach_logging(self) -> None:
        """Clear the line before any log record reaches the same stream."""
        for h in logging.getLogger().handlers:
            if isinstance(h, logging.StreamHandler) and h.stream in (self.stream, sys.__stderr__):
                self._patched.append((h, h.stream))
                h.setStream(_Clearing(h.stream, self))

    def close(self) -> None:
        self.clear()
        for h, stream in self._patched:
            h.setStream(stream)
        self._patched.clear()


class _Clearing:
    def __init__(self, stream: IO[str], line: LiveLine):
        self._stream, self._line = stream, line

    def write(self, s: str) -> int:
        self._line.clear()
        return self._stream.write(s)

    def flush(self) -> None:
        self._stream.flush()
