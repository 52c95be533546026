"""The transport of the messages: topics, ports, msgpack encoding, bounded decoding and validation.

Messages are ZeroMQ multipart ``[topic, msgpack map]``. What the maps hold (fields, types, units, array shapes,
the schema version) is defined once, in :mod:`streamhand.stream.schema` (msgspec Structs); the field lists and
:func:`validate` here are derived from it. Arrays are nested lists of floats, so any msgpack library in any
language decodes them. Imports only numpy, msgpack and msgspec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import msgspec
import numpy as np

from streamhand.stream import schema
from streamhand.stream.schema import DEFAULT_CONTROL_PORT as DEFAULT_CONTROL_PORT  # the schema's constants, here too
from streamhand.stream.schema import DEFAULT_PUB_PORT as DEFAULT_PUB_PORT
from streamhand.stream.schema import LAYOUT as LAYOUT
from streamhand.stream.schema import SCHEMA as SCHEMA
from streamhand.stream.schema import TOPIC_FRAME as TOPIC_FRAME
from streamhand.stream.schema import TOPIC_LOG as TOPIC_LOG
from streamhand.stream.schema import TOPIC_POSE as TOPIC_POSE
from streamhand.stream.schema import TOPIC_STATUS as TOPIC_STATUS
from streamhand.stream.schema import UNITS as UNITS

#: fields every message but ``log.*`` carries (the publisher's envelope and the frame's fields)
COMMON_FIELDS = schema.fields(schema.FrameFields)
CAMERA_FIELDS = schema.fields(schema.Camera)
#: fields of a hand.pose.* message, beyond the common ones
POSE_FIELDS = tuple(f for f in schema.fields(schema.HandPoseMsg) if f not in COMMON_FIELDS)
FRAME_FIELDS = tuple(f for f in schema.fields(schema.FrameMsg) if f not in COMMON_FIELDS)
STATUS_FIELDS = tuple(f for f in schema.fields(schema.StatusMsg) if f not in COMMON_FIELDS)
_SHAPES = schema.array_shapes(schema.HandPoseMsg)  # joints_cam (21, 3), joints_rel (21, 3), joints_2d (21, 2), ...


def struct_for(topic: str) -> type[msgspec.Struct] | None:
    """The :mod:`streamhand.stream.schema` Struct of a topic's messages (None for a topic that is not ours)."""
    if topic.startswith(TOPIC_POSE + "."):
        return schema.HandPoseMsg
    if topic == TOPIC_FRAME:
        return schema.FrameMsg
    if topic == TOPIC_STATUS:
        return schema.StatusMsg
    if topic.startswith(TOPIC_LOG + "."):
        return schema.LogMsg
    return None


def tcp_endpoint(host: str, port: int) -> str:
    """``tcp://HOST:PORT``, an IPv6 address in brackets (``tcp://[::1]:5560``)."""
    return f"tcp://[{host}]:{port}" if ":" in host and not host.startswith("[") else f"tcp://{host}:{port}"


#: the longest wait a subscriber's timeout or a command's --timeout / --duration takes (about 11 days): a longer one
#: is no wait the clock can hold
MAX_WAIT_S = 1e6


def is_ipv6(endpoint: str) -> bool:
    """Whether ``endpoint`` names an IPv6 address (``tcp://[::1]:5560``): ZeroMQ's sockets speak IPv4 only unless
    told (``zmq.IPV6``)."""
    return endpoint.startswith("tcp://[")


def out_of_range_port(endpoint: str) -> str | None:
    """Why ``endpoint`` cannot be connected to, where it is a TCP endpoint whose port lies outside 1-65535 (ZeroMQ
    connects to such a port without a word and waits for ever); None otherwise."""
    port = endpoint.rsplit(":", 1)[-1] if endpoint.startswith("tcp://") else ""
    return f"port {port} is out of range (1-65535)" if port.isdigit() and not 0 < int(port) < 65536 else None


def pose_topic(handedness: str) -> str:
    if handedness not in ("left", "right"):
        raise ValueError(f"handedness must be 'left' or 'right', got {handedness!r}")
    return f"{TOPIC_POSE}.{handedness}"


def log_topic(level: str) -> str:
    return f"{TOPIC_LOG}.{level.lower()}"


def to_wire(value: Any) -> Any:
    """numpy arrays/scalars -> lists/floats (recursively) for msgpack; float arrays rounded to 6 decimals."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).round(6).tolist() if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def _enc_hook(value: Any) -> Any:
    """What msgspec cannot write by itself: numpy arrays and scalars, as :func:`to_wire` converts them."""
    if isinstance(value, (np.ndarray, np.generic)):
        return to_wire(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a message")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


def encode(topic: str, msg: msgspec.Struct | Mapping[str, Any]) -> list[bytes]:
    """``[topic, msgpack map]`` of a :mod:`streamhand.stream.schema` Struct or a map (whose values may hold Structs
    and numpy arrays: arrays become nested lists of floats rounded to 6 decimals, as :func:`to_wire`)."""
    return [topic.encode(), _ENCODER.encode(msg)]


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
    """The ``camera`` map (:class:`streamhand.stream.schema.Camera`) as a dict."""
    return msgspec.structs.asdict(schema.camera(camera_id, intrinsics))


def parse(topic: str, msg: dict) -> tuple[msgspec.Struct | None, list[str]]:
    """A decoded map as its topic's Struct, with strict types: ``(struct, [])``, or ``(None, problems)`` when it
    does not follow the schema (``(None, [])`` for a well-formed map of a topic without a Struct)."""
    cls = struct_for(topic)
    problems = []
    if msg.get("schema") != SCHEMA:  # another version's message: the rest follows from it, so it comes first
        problems.append(f"schema {str(msg.get('schema'))[:20]} != {SCHEMA}")
    need = schema.required(cls) if cls is not None else COMMON_FIELDS
    for f in need:
        if f not in msg:
            problems.append(f"missing {f}")
    if msg.get("topic") != topic:
        problems.append(f"topic field {str(msg.get('topic'))[:40]!r} != {topic[:40]!r}")
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
    if problems or cls is None:
        return None, problems
    try:  # every field's type, nested maps and lengths included; unknown fields are ignored
        return msgspec.convert(msg, cls, strict=True), []
    except msgspec.ValidationError as e:
        return None, [str(e)[:200]]


def validate(topic: str, msg: dict) -> list[str]:
    """Problems with a message (empty when it follows the schema)."""
    return parse(topic, msg)[1]
