"""What the stream's viewers (:mod:`.rerun_log`, :mod:`.foxglove_bridge`) share: each decoded message checked against
the schema and shown under one lock until the viewer is closed."""

from __future__ import annotations

import threading
from typing import Any

from streamhand.stream import protocol


class StreamSink:
    """:meth:`message` parses a decoded message (one that does not follow the schema is counted in ``skipped``) and
    hands it to :meth:`_show` unless the sink is closed; :meth:`_closing` marks it closed, once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.skipped = 0
        self.closed = False

    def message(self, topic: str, data: dict) -> bool:
        """One decoded stream message; False when it does not follow the schema or the sink is closed."""
        msg, _ = protocol.parse(topic, data)
        if msg is None:
            self.skipped += 1
            return False
        with self._lock:
            if self.closed:
                return False
            self._show(topic, data, msg)
        return True

    def _show(self, topic: str, data: dict, msg: Any) -> None:
        raise NotImplementedError

    def _closing(self) -> bool:
        """Mark the sink closed; True the first time (the caller then releases what it holds)."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            return True
