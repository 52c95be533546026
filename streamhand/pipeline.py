"""The streaming pipeline: capture -> detect -> infer -> place + smooth + publish, each stage on its own
thread, joined by single-item slots.

Live or real-time-paced sources hand frames on latest-wins (a slow stage drops old frames instead of
building lag; drops are counted); sources read as fast as possible (``--no-realtime``) and still-image
sets (paced or not: they are not a camera) hand off losslessly and are read on demand (a frame is read
when the detector is ready for it), so every frame is processed, throughput is set by the slowest stage
and no frame ages in a queue. Track ids link hands across the frames of a sequence; the images of a
still set are unrelated unless tracking is turned on, so each gets its own ids. Every stage is
timed; a run report gathers throughput, latency percentiles, detection rate and, for sources with
ground truth, the 3D error.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamhand import protocol
from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost
from streamhand.detect import Detection, HandTracker
from streamhand.detect.crops import hand_crops
from streamhand.frame_guard import FrameGuard
from streamhand.handoff import Slot
from streamhand.infer import Lifter, LiftResult
from streamhand.placement import place_hand
from streamhand.publish import Publisher
from streamhand.runtime_config import RunConfig
from streamhand.smoothing import TrackSmoother
from streamhand.stats import StageStats, log_every_n_seconds
from streamhand.truth_score import TruthScore

log = logging.getLogger(__name__)


@dataclass
class _Work:
    frame: Frame
    detections: list[Detection] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    lift: LiftResult | None = None
    times: dict[str, float] = field(default_factory=dict)  # stage -> seconds


class Pipeline:
    def __init__(self, cfg: RunConfig, source: FrameSource, detector: Any, lifter: Lifter,
                 publisher: Publisher | None, modalities: tuple[str, ...] = ("2d",)):  # fmt: skip
        self.cfg = cfg
        self.source, self.detector, self.lifter, self.publisher = source, detector, lifter, publisher
        self.modalities = modalities
        self.stats = StageStats()
        self.lossless = source.stills or not (source.live or cfg.source.realtime)
        self._slots = [Slot(self.lossless) for _ in range(3)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tracking = cfg.detect.tracking_for(source.stills)  # the detector is made with the same choice
        self._tracker = HandTracker(link=self.tracking or not source.stills)
        self._smoother = TrackSmoother(cfg.smooth.min_cutoff, cfg.smooth.beta, cfg.smooth.enabled)
        self.source_state = "starting"
        self._guard = FrameGuard(live=source.live)
        self._errors: list[str] = []
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._truth = TruthScore()  # sources with ground truth (the demo): detection rate and 3D error
        self._display: Slot = Slot(lossless=False)
        self._last_status = 0.0
        #: stage -> monotonic time it took its current frame (absent while it waits for one): the watchdog's input
        self._busy_since: dict[str, float] = {}
        self._stalled_reported: set[str] = set()
        #: the common fields of the latest processed frame, which ``status`` maps carry too
        self._last_common: dict | None = None
        self._t_start = time.monotonic()
        self.frames_in = 0
        self.frames_processed = 0

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> dict:
        """Live statistics (the control socket's ``stats`` and the ``status`` topic)."""
        el = max(time.monotonic() - self._t_start, 1e-9)
        span = (self._t_last - self._t_first) if self._t_first is not None and self._t_last is not None else 0.0
        fps = (self.frames_processed - 1) / span if span > 0 else 0.0
        c = self.stats.counters_snapshot()
        return {
            "uptime_s": el, "source": self.source.name, "source_state": self.source_state,
            "frames_in": self.frames_in, "frames_processed": self.frames_processed, "fps": fps,
            "drops": {k[5:]: v for k, v in c.items() if k.startswith("drop_")},
            "corrupt_frames": self.source.corrupt_frames + self._guard.bad_frames,
            "hands_published": c.get("hands", 0),
            "latency_ms": {k: v["p50"] for k, v in self.stats.summary_ms().items()},
            "backend": self.lifter.backend.describe(), "backend_reason": self.lifter.backend.reason,
            "detector": getattr(self.detector, "label", "mediapipe"), "stalled": self.stalled(),
        }  # fmt: skip

    def stalled(self) -> dict[str, float]:
        """Stages busy with one frame for longer than ``watchdog_s``: stage -> seconds so far."""
        now = time.monotonic()
        busy = dict(self._busy_since)
        return {k: round(now - t, 1) for k, t in busy.items() if now - t > self.cfg.watchdog_s}

    def _watchdog(self) -> None:
        """Log each newly stalled stage once (an error), and its recovery."""
        stalled = self.stalled()
        for stage, secs in stalled.items():
            if stage not in self._stalled_reported:
                self._stalled_reported.add(stage)
                log.error("%s stage stalled: one frame for %.0f s (watchdog %.0f s)", stage, secs, self.cfg.watchdog_s)
                self.stats.count("stalls")
        for stage in self._stalled_reported - set(stalled):
            self._stalled_reported.discard(stage)
            log.warning("%s stage running again", stage)

    # ------------------------------------------------------------------ stages
    def _capture(self) -> None:
        out = self._slots[0]
        backoff = 0.25
        try:
            while not self._stop.is_set():
                if self.cfg.frames is not None and self.frames_in >= self.cfg.frames:
                    break
                if out.lossless:  # read only when the detector is ready: frames never wait in a queue
                    out.wait_for_taker(self._stop)
                try:
                    frame = self.source.read()
                except SourceLost as e:
                    self.source_state = f"lost: {e}"
                    log_every_n_seconds(log, logging.WARNING, "source lost (%s); retrying", e, n=5.0)
                    self.stats.count("source_lost")
                    while not self._stop.is_set():
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, 5.0)
                        try:
                            self.source.reopen()
                            break
                        except (SourceLost, SourceError) as e2:
                            self.source_state = f"lost: {e2}"
                    else:
                        break
                    self.source_state = "ok"
                    log.warning("source recovered")
                    backoff = 0.25
                    continue
                if frame is None:
                    self.source_state = "ended"
                    break
                frame = self._guard.check(frame)
                if frame is None:
                    continue
                self.source_state = self._guard.state or "ok"
                self.frames_in += 1
                # capture latency: from the frame's capture to its hand-off (not the wait for the next frame)
                self.stats.add("capture", max(time.monotonic() - frame.t_capture, 0.0))
                if out.put(_Work(frame)):
                    self.stats.count("drop_capture")
        except Exception as e:  # keep the process alive and report it
            self._fail("capture", e)
        finally:
            out.close()

    def _stage(self, name: str, src: Slot, out: Slot, work) -> None:
        """Take items from ``src``, apply ``work`` (timed as ``name``), hand them to ``out``."""
        try:
            while (w := src.get()) is not None:
                t0 = time.perf_counter()
                self._busy_since[name] = time.monotonic()
                work(w)
                self._busy_since.pop(name, None)
                w.times[name] = time.perf_counter() - t0
                self.stats.add(name, w.times[name])
                if out.put(w):
                    self.stats.count(f"drop_{name}")
        except Exception as e:
            self._fail(name, e)
        finally:
            out.close()

    def _detect(self, w: _Work) -> None:
        dets = self.detector(w.frame.rgb)[: self.cfg.detect.max_hands]
        upd = self._tracker.update([d.landmarks_px for d in dets], [d.handedness for d in dets])
        w.detections, w.track_ids, w.ended = dets, upd.ids, upd.ended
        if dets and any(m in self.modalities for m in ("rgb", "depth", "cloud")):
            lms = [d.landmarks_px for d in dets]
            be, k = self.lifter.backend, w.frame.intrinsics
            cam = (k.fx, k.fy, k.cx, k.cy)
            w.images = hand_crops(w.frame.rgb, w.frame.depth, lms, self.modalities, be.image_size,
                                  self.cfg.detect.crop_margin, cam, be.cloud_points, be.crop_view)  # fmt: skip

    def _infer(self, w: _Work) -> None:
        if w.detections:
            lm = np.stack([d.landmarks_px for d in w.detections])
            left = np.array([d.handedness == "left" for d in w.detections])
            world = np.stack([d.world for d in w.detections]) if "world" in self.modalities else None
            w.lift = self.lifter(lm, left, w.frame.intrinsics, images=w.images, world=world,
                                 modalities=self.modalities)  # fmt: skip

    def _publish_stage(self) -> None:
        src = self._slots[2]
        try:
            while (w := src.get()) is not None:
                self._busy_since["publish"] = time.monotonic()
                self._emit(w)
                self._busy_since.pop("publish", None)
        except Exception as e:
            self._fail("publish", e)
        finally:
            self._display.close()

    def _fail(self, stage: str, e: Exception) -> None:
        """A stage died: stop the whole pipeline. Every hand-off is closed, so no other stage waits for it."""
        msg = f"{stage} stage failed: {type(e).__name__}: {e}"
        log.error(msg)
        self._errors.append(msg)
        self._stop.set()
        for slot in (*self._slots, self._display):
            slot.close()

    # ------------------------------------------------------------------ placement, smoothing, messages
    def _emit(self, w: _Work) -> None:
        t0 = time.perf_counter()
        f = w.frame
        sch = protocol.schema  # the messages' Structs (streamhand.schema)
        for tid in w.ended:
            self._smoother.end(tid)
        common = {"frame_id": int(f.index), "t_capture": float(f.t_capture), "t_capture_unix": float(f.t_capture_unix),
                  "camera": sch.camera(self.cfg.publish.camera_id or f.camera_id, f.intrinsics)}  # fmt: skip
        self._last_common = common
        hands, poses = [], []
        for i, d in enumerate(w.detections):
            assert w.lift is not None
            tid = w.track_ids[i]
            joints_cam, _root, root_src, s = place_hand(d.landmarks_px, w.lift.joints_norm[i], float(w.lift.scale[i]),
                                                      f.intrinsics, f.depth)  # fmt: skip
            joints_cam = self._smoother(tid, joints_cam, f.t_capture if f.t_media is None else f.t_media)
            rel = joints_cam - joints_cam[0]
            std = w.lift.joint_std[i] * (s / float(w.lift.scale[i]))
            poses.append((d, tid, joints_cam, rel, std, root_src))
            hands.append(sch.HandSummary(track_id=int(tid), handedness=d.handedness, score=float(d.score)))
        w.times["place"] = time.perf_counter() - t0
        lat = {k: 1000.0 * v for k, v in w.times.items()}
        pub = self.publisher
        for d, tid, joints_cam, rel, std, root_src in poses if pub is not None else ():
            topic = protocol.pose_topic(d.handedness)
            pose = sch.HandPoseMsg(
                topic=topic, **common, track_id=int(tid), handedness=d.handedness,
                handedness_score=float(d.handedness_score), score=float(d.score), layout=sch.LAYOUT, units=sch.UNITS,
                joints_cam=sch.floats(joints_cam), joints_rel=sch.floats(rel), joints_2d=sch.floats(d.landmarks_px),
                joint_std=sch.floats(std), root_source=root_src, modalities=list(self.modalities),
                model=self.lifter.backend.model_id,
                latency_ms={**lat, "total": 1000.0 * (time.monotonic() - f.t_capture)},
            )  # fmt: skip
            pub.publish(topic, sch.body(pose))  # the publisher adds topic, schema, seq and t_publish
        t_done = time.monotonic()
        lat["total"] = 1000.0 * (t_done - f.t_capture)
        if pub is not None:
            frame = sch.FrameMsg(topic=protocol.TOPIC_FRAME, **common, hands=hands, latency_ms=lat)
            pub.publish(protocol.TOPIC_FRAME, sch.body(frame))
        self.stats.add("place_publish", time.perf_counter() - t0)
        self.stats.add("end_to_end", t_done - f.t_capture)
        self.stats.count("hands", len(poses))
        self.stats.count("frames_with_hands", int(bool(poses)))
        self.frames_processed += 1
        if self._t_first is None:
            self._t_first = t_done
        self._t_last = t_done
        if f.truth is not None:
            self._truth.add(f.truth, [(p[0].landmarks_px, p[3]) for p in poses])
        if self.cfg.show:
            self._display.put((f, poses, lat))

    def _maybe_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.publisher is None or (not force and now - self._last_status < 1.0 / self.cfg.publish.status_hz):
            return
        self._last_status = now
        sch = protocol.schema
        common = self._last_common or {  # before the first frame: no frame, the camera not yet known
            "frame_id": -1, "t_capture": time.monotonic(), "t_capture_unix": time.time(),
            "camera": sch.Camera(id=self.cfg.publish.camera_id or self.source.name, width=0, height=0,
                                 fx=0.0, fy=0.0, cx=0.0, cy=0.0),
        }  # fmt: skip
        try:
            status = sch.from_fields(sch.StatusMsg, {"topic": protocol.TOPIC_STATUS, **common, **self.snapshot()})
        except ValueError as e:  # a snapshot that left the schema (tests/test_schema.py catches it first)
            log_every_n_seconds(log, logging.ERROR, "status not published: %s", e, n=60.0)
            return
        self.publisher.publish(protocol.TOPIC_STATUS, sch.body(status))

    # ------------------------------------------------------------------ running
    def run(self, on_tick: Callable[[dict], None] | None = None, tick_s: float = 0.5) -> dict:
        """Run until the source ends, ``frames`` are done, or :meth:`stop`; returns the report. ``on_tick`` gets a
        :meth:`snapshot` every ``tick_s`` seconds (a live status line)."""
        self._t_start = time.monotonic()
        last_tick = self._t_start
        s = self._slots
        stages = (
            ("capture", self._capture, ()),
            ("detect", self._stage, ("detect", s[0], s[1], self._detect)),
            ("infer", self._stage, ("infer", s[1], s[2], self._infer)),
            ("publish", self._publish_stage, ()),
        )
        for name, fn, args in stages:
            t = threading.Thread(target=fn, args=args, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        viewer = None
        if self.cfg.show:
            from streamhand.viewer import PreviewWindow

            viewer = PreviewWindow()
        try:
            while alive := [t for t in self._threads if t.is_alive()]:
                self._watchdog()
                self._maybe_status()  # on a timer: also while a lost camera delivers nothing
                if on_tick is not None and time.monotonic() - last_tick >= tick_s:
                    last_tick = time.monotonic()
                    on_tick(self.snapshot())
                if viewer is not None and not self._display.closed:
                    item = self._display.get(timeout=0.1)
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
            if viewer is not None:
                viewer.close()
        self._maybe_status(force=True)
        return self.report()

    @property
    def errors(self) -> list[str]:
        return list(self._errors)

    def report(self) -> dict:
        snap = self.snapshot()
        summ = self.stats.summary_ms()
        rep: dict[str, Any] = {
            "source": self.source.name, "frames_in": self.frames_in, "frames_processed": self.frames_processed,
            "fps": snap["fps"], "latency_ms": summ, "drops": snap["drops"],
            "corrupt_frames": snap["corrupt_frames"], "hands_published": snap["hands_published"],
            "frozen_episodes": self._guard.frozen_episodes, "resized_frames": self._guard.resized,
            "backend": snap["backend"], "backend_reason": snap["backend_reason"], "modalities": list(self.modalities),
            "detector": snap["detector"], "detector_reason": getattr(self.detector, "reason", ""),
            "tracking": self.tracking,
            "errors": self.errors, "stalls": self.stats.counters_snapshot().get("stalls", 0),
        }  # fmt: skip
        if self._truth.truth_hands:  # ground truth: the share of true hands that were found
            rep.update(self._truth.report())
        else:  # the share of processed frames with at least one hand
            with_hands = self.stats.counters_snapshot().get("frames_with_hands", 0)
            rep["detection_rate"] = with_hands / self.frames_processed if self.frames_processed else 0.0
        return rep


def write_report(path: str | Path, report: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=float))
    os.replace(tmp, p)


def mediapipe_alone(source: FrameSource, detector: Any, frames: int) -> dict:
    """MediaPipe by itself on the same frames, one after another (for the speed ratio)."""
    times = []
    source.open()
    try:
        for _ in range(frames):
            f = source.read()
            if f is None:
                break
            t0 = time.perf_counter()
            detector(f.rgb)
            times.append(time.perf_counter() - t0)
    finally:
        source.close()
    v = np.array(times) * 1000.0
    if not v.size:
        return {"frames": 0}
    return {"frames": int(v.size), "ms_per_frame_mean": float(v.mean()), "ms_per_frame_p50": float(np.median(v)),
            "fps": float(1000.0 / v.mean())}  # fmt: skip
