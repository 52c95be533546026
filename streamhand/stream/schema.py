"""The typed schema of every streamhand message: one msgspec Struct per topic, each field with its type, unit
and a one-line description.

This module owns the messages' *content*: field names, types, fixed array shapes, units, the schema version
(:data:`SCHEMA`) and the constants ``layout`` / ``units`` carry. Everything else is derived from it:
:mod:`streamhand.stream.protocol` (the transport: topics, ports, bounded msgpack encode/decode) takes its field lists
and its validation from these Structs, :class:`streamhand.run.pipeline.Pipeline` builds them, the typed client
(:mod:`streamhand.stream.client`) reads into them, and the reference docs are generated from them::

    python -m streamhand.stream.schema --markdown docs/protocol_fields.md --json-schema docs/streamhand.schema.json
    python -m streamhand.stream.schema --check   # exit 1, naming the stale file, when the docs differ from the code

On the wire every message is a plain msgpack map with these field names (any msgpack library decodes it);
arrays are nested lists of floats, rounded to 6 decimals (:func:`floats`). Imports only msgspec and numpy.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import numpy as np
from msgspec import Meta, Struct

TOPIC_POSE = "hand.pose"  # + ".left" / ".right"
TOPIC_FRAME = "hand.frame"
TOPIC_STATUS = "status"
TOPIC_LOG = "log"  # + ".<level>"
DEFAULT_PUB_PORT = 5560
DEFAULT_CONTROL_PORT = 5561
#: the schema version every message carries in ``schema`` (re-exported as ``streamhand.stream.protocol.SCHEMA``)
SCHEMA = 1
#: joint order of every array of joints (``layout``)
LAYOUT = "mediapipe21"
#: unit of every 3D field (``units``)
UNITS = "m"
N_JOINTS = 21
#: decimals kept in every float array on the wire
DECIMALS = 6

# --------------------------------------------------------------------------------------------- field types
_XYZ = Annotated[list[float], Meta(min_length=3, max_length=3)]
_UV = Annotated[list[float], Meta(min_length=2, max_length=2)]
#: (21, 3) nested lists
Joints3D = Annotated[list[_XYZ], Meta(min_length=N_JOINTS, max_length=N_JOINTS)]
#: (21, 2) nested lists
Joints2D = Annotated[list[_UV], Meta(min_length=N_JOINTS, max_length=N_JOINTS)]
#: (21,) list
PerJoint = Annotated[list[float], Meta(min_length=N_JOINTS, max_length=N_JOINTS)]
Handedness = Literal["left", "right"]
S = TypeVar("S", bound=Struct)


def _doc(text: str) -> Meta:
    return Meta(description=text)


# --------------------------------------------------------------------------------------------- messages
class Camera(Struct, kw_only=True):
    """The camera of the frame: its id and pinhole intrinsics (pixels)."""

    # a name; numbers are accepted too, as the validation before this schema did (it checked only presence)
    id: Annotated[str | int, _doc(
        "camera id: `--camera-id`, else the source's: `camera:0`, `video:NAME`, `images:FOLDER`, `realsense:SERIAL`, "
        "`demo` (one per source: tells cameras apart); streamhand always sends a string (`--camera-id 7`: `\"7\"`), "
        "a number from another sender is accepted")]  # fmt: skip
    width: Annotated[int, _doc("image width, pixels (on a status before the first frame 0, as are the other fields "
                               "but `id`)")]
    height: Annotated[int, _doc("image height, pixels")]
    fx: Annotated[float, _doc("focal length along x, pixels")]
    fy: Annotated[float, _doc("focal length along y, pixels")]
    cx: Annotated[float, _doc("principal point x, pixels")]
    cy: Annotated[float, _doc("principal point y, pixels")]


_SCORE_DOC = (
    "the detector's confidence that this is a hand, 0..1: the landmark network's presence score (with either "
    "detector; a hand under `min_tracking_confidence`, 0.5 by default, is not published)"
)


class Envelope(Struct, kw_only=True):
    """What every message carries, set by the publisher: topic, version, counter, send time."""

    topic: Annotated[str, _doc("the topic this map was published on, again")]
    schema: Annotated[int, _doc(f"schema version ({SCHEMA})")] = SCHEMA
    seq: Annotated[int, _doc("per topic and publisher, counting up by one from 0: a gap means missed messages")] = -1
    t_publish: Annotated[float, _doc("seconds, the publisher's monotonic clock (`t_capture`'s) when it sent this")] = (
        -1.0)


class FrameFields(Envelope, kw_only=True):
    """The envelope and the frame a message describes (every topic but ``log.*``)."""

    frame_id: Annotated[int, _doc("the source's frame index (-1 on a status before the first frame)")]
    t_capture: Annotated[float, _doc(
        "seconds, monotonic clock at capture (Python's `time.monotonic`: CLOCK_MONOTONIC on Linux; the control "
        "socket's `t` reads it, so its age is `t` minus this)")]  # fmt: skip
    t_capture_unix: Annotated[float, _doc("seconds since the Unix epoch at capture (wall clock)")]
    camera: Annotated[Camera, _doc("the camera: id and intrinsics")]


class HandPoseMsg(FrameFields, kw_only=True):
    """``hand.pose.left`` / ``hand.pose.right``: one hand in one frame."""

    track_id: Annotated[int, _doc("id of this hand, stable while it stays in view")]
    handedness: Annotated[
        Handedness,
        _doc("the person's real hand, voted over the track's frames (a one-frame slip does not change it); matches "
             "the topic"),
    ]
    handedness_score: Annotated[float, _doc("the track's confidence in `handedness`, 0.5..1")]
    score: Annotated[
        float,
        _doc(_SCORE_DOC),
    ]
    layout: Annotated[Literal["mediapipe21"], _doc(
        "joint order: 0 wrist; thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20 (base to tip)")]  # fmt: skip
    units: Annotated[Literal["m"], _doc("unit of the 3D fields: metres")]
    joints_cam: Annotated[Joints3D, _doc("21×3 joints, metres, camera frame (OpenCV: x right, y down, z forward)")]
    joints_rel: Annotated[Joints3D, _doc("21×3 joints relative to the wrist (`joints_cam - joints_cam[0]`), metres")]
    joints_2d: Annotated[Joints2D, _doc(
        "21×2 detected landmarks, pixels (x right, y down): MediaPipe's; `joints_cam` projects near them, not onto "
        "them (each joint is pulled part of the way toward its landmark's ray: `--ray-pull`, 0.3 by "
        "default)")]  # fmt: skip
    joint_std: Annotated[PerJoint, _doc(
        "21 per-joint uncertainties, metres: the expected error of each wrist-relative joint (the wrist's is 0, the "
        "origin of `joints_rel`: floor it before weighing by 1/σ²)")]  # fmt: skip
    root_source: Annotated[Literal["depth", "estimate"], _doc(
        "where the wrist's distance came from: the depth image, or estimated from the hand's size")]  # fmt: skip
    modalities: Annotated[list[str], _doc('the model\'s inputs (encoders) used, e.g. `["2d"]`')]
    model: Annotated[str, _doc("id of the model that lifted the hand to 3D")]
    latency_ms: Annotated[dict[str, float], _doc(
        "milliseconds of this frame: `detect`, `infer`, `place` (each stage) and `total` (capture to this "
        "message)")]  # fmt: skip
    quality: Annotated[float | None, _doc(
        "the expected mean joint error of `joints_rel`, metres: the model's error model, or the mean of `joint_std` "
        "for a model without one")] = None  # fmt: skip
    confidence: Annotated[float | None, _doc(
        "0..1, the chance that the hand's mean joint error is below 2 cm (the error model's; null without one)")] = (
        None)  # fmt: skip
    low_confidence: Annotated[bool, _doc(
        "true when the run flags hands whose `confidence` is below `--min-confidence` (`--low-confidence flag`)")] = (
        False)  # fmt: skip


class HandSummary(Struct, kw_only=True):
    """One hand of a ``hand.frame`` message (its ``hand.pose.*`` message has the rest)."""

    track_id: Annotated[int, _doc("id of the hand, as in its `hand.pose.*` message")]
    handedness: Annotated[Handedness, _doc("the person's real hand")]
    score: Annotated[
        float,
        _doc(_SCORE_DOC),
    ]


class FrameMsg(FrameFields, kw_only=True):
    """``hand.frame``: one per processed frame, listing its hands (also when there are none)."""

    hands: Annotated[list[HandSummary], _doc("the hands published for this frame, possibly none")]
    latency_ms: Annotated[dict[str, float], _doc(
        "milliseconds of this frame: `detect`, `infer`, `place` (each stage) and `total` (capture to "
        "publish)")]  # fmt: skip


class StatusMsg(FrameFields, kw_only=True):
    """``status`` (about 1 Hz): live statistics of the run, with the frame fields of the latest processed frame
    (before the first: ``frame_id`` -1, the status's own times, ``camera`` with sizes 0)."""

    uptime_s: Annotated[float, _doc("seconds since the run started")]
    source: Annotated[str, _doc("the frame source's name")]
    source_state: Annotated[str, _doc(
        "`starting`, `ok`, `lost: ...` / `frozen: ...` with the reason; at the end `ended` (the source ran out), "
        "`stopped` (`--frames`, a `stop`, Ctrl-C) or, its camera lost then, `lost: ...`")]  # fmt: skip
    frames_in: Annotated[int, _doc("frames read from the source")]
    frames_processed: Annotated[int, _doc("frames through the whole pipeline")]
    fps: Annotated[float, _doc("processed frames per second over the last 2 s (the run's own rate before; the "
                               "report's fps is the whole run's), frames/s")]
    drops: Annotated[dict[str, int], _doc(
        "frames dropped at latest-wins hand-offs (live sources), by the stage that handed on a newer one: "
        "`capture`, `detect`, `infer` -> count; the `frame_id`s skipped, while `seq` has no gap")]  # fmt: skip
    corrupt_frames: Annotated[int, _doc("frames skipped as unreadable or malformed")]
    hands_published: Annotated[int, _doc("`hand.pose.*` messages sent")]
    latency_ms: Annotated[dict[str, float], _doc(
        "median milliseconds over the run: `capture`, `detect`, `infer`, `place_publish` and `end_to_end` "
        "(with `--save-video` also `save_video`), each once measured (before the first frame at most "
        "`capture`)")]  # fmt: skip
    backend: Annotated[str, _doc("the inference backend, model and modalities, in words")]
    backend_reason: Annotated[str, _doc("why that backend was chosen (empty when asked for by name)")]
    detector: Annotated[str, _doc("the hand detector")]
    stalled: Annotated[dict[str, float], _doc(
        "stages busy with one frame past the watchdog: stage -> seconds so far (empty when none)")]  # fmt: skip


class LogMsg(Envelope, kw_only=True):
    """``log.<level>``: a log record of the publisher (warnings and errors by default)."""

    level: Annotated[str, _doc("the record's level, lower case (`warning`, `error`, ...), as in the topic")]
    message: Annotated[str, _doc("the formatted log message")]
    logger: Annotated[str, _doc("name of the logger that emitted it")]
    camera: Annotated[Camera | None, _doc(
        "the publisher's camera: its `id` as on its frames (the other fields 0), so that the logs of several "
        "cameras behind one address are told apart (and their `seq` counted apart); absent from older senders")] = (
        None)  # fmt: skip


#: every message type, in the docs' order
MESSAGES: tuple[type[Struct], ...] = (HandPoseMsg, FrameMsg, StatusMsg, LogMsg)
#: the fields the publisher sets (``streamhand.stream.publish.Publisher.publish``); a producer hands over the rest
ENVELOPE_FIELDS: tuple[str, ...] = Envelope.__struct_fields__


# --------------------------------------------------------------------------------------------- helpers
def fields(cls: type[Struct]) -> tuple[str, ...]:
    """A Struct's field names, in order (= the wire map's keys)."""
    return cls.__struct_fields__


@functools.cache
def optional(cls: type[Struct]) -> tuple[str, ...]:
    """The fields a map of ``cls`` may lack: those added to the schema after messages were first sent (a recording
    or an older sender has none of them); the envelope's own defaults (``schema``, ``seq``, ``t_publish``) are
    filled by the publisher and always sent. Cached: ``msgspec.structs.fields`` evaluates the class's annotations
    (about half a millisecond a call), and every received message is checked against these."""
    sent = set(fields(Envelope))
    return tuple(f.name for f in msgspec.structs.fields(cls) if not f.required and f.name not in sent)


@functools.cache
def required(cls: type[Struct]) -> tuple[str, ...]:
    """The fields every map of ``cls`` carries: all but :func:`optional`'s."""
    return tuple(f for f in fields(cls) if f not in optional(cls))


def floats(a: Any) -> list:
    """An array (any shape) -> nested lists of floats rounded to :data:`DECIMALS`, as on the wire."""
    return np.asarray(a, dtype=np.float64).round(DECIMALS).tolist()


def camera(camera_id: str, intrinsics: Any) -> Camera:
    """The :class:`Camera` of ``intrinsics`` (anything with width, height, fx, fy, cx, cy)."""
    k = intrinsics
    return Camera(id=camera_id, width=int(k.width), height=int(k.height), fx=float(k.fx), fy=float(k.fy),
                  cx=float(k.cx), cy=float(k.cy))  # fmt: skip


def _builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a message value")


def from_fields(cls: type[S], values: Mapping[str, Any]) -> S:
    """``cls`` from a map of its fields (nested Structs and numpy scalars allowed), every type checked:
    raises ``msgspec.ValidationError`` (a ``ValueError``) naming the first wrong field. Keys that are not fields
    of ``cls`` are left out."""
    return msgspec.convert(msgspec.to_builtins(values, enc_hook=_builtin), cls)


def body(msg: Struct) -> dict[str, Any]:
    """A message's fields without those the publisher sets (:data:`ENVELOPE_FIELDS`): what a producer hands to
    ``Publisher.publish``. Nested Structs stay Structs (:func:`streamhand.stream.protocol.encode` writes them as
    maps)."""
    return {f: getattr(msg, f) for f in msg.__struct_fields__ if f not in ENVELOPE_FIELDS}


def _field_types(cls: type[Struct]) -> dict[str, Any]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.name: f.type for f in info.fields}


def _unwrap(t: Any) -> tuple[Any, dict]:
    """(the type under any Metadata, its merged extra JSON schema)."""
    extra: dict = {}
    while isinstance(t, msgspec.inspect.Metadata):
        extra = {**(t.extra_json_schema or {}), **extra}
        t = t.type
    return t, extra


def array_shapes(cls: type[Struct]) -> dict[str, tuple[int, ...]]:
    """The fields of ``cls`` that are fixed-shape arrays of floats -> their shape, e.g. ``joints_cam: (21, 3)``."""
    shapes = {}
    for name, t in _field_types(cls).items():
        dims: list[int] = []
        t, _ = _unwrap(t)
        while isinstance(t, msgspec.inspect.ListType) and t.min_length is not None and t.min_length == t.max_length:
            dims.append(t.min_length)
            t, _ = _unwrap(t.item_type)
        if dims and isinstance(t, msgspec.inspect.FloatType):
            shapes[name] = tuple(dims)
    return shapes


# --------------------------------------------------------------------------------------------- generated docs
def _type_name(t: Any) -> str:
    """A short, readable name of an inspected type for the Markdown tables."""
    t, _ = _unwrap(t)
    ins = msgspec.inspect
    simple = {ins.IntType: "int", ins.FloatType: "float", ins.StrType: "str", ins.BoolType: "bool",
              ins.AnyType: "any", ins.NoneType: "nil"}  # fmt: skip
    if type(t) in simple:
        return simple[type(t)]
    if isinstance(t, ins.LiteralType):
        return " \\| ".join(f"`{json.dumps(v)}`" for v in t.values)
    if isinstance(t, ins.UnionType):
        return " \\| ".join(_type_name(x) for x in t.types)
    if isinstance(t, ins.ListType):
        dims = []
        while isinstance(t, ins.ListType) and t.min_length is not None and t.min_length == t.max_length:
            dims.append(str(t.min_length))
            t, _ = _unwrap(t.item_type)
        if dims:
            return f"{_type_name(t)}[{'×'.join(dims)}]"
        return f"list[{_type_name(t.item_type)}]"
    if isinstance(t, ins.DictType):
        return f"map[{_type_name(t.key_type)} → {_type_name(t.value_type)}]"
    if isinstance(t, ins.StructType):
        return f"[{t.cls.__name__}](#{t.cls.__name__.lower()})"
    raise TypeError(f"no name for {t!r}")  # a new kind of field: name it here


def _table(cls: type[Struct], only: Sequence[str] | None = None) -> list[str]:
    rows = ["| field | type | description |", "|---|---|---|"]
    for name, t in _field_types(cls).items():
        if only is None or name in only:
            desc = _unwrap(t)[1].get("description", "")
            rows.append(f"| `{name}` | {_type_name(t)} | {desc} |")
    return rows


def _doc_title(cls: type[Struct]) -> str:
    return " ".join((cls.__doc__ or "").split())


def markdown() -> str:
    """docs/protocol_fields.md: one table per message, the nested maps after them."""
    out = [
        "# Message fields (generated)",
        "",
        "<!-- Generated from streamhand/stream/schema.py by `python -m streamhand.stream.schema --markdown "
        "docs/protocol_fields.md --json-schema docs/streamhand.schema.json`; do not edit by hand. -->",
        "",
        f"Schema version {SCHEMA}. Every message is ZeroMQ multipart `[topic, msgpack map]` on "
        f"`tcp://127.0.0.1:{DEFAULT_PUB_PORT}`; the map's keys are the fields below, all present. Arrays "
        f"are nested lists of floats ({DECIMALS} decimals); `float[21×3]` is 21 lists of 3. The typed client "
        "(`streamhand.stream.client`) ignores fields it does not know. The same schema as JSON Schema: "
        "[streamhand.schema.json](streamhand.schema.json). Sockets, limits and examples: "
        "[protocol.md](protocol.md).",
        "",
    ]
    for cls in MESSAGES:
        out += [f"## {cls.__name__}", "", _doc_title(cls), "", *_table(cls), ""]
    for cls in (Camera, HandSummary):
        out += [f"## {cls.__name__}", "", _doc_title(cls), "", *_table(cls), ""]
    return "\n".join(out)


def json_schema() -> str:
    """docs/streamhand.schema.json: JSON Schema (2020-12) of every message, as msgspec describes the Structs."""
    refs, defs = msgspec.json.schema_components(MESSAGES, ref_template="#/$defs/{name}")
    for cls in MESSAGES:  # every field is on the wire: the defaults only spare a producer the publisher's fields
        d = defs[cls.__name__]
        d["required"] = list(fields(cls))
        for prop in d["properties"].values():
            prop.pop("default", None)
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "streamhand.schema.json",
        "title": f"streamhand messages, schema {SCHEMA}",
        "description": "The msgpack maps streamhand publishes, one per topic (generated from "
        "streamhand/stream/schema.py).",
        "oneOf": list(refs),
        "$defs": dict(sorted(defs.items())),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_DOCS = Path(__file__).resolve().parents[2] / "docs"
DEFAULT_MARKDOWN = _DOCS / "protocol_fields.md"
DEFAULT_JSON_SCHEMA = _DOCS / "streamhand.schema.json"


def stale(markdown_path: Path = DEFAULT_MARKDOWN, json_path: Path = DEFAULT_JSON_SCHEMA) -> list[Path]:
    """The generated files that differ from what the code generates now (or are missing)."""
    out = []
    for path, text in ((markdown_path, markdown()), (json_path, json_schema())):
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streamhand.stream.schema", description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", type=Path, help="write the field tables (Markdown) here")
    ap.add_argument("--json-schema", type=Path, help="write the JSON Schema here")
    ap.add_argument("--check", action="store_true", help="exit 1 if the docs differ from the code (writes nothing)")
    a = ap.parse_args(argv)
    md, js = a.markdown or DEFAULT_MARKDOWN, a.json_schema or DEFAULT_JSON_SCHEMA
    if a.check:
        bad = stale(md, js)
        if bad:
            print(f"{' and '.join(map(_shown, bad))} stale: regenerate with python -m streamhand.stream.schema "
                  f"--markdown {_shown(md)} --json-schema {_shown(js)}", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    if a.markdown is None and a.json_schema is None:
        ap.error("give --markdown and/or --json-schema, or --check")
    if a.markdown is not None:
        a.markdown.write_text(markdown(), encoding="utf-8")
    if a.json_schema is not None:
        a.json_schema.write_text(json_schema(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
