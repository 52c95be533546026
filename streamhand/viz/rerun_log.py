"""Rerun: what the pose stream looks like as a Rerun recording, and where it goes. Owns ``streamhand view --rerun``
(the stream's messages, from a subscriber) and ``streamhand run --rerun`` (the same messages from the publisher's
tap, plus each processed frame's image).

The camera frame is the 3D world (OpenCV axes, ``rr.ViewCoordinates.RDF`` at the root). Entities:

* ``camera`` — a ``Pinhole`` from the messages' ``camera`` (fx, fy, cx, cy, width, height): the 2D image space.
* ``camera/rgb`` — the processed frame as JPEG (``run --rerun`` only: the stream itself carries no images).
* ``camera/hands/<track_id>/landmarks`` and ``.../bones`` — ``joints_2d`` (pixels) as points and line strips.
* ``hands/<track_id>/joints`` — ``joints_cam`` (metres) as 3D points whose radius is ``joint_std``
  (at least :data:`MIN_RADIUS_M`); ``hands/<track_id>/bones`` — the five finger chains from the wrist and the
  palm across the knuckles, labelled ``<handedness> <track_id>``. A track that leaves (``hand.frame`` no longer
  lists it) is cleared.
* ``metrics/latency_ms`` (``hand.frame``'s ``latency_ms.total``), ``metrics/fps`` (``status``), and
  ``metrics/joint_std_mm/<track_id>`` (the hand's mean ``joint_std``, millimetres: its quality).
* ``log`` — ``log.<level>`` messages as text.

Timelines: ``frame`` (``frame_id``), ``capture`` (``t_capture``, seconds of the publisher's monotonic clock) and
``capture_time`` (``t_capture_unix``, wall clock). The Rerun SDK is imported only when a recording is opened.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamhand.outputs import finish_part, part_path
from streamhand.skeleton import FINGER_CHAINS
from streamhand.stream import protocol
from streamhand.stream.schema import FrameFields, FrameMsg, HandPoseMsg, LogMsg, StatusMsg
from streamhand.viz import HAND_RGB
from streamhand.viz.sink import StreamSink

log = logging.getLogger(__name__)

INSTALL = "pip install 'streamhand[viewers]'"
#: the port a Rerun viewer listens on unless told otherwise (the SDK's default)
DEFAULT_VIEWER_PORT = 9876
#: ``run --rerun spawn``: a viewer rather than a file
SPAWN = "spawn"
#: the smallest point radius drawn (a joint_std of 0, e.g. from an uncalibrated model, would be invisible)
MIN_RADIUS_M = 0.002
#: what a viewer subscribes to
TOPICS = (protocol.TOPIC_POSE, protocol.TOPIC_FRAME, protocol.TOPIC_STATUS, protocol.TOPIC_LOG + ".")
COLORS = HAND_RGB
#: the drawn lines: each finger from the wrist to its tip, then the palm across the knuckles
STRIPS: tuple[tuple[int, ...], ...] = (*((0, *chain) for chain in FINGER_CHAINS), (5, 9, 13, 17))
_LEVELS = {"warning": "WARN", "critical": "CRITICAL", "error": "ERROR", "info": "INFO", "debug": "DEBUG"}


class RerunError(Exception):
    """Something the user can fix (no SDK, a bad file name, no viewer); ``str(e)`` is one line."""


def import_rerun(option: str) -> Any:
    """The Rerun SDK, or :class:`RerunError` saying how to install it."""
    try:
        import rerun as rr
    except ImportError:
        raise RerunError(f"{option} needs the Rerun SDK (rerun-sdk): {INSTALL}") from None
    if not hasattr(rr, "Scalars"):  # rr.Scalars and set_time(sequence=...) arrived in 0.23
        raise RerunError(f"{option}: rerun-sdk {getattr(rr, '__version__', '?')} is too old; {INSTALL} --upgrade")
    return rr


def check_rrd(path: str | Path, option: str) -> Path:
    """A path a recording can be written to: ``.rrd``, in a folder that takes files; else :class:`RerunError`."""
    from streamhand.outputs import OutputError, check_output

    p = Path(path)
    if p.suffix.lower() != ".rrd":
        raise RerunError(f"{option} {str(path)!r}: a Rerun recording is a .rrd file; give e.g. hands.rrd")
    try:
        check_output(p, option)
    except OutputError as e:
        raise RerunError(str(e)) from None
    return p


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _no_display() -> str:
    """Why no viewer window can open here ('' where one may)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "DISPLAY is not set"
    return ""


def check_target(save: str | Path | None, port: int, option: str) -> None:
    """Before any work: the SDK is installed, and ``save`` can be written, or (no ``save``) a viewer listens on
    ``port`` or could be started there; else :class:`RerunError`."""
    import_rerun(option)
    if save is not None:
        check_rrd(save, option)
        return
    why = _no_display()
    if why and not _listening(port):
        raise RerunError(f"{option}: no Rerun viewer listens on 127.0.0.1:{port} and none can be started ({why}); "
                         "write a recording instead (a FILE.rrd) and open it with `rerun FILE.rrd`, or start "
                         f"`rerun --port {port}` first")  # fmt: skip


def _executable() -> str | None:
    """The ``rerun`` program: the one the SDK's wheel ships (also where the venv is not activated), else PATH's."""
    spec = importlib.util.find_spec("rerun_cli")
    if spec is not None and spec.submodule_search_locations:
        exe = Path(next(iter(spec.submodule_search_locations))) / ("rerun.exe" if sys.platform == "win32" else "rerun")
        if exe.is_file():
            return str(exe)
    return shutil.which("rerun")


def _spawn(port: int, option: str, settle_s: float = 2.0, timeout_s: float = 20.0) -> None:
    """Start a Rerun viewer on ``port``, detached, its output in a log file; :class:`RerunError` (one line, with the
    viewer's own reason) if it exits or does not listen. It listens before it opens its window, so it must still be
    running ``settle_s`` after it listens."""
    import subprocess
    import time

    from streamhand.cache import cache_dir

    exe = _executable()
    if exe is None:
        raise RerunError(f"{option}: the `rerun` program (part of rerun-sdk) is not found; {INSTALL}")
    logs = cache_dir("logs")
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"rerun-viewer-{port}.log"
    args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--memory-limit", "75%", "--hide-welcome-screen",
            "--expect-data-soon"]  # fmt: skip
    # its own session (POSIX) or process group (Windows, where start_new_session means nothing): the Ctrl-C that
    # stops streamhand does not close the viewer the user is looking at
    windows = sys.platform == "win32"
    own_group = {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)} if windows else {}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                env={**os.environ, "RERUN_APP_ONLY": "true"}, **own_group)  # fmt: skip
    t_end, t_listening = time.monotonic() + timeout_s, None
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            text = log_path.read_text(errors="replace").splitlines()
            why = next((ln.split("Error:", 1)[1].strip() for ln in reversed(text) if "Error:" in ln), "")
            why = why.rsplit(": ", 1)[-1] if why else f"exit {proc.returncode}"
            raise RerunError(f"{option}: the Rerun viewer did not start ({why[:200]}); write a recording (a "
                             f"FILE.rrd) instead and open it with `rerun FILE.rrd` (its log: {log_path})")  # fmt: skip
        if t_listening is None and _listening(port):
            t_listening = time.monotonic()
        if t_listening is not None and time.monotonic() - t_listening >= settle_s:
            return
        time.sleep(0.1)
    proc.kill()
    raise RerunError(f"{option}: the Rerun viewer did not listen on port {port} within {timeout_s:.0f} s "
                     f"(its log: {log_path})")  # fmt: skip


def _blueprint() -> Any:
    """The layout: the 3D view, the image, and the three time series."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(origin="/", contents=["+ /hands/**", "+ /camera/**"], name="3D (camera frame)"),
            rrb.Spatial2DView(origin="/camera", name="image"),
            rrb.Vertical(
                rrb.TimeSeriesView(origin="/metrics/latency_ms", name="latency (ms)"),
                rrb.TimeSeriesView(origin="/metrics/fps", name="fps"),
                rrb.TimeSeriesView(origin="/metrics/joint_std_mm", name="mean joint_std (mm)"),
            ),
            column_shares=[2, 2, 1],
        ),
        collapse_panels=True,
    )


class RerunLog(StreamSink):
    """One Rerun recording fed with stream messages (:meth:`message`, or :meth:`tap` for raw payloads) and frames
    (:meth:`frame`); thread-safe. Open with :meth:`open`, finish with :meth:`close` (a file is renamed into place
    then, so a file under its final name is complete)."""

    def __init__(self, rr: Any, rec: Any, where: str, part: Path | None = None, final: Path | None = None,
                 option: str = "--rerun") -> None:  # fmt: skip
        super().__init__()
        self.rr, self.rec, self.where, self.option = rr, rec, where, option
        self._part, self._final = part, final
        self._camera: tuple | None = None
        self._shown: set[int] = set()
        self.poses = 0
        self.frames = 0
        self.images = 0

    @classmethod
    def open(cls, save: str | Path | None = None, port: int = DEFAULT_VIEWER_PORT, option: str = "--rerun",
             app_id: str = "streamhand") -> RerunLog:  # fmt: skip
        """A recording written to ``save`` (.rrd), or sent to the viewer on ``port`` (one that listens there,
        else one spawned); :class:`RerunError` if neither can be."""
        check_target(save, port, option)
        rr = import_rerun(option)
        rec = rr.RecordingStream(app_id)
        bp = _blueprint()
        if save is not None:
            final = Path(save)
            part = part_path(final)
            rec.save(part, default_blueprint=bp)
            out = cls(rr, rec, str(final), part, final, option)
        else:
            spawned = not _listening(port)
            if spawned:
                _spawn(port, option)
            url = f"rerun+http://127.0.0.1:{port}/proxy"
            rec.connect_grpc(url, default_blueprint=bp)
            out = cls(rr, rec, f"the Rerun viewer {'started ' if spawned else ''}at {url}")
        rec.log("/", rr.ViewCoordinates.RDF, static=True)  # the camera frame: x right, y down, z forward
        return out

    # ------------------------------------------------------------------------------------------- messages
    def tap(self, topic: str, payload: bytes) -> None:
        """A publisher tap (``run --rerun``): one published message's msgpack payload."""
        try:
            topic, data = protocol.decode([topic.encode(), payload])
        except protocol.MalformedMessage:
            return
        self.message(topic, data)

    def _show(self, topic: str, data: dict, msg: Any) -> None:
        """One stream message (:meth:`StreamSink.message` calls it), by its kind."""
        if isinstance(msg, HandPoseMsg):
            self._pose(msg)
        elif isinstance(msg, FrameMsg):
            self._frame(msg)
        elif isinstance(msg, StatusMsg):
            self._status(msg)
        elif isinstance(msg, LogMsg):
            self.rec.reset_time()
            self.rec.log("log", self.rr.TextLog(f"{msg.logger}: {msg.message}",
                                                level=_LEVELS.get(msg.level, msg.level.upper())))  # fmt: skip

    def _at(self, frame_id: int, t_capture: float, t_capture_unix: float) -> None:
        rec = self.rec
        rec.reset_time()
        rec.set_time("frame", sequence=int(frame_id))
        rec.set_time("capture", duration=float(t_capture))
        rec.set_time("capture_time", timestamp=float(t_capture_unix))

    def _camera_of(self, msg: FrameFields) -> None:
        c = msg.camera
        key = (c.width, c.height, c.fx, c.fy, c.cx, c.cy)
        if c.width <= 0 or c.height <= 0 or key == self._camera:
            return
        self._camera = key
        pinhole = self.rr.Pinhole(focal_length=[c.fx, c.fy], principal_point=[c.cx, c.cy], width=c.width,
                                  height=c.height, camera_xyz=self.rr.ViewCoordinates.RDF)  # fmt: skip
        self.rec.log("camera", pinhole)  # at this frame's time: pictures of other sizes each keep their own

    def _pose(self, m: HandPoseMsg) -> None:
        rr, rec = self.rr, self.rec
        self._camera_of(m)
        self._at(m.frame_id, m.t_capture, m.t_capture_unix)
        tid, color, label = m.track_id, COLORS[m.handedness], f"{m.handedness} {m.track_id}"
        joints = np.asarray(m.joints_cam, np.float32)
        uv = np.asarray(m.joints_2d, np.float32)
        std = np.asarray(m.joint_std, np.float32)
        rec.log(f"hands/{tid}/joints", rr.Points3D(joints, radii=np.maximum(std, MIN_RADIUS_M), colors=color))
        rec.log(f"hands/{tid}/bones", rr.LineStrips3D([joints[list(s)] for s in STRIPS], colors=color, labels=[label]))
        rec.log(f"camera/hands/{tid}/landmarks", rr.Points2D(uv, colors=color))
        rec.log(f"camera/hands/{tid}/bones", rr.LineStrips2D([uv[list(s)] for s in STRIPS], colors=color,
                                                             labels=[label]))  # fmt: skip
        rec.log(f"metrics/joint_std_mm/{tid}", rr.Scalars(1000.0 * float(std.mean())))
        self._shown.add(tid)
        self.poses += 1

    def _frame(self, m: FrameMsg) -> None:
        self._camera_of(m)
        self._at(m.frame_id, m.t_capture, m.t_capture_unix)
        gone = self._shown - {h.track_id for h in m.hands}
        for tid in sorted(gone):  # the track left: its skeleton goes, not stays at its last place
            self.rec.log(f"hands/{tid}", self.rr.Clear(recursive=True))
            self.rec.log(f"camera/hands/{tid}", self.rr.Clear(recursive=True))
        self._shown -= gone
        if "total" in m.latency_ms:
            self.rec.log("metrics/latency_ms", self.rr.Scalars(float(m.latency_ms["total"])))
        self.frames += 1

    def _status(self, m: StatusMsg) -> None:
        if m.frame_id < 0:  # before the first frame: no frame to place it at
            return
        self._at(m.frame_id, m.t_capture, m.t_capture_unix)
        self.rec.log("metrics/fps", self.rr.Scalars(float(m.fps)))

    # ------------------------------------------------------------------------------------------- frames
    def frame(self, frame: Any, poses: list, lat: dict) -> None:
        """One processed frame (the emitter's frame hook, ``run --rerun``): its image, JPEG, at ``camera/rgb``."""
        import cv2

        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return
        with self._lock:
            if self.closed:
                return
            self._at(frame.index, frame.t_capture, frame.t_capture_unix)
            self.rec.log("camera/rgb", self.rr.EncodedImage(contents=buf.tobytes(), media_type="image/jpeg"))
            self.images += 1

    def close(self) -> None:
        """Flush and finish: a file is complete (and renamed into place) when this returns."""
        if not self._closing():
            return
        try:
            try:
                self.rec.flush(timeout_sec=10.0)
            except TypeError:  # rerun-sdk before 0.24 (what resolves beside numpy 1.x): no timeout argument
                self.rec.flush(blocking=True)
        except Exception as e:  # a viewer that went away: what it missed is lost, nothing else
            log.warning("rerun: %s", e)
        self.rec.disconnect()
        if self._part is not None and self._final is not None and self._part.exists():
            if self.empty:  # nothing logged: no recording (a file of that name is left as it was)
                self._part.unlink()
                log.info("rerun: nothing was logged, so %s was not written", self._final)
            else:
                finish_part(self._part, self._final, self.option)

    @property
    def empty(self) -> bool:
        """Nothing was logged (no pose, frame or image)."""
        return not (self.poses or self.frames or self.images)

    def summary(self) -> str:
        return f"{self.poses} hand poses, {self.frames} frames" + (f", {self.images} images" if self.images else "")


def follow(sub: Any, handle: Callable[[str, dict], bool], count: int | None, stop: threading.Event) -> int:
    """Feed ``handle`` every message of the raw subscriber ``sub`` (whose short timeout keeps ``stop`` checked)
    until ``stop`` is set or ``count`` pose messages were handled; the number of pose messages handled."""
    n = 0
    while not stop.is_set() and (count is None or n < count):
        try:
            m = sub.recv()
        except TimeoutError:
            continue
        if handle(m.topic, m.data) and m.topic.startswith(protocol.TOPIC_POSE + "."):
            n += 1
    return n


def view(sub: Any, save: str | Path | None, port: int | None, count: int | None, stop: threading.Event,
         say: Callable[[str], None]) -> int:  # fmt: skip
    """``streamhand view --rerun``: the stream into a recording (``save``) or a viewer; the pose messages logged.
    :class:`RerunError` before anything is logged if the recording cannot be made."""
    out = RerunLog.open(save, port or DEFAULT_VIEWER_PORT, "--save" if save is not None else "--rerun")
    say(f"logging the stream on {sub.address} to {out.where} (Ctrl-C stops)")
    try:
        follow(sub, out.message, count, stop)
    finally:
        out.close()
    if save is not None and out.empty:
        say(f"nothing arrived from {sub.address}, so no recording was written")
        return 0
    say(f"logged {out.summary()} to {out.where}")
    return out.poses
