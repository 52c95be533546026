"""Files a run leaves behind besides its stream: the poses (``--save``: JSON lines, CSV or MCAP) and the overlay video
(``--save-video``).

The pose files are written from the publisher's own messages (a tap on :class:`~streamhand.stream.publish.Publisher`),
so a file holds exactly what a subscriber received; each is written under a temporary name and renamed when the
run has finished with it, so a file under the final name is complete.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from streamhand.capture.files import named_in_utf8
from streamhand.outputs import OutputUnfinished, cut_short, finish_part, part_path
from streamhand.stream import protocol

log = logging.getLogger(__name__)

#: ``--save`` suffix -> what it holds
POSE_FORMATS = {".jsonl": "one JSON map per hand.pose.* and hand.frame message", ".csv": "one row per hand",
                ".mcap": "every message, as `streamhand record` writes it"}  # fmt: skip
VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


def letterbox(img: Any, size: tuple[int, int]) -> Any:
    """``img`` scaled to fit ``size`` (width, height) with its aspect ratio kept, centred on black."""
    import cv2

    w, h = size
    s = min(w / img.shape[1], h / img.shape[0])
    nw, nh = max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


class SaveError(ValueError):
    """A ``--save`` / ``--save-video`` path that cannot be used; one line."""


def check_save_path(path: str, option: str, suffixes: dict) -> Path:
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise SaveError(f"{option} {path!r}: give a file ending in {', '.join(suffixes)}")
    return p


def csv_header() -> list[str]:
    cols = ["frame_id", "t_capture", "t_capture_unix", "track_id", "handedness", "handedness_score", "score",
            "root_source"]  # fmt: skip
    for name, dims in (("cam", "xyz"), ("rel", "xyz"), ("px", "uv")):
        cols += [f"{name}{j}_{d}" for j in range(21) for d in dims]
    return cols + [f"std{j}" for j in range(21)] + ["quality", "confidence"]


class PoseFile:
    """``--save``: a tap on the publisher that writes its pose (and frame) messages to a file."""

    def __init__(self, path: str | Path, source: str = ""):
        self.path = check_save_path(str(path), "--save", POSE_FORMATS)
        self.kind = self.path.suffix.lower()
        self.poses = 0
        self.closed = False
        self._rec = None
        self._file = None
        self._failure: OutputUnfinished | None = None  # the file could not take more: where what was written stays
        if self.kind == ".mcap":
            from streamhand.stream.recording import McapRecorder

            self._rec = McapRecorder(self.path, source=source, option="--save")
        else:
            self._tmp = part_path(self.path)
            self._file = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
            if self.kind == ".csv":
                self._csv = csv.writer(self._file)
                self._csv.writerow(csv_header())

    def __call__(self, topic: str, payload: bytes) -> None:
        """One published message (the publisher's tap); :class:`~streamhand.outputs.OutputUnfinished` where the file
        cannot take it (the disk full, a file-size limit), saying where what was written stays."""
        if self.closed:
            return
        is_pose = topic.startswith(protocol.TOPIC_POSE + ".")
        try:
            if self._rec is not None:  # every message with its own seq, as `streamhand record` writes it
                self._rec.write(topic, payload, msgpack.unpackb(payload, raw=False).get("seq", 0))
            elif is_pose or (self.kind == ".jsonl" and topic == protocol.TOPIC_FRAME):
                msg = msgpack.unpackb(payload, raw=False)
                if self.kind == ".jsonl":
                    self._file.write(json.dumps(msg, separators=(",", ":")) + "\n")
                else:
                    self._csv.writerow(_csv_row(msg))
        except (OSError, OutputUnfinished) as e:
            raise self._cut_short(e) from None
        self.poses += is_pose

    def _cut_short(self, e: OSError | OutputUnfinished) -> OutputUnfinished:
        """The file could not take more (the disk full, a file-size limit): closed as it is, under its part name (its
        last line may be cut short), and the error says where (the MCAP recorder's own error says it for it)."""
        self.closed = True
        if isinstance(e, OutputUnfinished):
            self._failure = e
            return e
        self._failure = cut_short(self._file, "--save", self.path, e, f"the {self.poses} hand poses written are in "
                                  f"{self._tmp}, its last line perhaps cut short")  # fmt: skip
        return self._failure

    def close(self) -> Path:
        """Finish the file under its name; where it was cut short, what :meth:`__call__` raised, again (the run
        stopped on it; the command ends saying it)."""
        if self._failure is not None:
            raise self._failure
        if not self.closed:
            try:
                if self._rec is not None:
                    self._rec.close()
                else:
                    self._file.close()
            except (OSError, OutputUnfinished) as e:  # the end of the file could not be written (the disk full)
                raise self._cut_short(e) from None
            self.closed = True
            if self._rec is None:
                finish_part(self._tmp, self.path, "--save")
            log.info("--save: %d hand poses written to %s", self.poses, self.path)
        return self.path


def _csv_row(m: dict) -> list[Any]:
    row = [m["frame_id"], m["t_capture"], m["t_capture_unix"], m["track_id"], m["handedness"], m["handedness_score"],
           m["score"], m["root_source"]]  # fmt: skip
    for key in ("joints_cam", "joints_rel", "joints_2d"):
        row += np.asarray(m[key], float).ravel().tolist()
    conf = m.get("confidence")
    return row + list(m["joint_std"]) + [m.get("quality", ""), "" if conf is None else conf]


class OverlayVideo:
    """``--save-video``: every processed frame with the overlay of ``--show``, at the source's frame rate. The frames
    are drawn and encoded on a thread of their own (a 1080p frame takes a 2-core CPU about 16 ms, a 4K one 60), behind
    a queue of :data:`QUEUE` frames that makes the run wait when full, so that no frame is left out; ``stats``: where
    each frame's drawing and encoding is timed (the run report's ``save_video``)."""

    #: frames waiting to be drawn and encoded before the run waits for the writer
    QUEUE = 8

    def __init__(self, path: str | Path, fps: float, stats: Any = None):
        self.path = check_save_path(str(path), "--save-video", VIDEO_SUFFIXES)
        self.fps = fps if fps and np.isfinite(fps) and fps > 0 else 30.0
        if not named_in_utf8(self.path.parent):  # OpenCV's writer crashes the process on such a path
            raise SaveError(f"--save-video {os.fsdecode(bytes(self.path))!r}: OpenCV cannot write into a folder whose "
                            "name is not valid UTF-8; write the video elsewhere")  # fmt: skip
        self._tmp = part_path(self.path)
        if not named_in_utf8(self._tmp):  # a name OpenCV cannot take is written under a plain one, then renamed
            self._tmp = self.path.with_name(f".save-video.{os.getpid()}.part{self.path.suffix}")
        self._writer = None
        self._stats = stats
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._told = False  # the error was raised to the run (which reports it): close() need not say it again
        self.frames = 0
        self.closed = False

    def write(self, frame: Any, poses: list, lat: dict) -> None:
        """Hand one processed frame to the writer (waits while :data:`QUEUE` frames are waiting); raises what stopped
        the writer, if anything did."""
        if self._error is not None:
            self._told = True
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="save-video", daemon=True)
            self._thread.start()
        self._queue.put((frame, list(poses), f"frame {frame.index}  {lat.get('total', 0):.1f} ms"))

    def flush(self) -> None:
        """Wait until every frame handed on is drawn and encoded; raises what stopped the writer, if anything did."""
        self._queue.join()
        if self._error is not None and not self._told:  # once: a write that raised it has failed the run already
            self._told = True
            raise self._error

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:  # after a failure the rest is let through, the run told at its next frame
                    t0, c0 = time.perf_counter(), time.thread_time()
                    self._encode(*item)
                    if self._stats is not None:
                        self._stats.add("save_video", time.perf_counter() - t0, time.thread_time() - c0)
            except BaseException as e:  # given to the run's thread, which reports it at its next frame
                self._error = e
            finally:
                self._queue.task_done()

    def _encode(self, frame: Any, poses: list, text: str) -> None:
        import cv2

        from streamhand.viz.viewer import overlay_image

        img = overlay_image(frame, poses, text)
        if self._writer is None:
            h, w = img.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[self.path.suffix.lower()])
            writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not writer.isOpened():  # nothing was written: nothing to finish at the end
                writer.release()
                self._tmp.unlink(missing_ok=True)
                raise SaveError(f"--save-video {self.path}: OpenCV could not start a {w}x{h} video there (its kind "
                                "not written by this OpenCV, or the memory or disk ran out)")  # fmt: skip
            self._writer, self._size = writer, (w, h)
        if img.shape[1::-1] != self._size:  # a source that changed size: the first size, the picture not stretched
            img = letterbox(img, self._size)
        self._writer.write(img)
        self.frames += 1

    def close(self) -> Path:
        """Wait for the frames still queued to be written, then finish the file under its name."""
        if not self.closed:
            self.closed = True
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
            if self._error is not None and not self._told:
                log.error("--save-video: %s", self._error)
            if self._writer is not None:
                self._writer.release()
                if not _whole_video(self._tmp, self.frames):  # OpenCV's writer says nothing of a write that failed
                    raise OutputUnfinished(f"--save-video {self.path}: the video could not be written to its end (the "
                                           "disk full, or a file-size limit reached); what was written is in "
                                           f"{self._tmp}")  # fmt: skip
                finish_part(self._tmp, self.path, "--save-video")
                log.info("--save-video: %d frames written to %s", self.frames, self.path)
            elif self._error is None:
                log.warning("--save-video: no frame was processed; %s not written", self.path)
        return self.path


def _whole_video(path: Path, frames: int) -> bool:
    """Whether the video at ``path`` holds ``frames`` frames to its last (a write cut short by a full disk leaves an
    MP4 without its index, or an AVI or MKV whose last frames are missing, with no error from OpenCV's writer)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened() or int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) < frames:
            return False
        cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
        return bool(cap.read()[0])
    finally:
        cap.release()
