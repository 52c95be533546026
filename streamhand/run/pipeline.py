"""The streaming pipeline: capture -> detect -> infer -> place + smooth + publish, each stage on its own
thread, joined by single-item slots.

Live or real-time-paced sources hand frames on latest-wins (a slow stage drops old frames instead of
building lag; drops are counted); sources read as fast as possible (``--no-realtime``) and still-image
sets (paced or not: they are not a camera) hand off losslessly, so every frame is processed and throughput
is set by the slowest stage. Those read as fast as possible are read one frame ahead (the next frame is
read while the detector works, and its clock starts when the detector takes it); paced still sets are read
on demand (when the detector is ready), so no frame ages in a queue. Track ids link hands across the frames
of a sequence; the images of a still set are unrelated unless tracking is turned on, so each gets its own
ids. Every stage is timed; a run report gathers throughput, latency percentiles, detection rate and, for
sources with ground truth, the 3D error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from streamhand.capture.base import FrameSource
from streamhand.detect import TrackLinker
from streamhand.infer import Lifter
from streamhand.run.capture_stage import CaptureStage
from streamhand.run.emit import Emitter
from streamhand.run.handoff import Slot
from streamhand.run.stats import StageStats
from streamhand.run.watchdog import Watchdog
from streamhand.run.work import DetectStep, InferStep, Work
from streamhand.runtime_config import RunConfig
from streamhand.stream.publish import Publisher

log = logging.getLogger(__name__)


class Pipeline:
    """The stages' threads and hand-offs; what each stage does lives beside it (detect, infer, :mod:`.emit`)."""

    def __init__(self, cfg: RunConfig, source: FrameSource, detector: Any, lifter: Lifter,
                 publisher: Publisher | None, modalities: tuple[str, ...] = ("2d",)):  # fmt: skip
        self.cfg = cfg
        self.source, self.detector, self.lifter, self.publisher = source, detector, lifter, publisher
        self.modalities = modalities
        self.stats = StageStats()
        paced = source.live or cfg.source.realtime  # frames arrive in (or are held to) real time
        self.lossless = source.stills or not paced
        self.read_ahead = not paced  # read as fast as the pipeline goes: lossless, the next frame read ahead
        self._slots = [Slot(self.lossless) for _ in range(3)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tracking = cfg.detect.tracking_for(source.stills)  # the detector is made with the same choice
        self.linker = TrackLinker(link=self.tracking or not source.stills)
        model_id = lifter.backend.model_id if lifter is not None else "unknown"
        error_models = lifter.backend.error_model if lifter is not None else None
        self.emitter = Emitter(cfg, publisher, self.stats, modalities, model_id, source.camera_id, error_models)
        self.watchdog = Watchdog(cfg.watchdog_s, on_stall=lambda: self.stats.count("stalls"))
        self.capture = CaptureStage(source, cfg.frames, self._stop, self.stats, self._slots[0],
                                    self.read_ahead)  # fmt: skip
        self._errors: list[str] = []
        self._t_start = time.monotonic()
        #: the run's wall time and the process's CPU time over it (every thread: MediaPipe's graph's too), seconds
        self.span_s: tuple[float, float] | None = None
        #: seconds from :meth:`run`'s start (the source open, the model and the detector loaded and warmed up) to the
        #: first frame's publication (its ``hand.frame``), its hands placed; None until then
        self.first_frame_s: float | None = None

    @property
    def frames_in(self) -> int:
        return self.capture.frames_in

    @property
    def frames_processed(self) -> int:
        return self.emitter.frames_processed

    @property
    def source_state(self) -> str:
        return self.capture.state

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> dict:
        """Live statistics (the control socket's ``stats`` and the ``status`` topic)."""
        c = self.stats.counters_snapshot()
        return {
            "uptime_s": max(time.monotonic() - self._t_start, 1e-9), "source": self.source.name,
            "source_state": self.source_state, "frames_in": self.frames_in, "frames_processed": self.frames_processed,
            "fps": self.emitter.recent_fps(), "drops": {k[5:]: v for k, v in c.items() if k.startswith("drop_")},
            "corrupt_frames": self.source.corrupt_frames + self.capture.guard.bad_frames,
            "hands_published": c.get("hands", 0),
            "latency_ms": {k: v["p50"] for k, v in self.stats.summary_ms().items()},
            "backend": self.lifter.backend.describe(), "backend_reason": self.lifter.backend.reason,
            "detector": getattr(self.detector, "label", "mediapipe"), "stalled": self.watchdog.stalled(),
        }  # fmt: skip

    # ------------------------------------------------------------------ stages
    def _capture(self) -> None:
        try:
            self.capture.run(lambda frame: self._slots[0].put(Work(frame)))
        except Exception as e:  # keep the process alive and report it
            self._fail("capture", e)
        finally:
            self._slots[0].close()

    def _stage(self, name: str, src: Slot, out: Slot, work: Callable[[Work], None], last: bool = False) -> None:
        """Take items from ``src``, apply ``work`` (timed as ``name``), hand them to ``out``. The ``last`` stage times
        itself and hands nothing on (``out``, the preview's slot, is only closed at the end)."""
        try:
            while (w := src.get()) is not None:
                t0, c0 = time.perf_counter(), time.thread_time()
                self.watchdog.busy(name)
                work(w)
                self.watchdog.idle(name)
                if last and self.first_frame_s is None:  # the first frame through the whole pipeline
                    self.first_frame_s = time.monotonic() - self._t_start
                if not last:
                    w.times[name] = time.perf_counter() - t0
                    self.stats.add(name, w.times[name], time.thread_time() - c0)
                    if out.put(w):
                        self.stats.count(f"drop_{name}")
        except Exception as e:
            self._fail(name, e)
        finally:
            out.close()

    def _fail(self, stage: str, e: Exception) -> None:
        """A stage died: stop the whole pipeline. Every hand-off is closed, so no other stage waits for it."""
        msg = f"{stage} stage failed: {type(e).__name__}: {e}"
        log.error(msg)
        self._errors.append(msg)
        self._stop.set()
        for slot in (*self._slots, self.emitter.display):
            slot.close()

    def _maybe_status(self, force: bool = False) -> None:
        try:
            self.emitter.status(self.snapshot(), force)
        except Exception as e:  # an output fed by every message (--save X.mcap) failing on a status: as a stage's
            self._fail("publish", e)

    # ------------------------------------------------------------------ running
    def run(self, on_tick: Callable[[dict], None] | None = None, tick_s: float = 0.5) -> dict:
        """Run until the source ends, ``frames`` are done, or :meth:`stop`; returns the report. ``on_tick`` gets a
        :meth:`snapshot` every ``tick_s`` seconds (a live status line)."""
        self._t_start = time.monotonic()
        self.first_frame_s = None
        cpu0 = time.process_time()
        last_tick = self._t_start
        s = self._slots
        cfg = self.cfg.detect
        detect = DetectStep(self.detector, self.linker, self.lifter, self.modalities, cfg.max_hands, cfg.crop_margin,
                            restamp=self.read_ahead)  # fmt: skip
        stages = (
            ("capture", self._capture, ()),
            ("detect", self._stage, ("detect", s[0], s[1], detect)),
            ("infer", self._stage, ("infer", s[1], s[2], InferStep(self.lifter, self.modalities))),
            ("publish", self._stage, ("publish", s[2], self.emitter.display, self.emitter.emit, True)),
        )
        for name, fn, args in stages:
            t = threading.Thread(target=fn, args=args, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        viewer = None
        if self.cfg.show:
            from streamhand.viz.viewer import PreviewWindow

            viewer = PreviewWindow()
        try:
            while alive := [t for t in self._threads if t.is_alive()]:
                self.watchdog.check()
                self._maybe_status()  # on a timer: also while a lost camera delivers nothing
                if on_tick is not None and time.monotonic() - last_tick >= tick_s:
                    last_tick = time.monotonic()
                    on_tick(self.snapshot())
                if viewer is not None and not self.emitter.display.closed:
                    item = self.emitter.display.get(timeout=0.1)
                    if item is not None and not viewer.show(*item, fps=self.snapshot()["fps"]):
                        self.stop()
                else:
                    alive[-1].join(0.1)  # never a busy loop: the last stage still running
        except KeyboardInterrupt:
            self.stop()
        finally:
            self.stop()
            for t in self._threads:
                t.join(timeout=5)
            for hook in self.emitter.end_hooks:
                try:
                    hook()
                except Exception as e:  # a failure of the run, in its report and exit code, as a stage's is
                    self._fail("publish", e)
            self.span_s = (time.monotonic() - self._t_start, time.process_time() - cpu0)
            if viewer is not None:
                viewer.close()
        self._maybe_status(force=True)
        return self.report()

    @property
    def errors(self) -> list[str]:
        return list(self._errors)

    def report(self) -> dict:
        from streamhand.run.report import run_report

        return run_report(self)
