"""Timing statistics for hot loops: per-stage latency percentiles, counters, rate-limited logging."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import numpy as np

_last_log: dict[tuple, float] = {}


def log_every_n_seconds(logger: logging.Logger, level: int, msg: str, *args, n: float = 5.0) -> None:
    """Log ``msg`` at most once every ``n`` seconds per call site (like detectron2's helper)."""
    import inspect

    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    key = (caller.f_code.co_filename, caller.f_lineno) if caller is not None else (msg,)
    now = time.monotonic()
    if now - _last_log.get(key, -1e9) >= n:
        _last_log[key] = now
        logger.log(level, msg, *args)


class Ring:
    """The last ``capacity`` values (float64), in memory allocated and touched up front: a long run's memory stays
    flat. ``values()`` returns them (oldest first is not kept: order does not matter for percentiles)."""

    def __init__(self, capacity: int, width: int = 0):
        shape = (capacity, width) if width else (capacity,)
        self._buf = np.full(shape, np.nan)
        self._n = 0  # values ever added

    def add(self, value) -> None:
        self._buf[self._n % len(self._buf)] = value
        self._n += 1

    def values(self) -> np.ndarray:
        return self._buf[: min(self._n, len(self._buf))].copy()

    def __len__(self) -> int:
        return min(self._n, len(self._buf))

    @property
    def total(self) -> int:
        return self._n


class StageStats:
    """Thread-safe latency samples (seconds) per stage, the last ``window`` of each, named counters, and where a
    stage gives it, the CPU time its own thread spent on each item (working, as against waiting for a core)."""

    def __init__(self, window: int = 20_000):
        self._window = window
        self._lat: dict[str, Ring] = {}
        self._cpu: dict[str, Ring] = {}
        self._cpu_total: dict[str, float] = defaultdict(float)
        self.counters: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float, cpu_seconds: float | None = None) -> None:
        """One item's wall time in ``stage``; ``cpu_seconds``: its thread's CPU time for it (``time.thread_time``)."""
        with self._lock:
            self._ring(self._lat, stage).add(seconds)
            if cpu_seconds is not None:
                self._ring(self._cpu, stage).add(cpu_seconds)
                self._cpu_total[stage] += cpu_seconds

    def _ring(self, rings: dict[str, Ring], stage: str) -> Ring:
        """``stage``'s ring in ``rings``, made on its first item (a ring's memory is allocated up front)."""
        ring = rings.get(stage)
        if ring is None:
            ring = rings[stage] = Ring(self._window)
        return ring

    def cpu_ms(self) -> dict[str, dict[str, float]]:
        """Per stage that gave it: its thread's CPU time per item, ms (p50, mean, n)."""
        with self._lock:
            rings = {s: r.values() * 1000.0 for s, r in self._cpu.items()}
        return {s: {"p50": float(np.median(v)), "mean": float(v.mean()), "n": int(v.size)} for s, v in rings.items()}

    def cpu_total_s(self) -> dict[str, float]:
        """Per stage that gave it: its thread's CPU time over every item, seconds."""
        with self._lock:
            return dict(self._cpu_total)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def counters_snapshot(self) -> dict[str, int]:
        """A consistent copy of the counters (safe to iterate while stages keep counting)."""
        with self._lock:
            return dict(self.counters)

    def percentiles_ms(self, stage: str) -> dict[str, float]:
        with self._lock:
            ring = self._lat.get(stage)
            v = ring.values() * 1000.0 if ring is not None else np.zeros(0)
        if v.size == 0:
            return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan"), "n": 0}
        p50, p95, p99 = np.percentile(v, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(v.mean()), "n": int(v.size)}

    def stages(self) -> list[str]:
        with self._lock:
            return list(self._lat)

    def summary_ms(self) -> dict[str, dict[str, float]]:
        return {s: self.percentiles_ms(s) for s in self.stages()}
