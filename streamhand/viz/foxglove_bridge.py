"""Foxglove: ``streamhand view --foxglove`` serves the pose stream live over Foxglove's WebSocket protocol
(foxglove-sdk's server), for the Foxglove app's 3D, Plot and Raw Messages panels. Owns the channel layout and the
conversion of our messages into Foxglove's:

* ``hands`` (``foxglove.SceneUpdate``) — one entity per hand, id ``hand/<track_id>``, in frame ``camera`` (the
  camera frame, OpenCV axes, metres): a sphere per joint whose diameter is twice its ``joint_std`` (at least
  :data:`MIN_RADIUS_M`), a line list of the bones and the palm, and a label ``<handedness> <track_id>``; a track that
  ``hand.frame`` no longer lists is deleted.
* ``camera_calibration`` (``foxglove.CameraCalibration``) — the messages' ``camera`` as K and P, frame ``camera``.
* ``tf`` (``foxglove.FrameTransform``) — frame ``camera`` in a z-up frame ``world`` (x forward, y left: the camera's
  z forward, x right, y down turned upright), so that the 3D panel shows hands the right way up in ``world``.
* ``hand.pose.left``, ``hand.pose.right``, ``hand.frame``, ``status`` and ``log.<level>`` — each message as JSON,
  with its JSON Schema (from :mod:`streamhand.stream.schema`, named ``streamhand.<Struct>``).

Message times are the capture's wall clock (``t_capture_unix``). foxglove-sdk is imported only when a server starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from streamhand.skeleton import BONES, PALM_LINES
from streamhand.stream import protocol
from streamhand.stream.schema import FrameMsg, HandPoseMsg, LogMsg, StatusMsg
from streamhand.viz import HAND_RGB
from streamhand.viz.sink import StreamSink

INSTALL = "pip install 'streamhand[viewers]'"
DEFAULT_PORT = 8765
FRAME_ID = "camera"
TOPIC_SCENE = "hands"
TOPIC_CALIBRATION = "camera_calibration"
TOPIC_TF = "tf"
WORLD_ID = "world"
#: the rotation of frame ``camera`` (OpenCV: x right, y down, z forward) in ``world`` (x forward, y left, z up)
CAMERA_IN_WORLD = (-0.5, 0.5, -0.5, 0.5)  # quaternion x, y, z, w
#: the smallest sphere radius drawn (a joint_std of 0 would be invisible)
MIN_RADIUS_M = 0.002
#: RGBA per hand, 0..1
COLORS = {hand: (*(c / 255 for c in rgb), 1.0) for hand, rgb in HAND_RGB.items()}
_LINES = tuple(BONES) + tuple(PALM_LINES)
_STRUCTS = {"hand.pose.left": HandPoseMsg, "hand.pose.right": HandPoseMsg, protocol.TOPIC_FRAME: FrameMsg,
            protocol.TOPIC_STATUS: StatusMsg}  # fmt: skip


class FoxgloveError(Exception):
    """Something the user can fix (no SDK, a busy port); ``str(e)`` is one line."""


def import_foxglove() -> Any:
    try:
        import foxglove
    except ImportError:
        raise FoxgloveError(f"--foxglove needs the Foxglove SDK (foxglove-sdk): {INSTALL}") from None
    try:
        import foxglove.channels
        import foxglove.messages  # foxglove-sdk 0.30's name for the well-known message types
    except ImportError:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            version = installed("foxglove-sdk")
        except PackageNotFoundError:
            version = "?"
        raise FoxgloveError(f"--foxglove: foxglove-sdk {version} is too old; {INSTALL} --upgrade") from None
    return foxglove


def _inline(node: Any, defs: dict) -> Any:
    """A JSON Schema with every ``#/$defs/...`` reference replaced by its definition (ours have no cycles)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def json_schema(cls: type[msgspec.Struct]) -> dict:
    """``cls``'s JSON Schema, self-contained, titled ``streamhand.<name>`` (the name Foxglove shows)."""
    s = msgspec.json.schema(cls)
    out = _inline(s, s.get("$defs", {}))
    out["title"] = f"streamhand.{cls.__name__}"
    return out


class FoxgloveBridge(StreamSink):
    """A Foxglove WebSocket server on ``host:port`` with our channels; :meth:`message` logs one stream message."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        super().__init__()
        fg = import_foxglove()
        self.fg, self.m = fg, fg.messages
        self.ctx = fg.Context()
        try:
            self.server = fg.start_server(name="streamhand", host=host, port=port, context=self.ctx)
        except RuntimeError as e:
            if "in use" in str(e).lower():
                raise FoxgloveError(f"port {port} on {host} is in use; choose another with --port") from None
            raise FoxgloveError(f"--port {port}: the Foxglove server cannot start ({e})") from None
        self.host, self.port = host, int(self.server.port)
        self.scene = fg.channels.SceneUpdateChannel(TOPIC_SCENE, context=self.ctx)
        self.calibration = fg.channels.CameraCalibrationChannel(TOPIC_CALIBRATION, context=self.ctx)
        self.tf = fg.channels.FrameTransformChannel(TOPIC_TF, context=self.ctx)
        self.json: dict[str, Any] = {t: self._json_channel(t, cls) for t, cls in _STRUCTS.items()}
        self._shown: set[int] = set()
        self.poses = 0

    def _json_channel(self, topic: str, cls: type[msgspec.Struct]) -> Any:
        return self.fg.Channel(topic, schema=json_schema(cls), message_encoding="json", context=self.ctx)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _show(self, topic: str, data: dict, msg: Any) -> None:
        """One stream message (:meth:`StreamSink.message` calls it): as JSON on its topic, and a pose or a frame in the
        scene."""
        t = getattr(msg, "t_capture_unix", None)
        log_time = int(t * 1e9) if t is not None and t > 0 else None
        channel = self.json.get(topic)
        if channel is None and isinstance(msg, LogMsg):
            channel = self.json[topic] = self._json_channel(topic, LogMsg)
        if channel is not None:
            channel.log(msgspec.json.encode(data), log_time=log_time)
        if isinstance(msg, HandPoseMsg):
            self.scene.log(self.m.SceneUpdate(entities=[self._entity(msg)]), log_time=log_time)
            self._shown.add(msg.track_id)
            self.poses += 1
        elif isinstance(msg, FrameMsg):
            self._frame(msg, log_time)

    def _timestamp(self, t_unix: float) -> Any:
        return self.fg.messages.Timestamp.from_epoch_secs(max(float(t_unix), 0.0))

    def _entity(self, p: HandPoseMsg) -> Any:
        m = self.m
        r, g, b, a = COLORS[p.handedness]
        color = m.Color(r=r, g=g, b=b, a=a)
        joints = np.asarray(p.joints_cam, float)
        std = np.maximum(np.asarray(p.joint_std, float), MIN_RADIUS_M)
        identity = m.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)

        def pose(x: np.ndarray) -> Any:
            return m.Pose(position=m.Vector3(x=float(x[0]), y=float(x[1]), z=float(x[2])), orientation=identity)

        spheres = [m.SpherePrimitive(pose=pose(x), size=m.Vector3(x=2 * s, y=2 * s, z=2 * s), color=color)
                   for x, s in zip(joints, std.tolist(), strict=True)]  # fmt: skip
        points = [m.Point3(x=float(joints[i, 0]), y=float(joints[i, 1]), z=float(joints[i, 2]))
                  for pair in _LINES for i in pair]  # fmt: skip
        lines = [m.LinePrimitive(type=m.LinePrimitiveLineType.LineList, thickness=2.0, scale_invariant=True,
                                 points=points, color=color)]  # fmt: skip
        label = m.TextPrimitive(pose=pose(joints[0] + [0.0, 0.02, 0.0]), billboard=True, font_size=14.0,
                                scale_invariant=True, color=color, text=f"{p.handedness} {p.track_id}")  # fmt: skip
        meta = [
            m.KeyValuePair(key=k, value=v)
            for k, v in (("handedness", p.handedness), ("track_id", str(p.track_id)), ("root_source", p.root_source))
        ]
        return m.SceneEntity(timestamp=self._timestamp(p.t_capture_unix), frame_id=FRAME_ID, id=f"hand/{p.track_id}",
                             metadata=meta, spheres=spheres, lines=lines, texts=[label])  # fmt: skip

    def _frame(self, f: FrameMsg, log_time: int | None) -> None:
        m, ts = self.m, self._timestamp(f.t_capture_unix)
        gone = self._shown - {h.track_id for h in f.hands}
        if gone:
            self.scene.log(m.SceneUpdate(deletions=[m.SceneEntityDeletion(timestamp=ts, id=f"hand/{tid}")
                                                    for tid in sorted(gone)]), log_time=log_time)  # fmt: skip
            self._shown -= gone
        c = f.camera
        if c.width > 0 and c.height > 0:
            k = [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]
            p = [c.fx, 0.0, c.cx, 0.0, 0.0, c.fy, c.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
            cal = m.CameraCalibration(timestamp=ts, frame_id=FRAME_ID, width=c.width, height=c.height,
                                      distortion_model="plumb_bob", D=[0.0] * 5, K=k,
                                      R=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], P=p)  # fmt: skip
            self.calibration.log(cal, log_time=log_time)
        x, y, z, w = CAMERA_IN_WORLD
        turn, origin = m.Quaternion(x=x, y=y, z=z, w=w), m.Vector3(x=0.0, y=0.0, z=0.0)
        tf = m.FrameTransform(timestamp=ts, parent_frame_id=WORLD_ID, child_frame_id=FRAME_ID, translation=origin,
                              rotation=turn)  # fmt: skip
        self.tf.log(tf, log_time=log_time)  # with every frame: a client that joins later gets it too

    def close(self) -> None:
        if self._closing():
            self.server.stop()


def view(sub: Any, port: int | None, count: int | None, stop: threading.Event, say: Callable[[str], None]) -> int:
    """``streamhand view --foxglove``: serve the stream until ``stop`` or ``count`` pose messages; the pose messages
    served. :class:`FoxgloveError` before anything is served if the server cannot start."""
    from streamhand.viz.rerun_log import follow

    bridge = FoxgloveBridge(port or DEFAULT_PORT)
    say(f"serving the stream on {sub.address} to Foxglove at {bridge.url} (in Foxglove: Open connection, Foxglove "
        "WebSocket; Ctrl-C stops)")  # fmt: skip
    try:
        follow(sub, bridge.message, count, stop)
    finally:
        bridge.close()
    say(f"served {bridge.poses} hand poses")
    return bridge.poses
