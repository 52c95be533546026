"""The one-item hand-off between pipeline stages: lossless (put waits for the taker) or latest-wins (put
replaces an unread item, counted as a drop), with demand-driven reading (wait until a consumer is waiting)."""

from __future__ import annotations

import threading
import time
from typing import Any


class Slot:
    """A one-item hand-off. ``lossless=False``: put replaces an unread item (counted as a drop)."""

    def __init__(self, lossless: bool):
        self.lossless = lossless
        self._cond = threading.Condition()
        self._item: Any = None
        self._has = False
        self._closed = False
        self._takers = 0  # consumers blocked in get()

    def put(self, item: Any) -> bool:
        with self._cond:
            while self.lossless and self._has and not self._closed:
                self._cond.wait(0.1)
            if self._closed:
                return False
            dropped = self._has
            self._item, self._has = item, True
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None) -> Any:
        """The next item; ``None`` once the slot is closed and empty (or after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._takers += 1
            self._cond.notify_all()
            try:
                while not self._has:
                    if self._closed or (deadline is not None and time.monotonic() >= deadline):
                        return None
                    self._cond.wait(0.1 if timeout is None else min(0.1, timeout))
            finally:
                self._takers -= 1
            item, self._item, self._has = self._item, None, False
            self._cond.notify_all()
            return item

    def wait_for_taker(self, stop: threading.Event) -> None:
        """Block until a consumer waits on an empty slot (demand-driven reading: no frame ages in a queue)."""
        with self._cond:
            while not (self._takers and not self._has) and not self._closed and not stop.is_set():
                self._cond.wait(0.05)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
