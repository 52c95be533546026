"""A long run of the whole pipeline (demo source, real time, the shipped model) with two subscribers, one fast
and one that stalls for seconds at a time, watching the process for leaks: resident memory (its slope after
warm-up), threads and open file descriptors, the fast subscriber's ``seq`` gaps, and the stalled one's
recovery. ``streamhand bench --soak MINUTES`` prints it; the test suite runs about a minute of it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def rss_mb() -> float:
    """Resident memory of this process (MB), from /proc (NaN where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


@dataclass
class _Sub:
    """A subscriber thread: counts messages and gaps; ``stall`` (seconds) pauses it every ``every`` seconds."""

    address: str
    stall: float = 0.0
    every: float = 5.0
    received: int = 0
    gaps: int = 0
    after_stall: int = 0  # messages received after its last stall: it recovered
    stalls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from streamhand.stream.client import PoseSubscriber

        sub = PoseSubscriber(self.address, topics=("hand.frame",), raw=True, timeout=0.5)
        last_stall = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.stall and time.monotonic() - last_stall > self.every:
                    time.sleep(self.stall)
                    last_stall = time.monotonic()
                    self.stalls += 1
                    self.after_stall = 0
                try:
                    m = sub.recv()
                except TimeoutError:
                    continue
                self.received += 1
                self.after_stall += 1
                self.gaps += m.gap
        finally:
            sub.close()


def soak(minutes: float, sample_s: float = 5.0, on_sample: Callable[[dict], None] | None = None,
         model: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run for ``minutes``; returns the figures (see the module docstring)."""
    from streamhand.app import build_run
    from streamhand.runtime_config import RunConfig

    port, cport = _free_port(), _free_port()
    cfg = RunConfig.model_validate({"source": {"kind": "demo", "realtime": True}, "detect": {"detector": "mediapipe"},
                                    "model": {"path": model}, "publish": {"port": port, "control_port": cport}})
    run = build_run(cfg)
    pipe = run.pipeline
    addr = f"tcp://127.0.0.1:{port}"
    fast, slow = _Sub(addr), _Sub(addr, stall=3.0, every=5.0)
    threads = [threading.Thread(target=s.run, daemon=True) for s in (fast, slow)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    runner = threading.Thread(target=pipe.run, daemon=True)
    samples: list[dict] = []
    t0 = time.monotonic()
    runner.start()
    try:
        while time.monotonic() - t0 < minutes * 60 and runner.is_alive():
            time.sleep(min(sample_s, max(minutes * 60 - (time.monotonic() - t0), 0.01)))
            s = {"t_s": time.monotonic() - t0, "rss_mb": rss_mb(), "threads": threading.active_count(),
                 "fds": open_fds(), "frames": pipe.frames_processed, "fast_gaps": fast.gaps}  # fmt: skip
            samples.append(s)
            if on_sample is not None:
                on_sample(s)
    finally:
        pipe.stop()
        runner.join(30)
        for sub in (fast, slow):
            sub._stop.set()
        for t in threads:
            t.join(5)
        run.close()
    return summarise(samples, fast, slow, pipe.errors, minutes)


def summarise(samples: list[dict], fast: _Sub, slow: _Sub, errors: list[str], minutes: float) -> dict[str, Any]:
    t = np.array([s["t_s"] for s in samples])
    rss = np.array([s["rss_mb"] for s in samples])
    warm = t >= min(max(0.25 * t.max(initial=0.0), 20.0), 0.5 * t.max(initial=0.0))  # after warm-up
    slope = float(np.polyfit(t[warm], rss[warm], 1)[0] * 600) if warm.sum() >= 3 else float("nan")
    after = [s for s, w in zip(samples, warm) if w]
    return {
        "minutes": minutes, "samples": len(samples), "frames": samples[-1]["frames"] if samples else 0,
        "rss_mb_start": float(rss[warm][0]) if warm.any() else float("nan"),
        "rss_mb_end": float(rss[-1]) if len(rss) else float("nan"),
        "rss_slope_mb_per_10min": slope,
        "threads": sorted({s["threads"] for s in after}), "fds": sorted({s["fds"] for s in after}),
        "fast": {"received": fast.received, "gaps": fast.gaps},
        "stalled": {"received": slow.received, "stalls": slow.stalls, "gaps": slow.gaps,
                    "received_after_last_stall": slow.after_stall},
        "errors": errors,
    }  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
