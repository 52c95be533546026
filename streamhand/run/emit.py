"""The pipeline's last stage: each frame's hands placed in metres (perspective solve or depth), smoothed per
track, turned into ``hand.pose.*`` and ``hand.frame`` messages (:mod:`streamhand.stream.schema`) and published; plus the
``status`` message, scoring against ground truth where the source has it, and the counters the report reads."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from streamhand.run.handoff import Slot
from streamhand.run.place_step import PlacedHand, PlaceStep
from streamhand.run.stats import StageStats, log_every_n_seconds
from streamhand.run.temporal import StillJitter
from streamhand.run.truth_score import TruthScore
from streamhand.runtime_config import RunConfig
from streamhand.stream import protocol
from streamhand.stream import schema as sch

log = logging.getLogger(__name__)

#: the span over which ``status`` reports the frame rate (s), and the most frames kept to count it (10 000 frames/s)
RECENT_FPS_WINDOW_S = 2.0
RECENT_FRAMES_KEPT = 20_000


class Emitter:
    """Places, smooths and publishes the hands of processed frames, in order (one thread calls :meth:`emit`)."""

    def __init__(self, cfg: RunConfig, publisher: Any, stats: StageStats, modalities: tuple[str, ...],
                 model_id: str, camera_id: str, error_models: dict | None = None) -> None:  # fmt: skip
        self.cfg, self.publisher, self.stats = cfg, publisher, stats
        self.modalities, self.model_id, self.camera_id = modalities, model_id, camera_id
        self.place = PlaceStep(cfg.smooth, error_models, cfg.model.ray_pull)
        if cfg.publish.min_confidence > 0 and not error_models:
            log.warning("--min-confidence %.2f has no effect: model %s has no error model (no hand has a confidence)",
                        cfg.publish.min_confidence, model_id)  # fmt: skip
        self.truth = TruthScore()  # sources with ground truth (the demo): detection rate and 3D error
        self.still = StillJitter()  # every source: the wobble of hands that hold still
        #: called with (frame, poses, latency) of every processed frame, after it is published (``--save-video``,
        #: ``run --rerun``)
        self.frame_hooks: list[Any] = []
        #: called once the last frame has been emitted, before the run report: what works on beside the run finishes
        #: its frames (``--save-video``'s writer), so the report counts them
        self.end_hooks: list[Any] = []
        #: (frame, poses, latency) of each frame for the preview window, latest wins
        self.display: Slot = Slot(lossless=False)
        self.frames_processed = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        #: when the recent frames were published (for :meth:`recent_fps`), under its lock (read by other threads)
        self._done_times: deque[float] = deque(maxlen=RECENT_FRAMES_KEPT)
        self._done_lock = threading.Lock()
        #: the common fields of the latest processed frame, which ``status`` maps carry too
        self._last_common: dict | None = None
        self._last_status = 0.0

    def fps(self) -> float:
        """Frames processed per second, from the first frame's capture to the last one's publication (frames
        counted between two publications alone made two frames of a pipelined run 0.5 ms apart read as 2 000/s)."""
        span = (self.t_last - self.t_first) if self.t_first is not None and self.t_last is not None else 0.0
        return self.frames_processed / span if span > 0 else 0.0

    def recent_fps(self, now: float | None = None) -> float:
        """Frames published per second over the last :data:`RECENT_FPS_WINDOW_S` (the run's own rate until it has
        run that long): what ``status`` and the live line show, so that a camera lost for a while reads 0 then, and
        its rate when it is back, where the run's average moved slowly either way."""
        now = time.monotonic() if now is None else now
        if self.t_first is None or now - self.t_first < RECENT_FPS_WINDOW_S:
            return self.fps()
        n, since = 0, now - RECENT_FPS_WINDOW_S
        with self._done_lock:
            for t in reversed(self._done_times):  # newest first: the window's frames only
                if t <= since:
                    break
                n += 1
        return n / RECENT_FPS_WINDOW_S

    def emit(self, w: Any) -> None:
        """One processed frame (``w``: the pipeline's work item with detections, track ids and the lift)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        f = w.frame
        for tid in w.ended:
            self.place.end(tid)
            self.truth.end(tid)
            self.still.end(tid)
        common = {"frame_id": int(f.index), "t_capture": float(f.t_capture), "t_capture_unix": float(f.t_capture_unix),
                  "camera": sch.camera(self.cfg.publish.camera_id or f.camera_id, f.intrinsics)}  # fmt: skip
        self._last_common = common
        poses = self._gate(self.place(w))
        w.times["place"] = time.perf_counter() - t0
        lat = {k: 1000.0 * v for k, v in w.times.items()}
        if self.publisher is not None:
            self._publish(poses, common, lat, f.t_capture)
        t_done = time.monotonic()
        lat["total"] = 1000.0 * (t_done - f.t_capture)
        if self.publisher is not None:
            hands = [sch.HandSummary(track_id=int(p.track_id), handedness=p.detection.handedness,
                                     score=float(p.detection.score)) for p in poses]  # fmt: skip
            frame = sch.FrameMsg(topic=protocol.TOPIC_FRAME, **common, hands=hands, latency_ms=lat)
            self.publisher.publish(protocol.TOPIC_FRAME, sch.body(frame))
        self.stats.add("place_publish", time.perf_counter() - t0, time.thread_time() - c0)
        self.stats.add("end_to_end", t_done - f.t_capture)
        self.stats.count("hands", len(poses))
        self.stats.count("frames_with_hands", int(bool(poses)))
        self.frames_processed += 1
        self.t_first = f.t_capture if self.t_first is None else self.t_first
        self.t_last = t_done
        with self._done_lock:
            self._done_times.append(t_done)
        for p in poses:
            self.still.add(p.track_id, f.index, p.detection.landmarks_px, p.joints_cam)
        if f.truth is not None:
            self.truth.add(f.truth, poses, f.index, f.t_capture if f.t_media is None else f.t_media)
        for hook in self.frame_hooks:
            hook(f, poses, lat)
        if self.cfg.show:
            self.display.put((f, poses, lat))

    def _gate(self, poses: list[PlacedHand]) -> list[PlacedHand]:
        """``--min-confidence``: the hands below it withheld (counted) or flagged."""
        floor = self.cfg.publish.min_confidence
        if floor <= 0:
            return poses
        low = [p.confidence is not None and p.confidence < floor for p in poses]
        if self.cfg.publish.low_confidence == "flag":
            return [p._replace(low_confidence=True) if lo else p for p, lo in zip(poses, low)]
        self.stats.count("hands_withheld", sum(low))
        return [p for p, lo in zip(poses, low) if not lo]

    def _publish(self, poses: list[PlacedHand], common: dict, lat: dict, t_capture: float) -> None:
        for p in poses:
            d = p.detection
            topic = protocol.pose_topic(d.handedness)
            pose = sch.HandPoseMsg(
                topic=topic, **common, track_id=int(p.track_id), handedness=d.handedness,
                handedness_score=float(d.handedness_score), score=float(d.score), layout=sch.LAYOUT, units=sch.UNITS,
                joints_cam=sch.floats(p.joints_cam), joints_rel=sch.floats(p.joints_rel),
                joints_2d=sch.floats(d.landmarks_px), joint_std=sch.floats(p.joint_std), root_source=p.root_source,
                modalities=list(self.modalities), model=self.model_id,
                latency_ms={**lat, "total": 1000.0 * (time.monotonic() - t_capture)}, quality=p.quality,
                confidence=p.confidence, low_confidence=p.low_confidence,
            )  # fmt: skip
            self.publisher.publish(topic, sch.body(pose))  # the publisher adds topic, schema, seq and t_publish

    def status(self, snapshot: dict, force: bool = False) -> None:
        """Publish ``status`` (the run's live figures) at ``publish.status_hz``, or now with ``force``."""
        now = time.monotonic()
        if self.publisher is None or (not force and now - self._last_status < 1.0 / self.cfg.publish.status_hz):
            return
        self._last_status = now
        common = self._last_common or {  # before the first frame: no frame, the camera not yet known
            "frame_id": -1, "t_capture": time.monotonic(), "t_capture_unix": time.time(),
            "camera": sch.Camera(id=self.cfg.publish.camera_id or self.camera_id, width=0, height=0,
                                 fx=0.0, fy=0.0, cx=0.0, cy=0.0),
        }  # fmt: skip
        try:
            status = sch.from_fields(sch.StatusMsg, {"topic": protocol.TOPIC_STATUS, **common, **snapshot})
        except ValueError as e:  # a snapshot that left the schema (tests/test_schema.py catches it first)
            log_every_n_seconds(log, logging.ERROR, "status not published: %s", e, n=60.0)
            return
        self.publisher.publish(protocol.TOPIC_STATUS, sch.body(status))
