"""The message schema, in one place: topics, fields, msgpack encoding and validation.

Messages are ZeroMQ multipart ``[topic, msgpack map]``. Arrays are nested lists of floats, so any
msgpack library in any language decodes them. Imports only numpy and msgpack.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

SCHEMA = 1
LAYOUT = "mediapipe21"
UNITS = "m"
TOPIC_POSE = "hand.pose"  # + ".left" / ".right"
TOPIC_FRAME = "hand.frame"
TOPIC_STATUS = "status"
TOPIC_LOG = "log"  # + ".<level>"
DEFAULT_PUB_PORT = 5560
DEFAULT_CONTROL_PORT = 5561

#: fields every message carries
COMMON_FIELDS = ("topic", "schema", "seq", "frame_id", "t_capture", "t_capture_unix", "t_publish", "camera")
CAMERA_FIELDS = ("id", "width", "height", "fx", "fy", "cx", "cy")
#: fields of a hand.pose.* message, beyond the common ones
POSE_FIELDS = (
    "track_id", "handedness", "handedness_score", "score", "layout", "units", "joints_cam", "joints_rel",
    "joints_2d", "joint_std", "root_source", "modalities", "model", "latency_ms",
)  # fmt: skip
FRAME_FIELDS = ("hands", "latency_ms")
_SHAPES = {"joints_cam": (21, 3), "joints_rel": (21, 3), "joints_2d": (21, 2), "joint_std": (21,)}


def pose_topic(handedness: str) -> str:
    if handedness not in ("left", "right"):
        raise ValueError(f"handedness must be 'left' or 'right', got {handedness!r}")
    return f"{TOPIC_POSE}.{handedness}"


def log_topic(level: str) -> str:
    return f"{TOPIC_LOG}.{level.lower()}"


def to_wire(value: Any) -> Any:
    """numpy arrays/scalars -> lists/floats (recursively) for msgpack."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).round(6).tolist() if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def encode(topic: str, msg: dict) -> list[bytes]:
    return [topic.encode(), msgpack.packb(to_wire(msg), use_bin_type=True)]


#: the largest payload a subscriber accepts (ours are a few kilobytes); ZeroMQ drops bigger ones unread
MAX_MESSAGE_BYTES = 1 << 20
#: bounds on what msgpack may build from untrusted bytes
_UNPACK_LIMITS = {"max_str_len": 1 << 16, "max_bin_len": 1 << 20, "max_array_len": 10_000, "max_map_len": 1_000,
                  "max_ext_len": 0}  # fmt: skip


class MalformedMessage(ValueError):
    """Bytes that are not a streamhand message (wrong parts, not msgpack, too big, not a map)."""


def decode(parts: list[bytes]) -> tuple[str, dict]:
    """``[topic, msgpack map]`` -> (topic, map), bounded; anything else raises :class:`MalformedMessage`.
    Nothing is executed or unpickled: msgpack builds only plain values, within :data:`_UNPACK_LIMITS`."""
    if len(parts) != 2:
        raise MalformedMessage(f"expected [topic, payload], got {len(parts)} parts")
    if len(parts[1]) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"payload of {len(parts[1])} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        topic = bytes(parts[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("topic is not UTF-8") from None
    try:
        msg = msgpack.unpackb(parts[1], raw=False, strict_map_key=True, **_UNPACK_LIMITS)
    except Exception as e:  # msgpack raises several kinds (ExtraData, StackError, FormatError, ValueError...)
        raise MalformedMessage(f"payload is not msgpack ({type(e).__name__})") from None
    if not isinstance(msg, dict):
        raise MalformedMessage("payload is not a map")
    return topic, msg


def camera_block(camera_id: str, intrinsics: Any) -> dict:
    k = intrinsics
    return {"id": camera_id, "width": int(k.width), "height": int(k.height), "fx": float(k.fx),
            "fy": float(k.fy), "cx": float(k.cx), "cy": float(k.cy)}  # fmt: skip


def validate(topic: str, msg: dict) -> list[str]:
    """Problems with a message (empty when it follows the schema)."""
    problems = []
    need = list(COMMON_FIELDS)
    if topic.startswith(TOPIC_POSE + "."):
        need += POSE_FIELDS
    elif topic == TOPIC_FRAME:
        need += FRAME_FIELDS
    elif topic.startswith(TOPIC_LOG + "."):
        need = ["topic", "schema", "seq", "t_publish"]
    for f in need:
        if f not in msg:
            problems.append(f"missing {f}")
    if msg.get("topic") != topic:
        problems.append(f"topic field {str(msg.get('topic'))[:40]!r} != {topic[:40]!r}")
    if msg.get("schema") != SCHEMA:
        problems.append(f"schema {str(msg.get('schema'))[:20]} != {SCHEMA}")
    if "camera" in msg and isinstance(msg["camera"], dict):
        problems += [f"camera missing {f}" for f in CAMERA_FIELDS if f not in msg["camera"]]
    for f, shape in _SHAPES.items():
        if f in msg:
            try:
                arr = np.asarray(msg[f], dtype=np.float64)
            except (ValueError, TypeError, OverflowError):
                problems.append(f"{f} is not an array of numbers")
                continue
            if arr.shape != shape:
                problems.append(f"{f} has shape {arr.shape}, expected {shape}")
    if topic.startswith(TOPIC_POSE + "."):
        if msg.get("handedness") != topic.rsplit(".", 1)[-1]:
            problems.append("handedness does not match the topic")
        if msg.get("layout") != LAYOUT or msg.get("units") != UNITS:
            problems.append("layout/units differ from mediapipe21/m")
        if msg.get("root_source") not in ("depth", "estimate"):
            problems.append(f"root_source {str(msg.get('root_source'))[:20]!r}")
    return problems
