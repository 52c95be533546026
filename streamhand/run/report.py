"""The run report (what ``--report`` writes and ``streamhand run`` summarises) and the
baseline it is compared with: MediaPipe alone on the same frames, back to back and, for a paced run, paced."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from streamhand.capture.base import FrameSource
from streamhand.cpu import cpu_facts
from streamhand.jit import COMPILED
from streamhand.run.capture_stage import CaptureStage
from streamhand.run.handoff import Slot
from streamhand.run.stats import StageStats


def run_report(pipe: Any) -> dict:
    """Throughput, latency percentiles per stage, drops, detection rate (or, with ground truth, the 3D error)."""
    snap = pipe.snapshot()
    counters = pipe.stats.counters_snapshot()
    guard = pipe.capture.guard
    rep: dict[str, Any] = {
        "source": pipe.source.name, "frames_in": pipe.frames_in, "frames_processed": pipe.frames_processed,
        # a rate needs two frames: null for a run of one (one image), not 0.0
        "fps": pipe.emitter.fps() if pipe.frames_processed >= 2 else None,  # the run's (status: the last 2 s)
        # start-up: the pipeline's start to its first frame published (None: no frame was)
        "first_frame_s": pipe.first_frame_s,
        "latency_ms": pipe.stats.summary_ms(), "drops": snap["drops"],
        "corrupt_frames": snap["corrupt_frames"], "hands_published": snap["hands_published"],
        "hands_withheld": counters.get("hands_withheld", 0),  # --min-confidence
        "frozen_episodes": guard.frozen_episodes, "resized_frames": guard.resized,
        "source_lost": counters.get("source_lost", 0),  # a live source's losses (each ended by frames or the run)
        "backend": snap["backend"], "backend_reason": snap["backend_reason"], "modalities": list(pipe.modalities),
        "detector": snap["detector"], "detector_reason": getattr(pipe.detector, "reason", ""),
        "tracking": pipe.tracking, "errors": pipe.errors, "stalls": counters.get("stalls", 0),
        # handedness is the track's (a vote over its frames): how often a track's label changed, and on how many
        # hands the detector's own label of the frame was overruled by the track's
        "handedness_switches": sum(pipe.linker.switches.values()),
        "handedness_switches_by_track": {str(k): v for k, v in sorted(pipe.linker.switches.items())},
        "handedness_overruled": pipe.linker.overruled,
        "cpu": cpu_facts(),  # which machine the latencies are from
        "compiled": COMPILED,  # the per-frame arithmetic compiled by numba (False: plain Python, slower)
        **cpu_use(pipe.stats, pipe.span_s),
    }  # fmt: skip
    truth = pipe.emitter.truth
    if truth.truth_hands:  # ground truth: the share of true hands that were found
        rep.update(truth.report())
    else:  # the share of processed frames with at least one hand
        n = pipe.frames_processed
        rep["detection_rate"] = counters.get("frames_with_hands", 0) / n if n else 0.0
    rep.update(pipe.emitter.still.report())
    return rep


def cpu_use(stats: StageStats, span_s: tuple[float, float] | None) -> dict:
    """Who keeps the cores busy: ``cpu_ms``, each timed stage's own thread's CPU time per frame (its latency less
    this is time spent waiting for a core or a lock; MediaPipe's graph works in threads of its own, so ``detect``'s is
    only the Python side of the call), and ``cores_busy``, CPU seconds per second of the run for the whole process
    (every thread, MediaPipe's included) and for each of those stages' threads."""
    out: dict[str, Any] = {"cpu_ms": stats.cpu_ms()}
    if span_s is not None and span_s[0] > 0:
        wall, process = span_s
        out["cores_busy"] = {"process": process / wall, **{s: v / wall for s, v in stats.cpu_total_s().items()}}
    return out


@contextmanager
def _read_by_capture(source: FrameSource, frames: int, lossless: bool, read_ahead: bool,
                     stop: threading.Event | None) -> Iterator[tuple[Callable[[], Any], StageStats]]:  # fmt: skip
    """``source`` read on a thread of its own by the pipeline's capture stage into a hand-off, as a run reads it;
    yields what gives the next frame (None at the end, or once ``stop`` is set) and the capture's counts."""
    done, stats, slot = threading.Event(), StageStats(), Slot(lossless=lossless)
    capture = CaptureStage(source, frames, done, stats, slot, read_ahead=read_ahead)

    def read() -> None:
        try:
            capture.run(slot.put)
        finally:
            slot.close()

    def next_frame() -> Any:
        return None if stop is not None and stop.is_set() else slot.get()

    source.open()
    reader = threading.Thread(target=read, name="capture-alone", daemon=True)
    reader.start()
    try:
        yield next_frame, stats
    finally:
        done.set()
        slot.close()
        reader.join(timeout=5)
        source.close()


def mediapipe_alone_paced(source: FrameSource, detector: Any, frames: int, stop: threading.Event | None = None) -> dict:
    """MediaPipe by itself on a paced source, read as a paced run reads it (the pipeline's capture stage and its
    hand-off: the latest frame wins, a still set's are all kept), each frame timed from its capture to MediaPipe's
    answer. A paced run's end-to-end latency includes the wait for a busy detector; this is the same figure without
    anything of ours, the reference that a back-to-back pass (:func:`mediapipe_alone`) cannot give."""
    latency: list[float] = []
    with _read_by_capture(source, frames, source.stills, False, stop) as (next_frame, stats):
        while (f := next_frame()) is not None:
            detector(f.rgb)
            latency.append(time.monotonic() - f.t_capture)
    v = np.array(latency) * 1000.0
    if not v.size:
        return {"frames": 0}
    return {"frames": int(v.size), "drops": int(stats.counters_snapshot().get("drop_capture", 0)),
            "end_to_end_ms_p50": float(np.median(v)), "end_to_end_ms_p95": float(np.percentile(v, 95))}  # fmt: skip


def mediapipe_alone(source: FrameSource, detector: Any, frames: int, stop: threading.Event | None = None) -> dict:
    """MediaPipe by itself on the same frames, one after another, read one frame ahead on a thread of their own as a
    run read as fast as it goes reads them: ``fps`` (for the speed ratio) counts the frames over the time from the
    first frame's capture to the last answer, so that decoding a large video weighs on both sides alike;
    ``ms_per_frame_*`` time MediaPipe's own calls. Setting ``stop`` ends it after the frame in hand (either pass)."""
    times = []
    t_first = t_last = None
    with _read_by_capture(source, frames, True, True, stop) as (next_frame, _):
        while (f := next_frame()) is not None:
            t_first = f.t_capture if t_first is None else t_first
            t0 = time.perf_counter()
            detector(f.rgb)
            times.append(time.perf_counter() - t0)
            t_last = time.monotonic()
    v = np.array(times) * 1000.0
    if not v.size:
        return {"frames": 0}
    wall = (t_last - t_first) if t_first is not None and t_last is not None else 0.0
    fps = v.size / wall if v.size >= 2 and wall > 0 else 1000.0 / v.mean()
    return {"frames": int(v.size), "ms_per_frame_mean": float(v.mean()), "ms_per_frame_p50": float(np.median(v)),
            "ms_per_frame_p95": float(np.percentile(v, 95)), "fps": float(fps)}  # fmt: skip
