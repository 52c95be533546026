"""The message schema (streamhand.stream.schema): the generated docs are current, real messages round-trip through
msgpack and validate, wrong types and shapes are rejected, and every field the pipeline publishes is documented."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import msgpack
import msgspec
import numpy as np
import pytest

from streamhand.geometry import Intrinsics
from streamhand.stream import protocol, schema
from streamhand.stream.client import HandPose

K = Intrinsics(640, 480, 600.0, 601.0, 319.5, 239.5)


# ----------------------------------------------------------------------------------------------- generated docs
def test_the_generated_docs_are_current(capsys):
    """CI fails here when a Struct changed and docs/ was not regenerated."""
    rc = schema.main(["--check"])
    assert rc == 0, capsys.readouterr().err


def test_check_names_a_stale_file_and_writing_fixes_it(tmp_path, capsys):
    md, js = tmp_path / "fields.md", tmp_path / "schema.json"
    md.write_text(schema.markdown())
    js.write_text("{}\n")
    assert schema.main(["--check", "--markdown", str(md), "--json-schema", str(js)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schema.json" in err[0] and "fields.md" not in err[0].split("stale")[0]
    assert schema.main(["--markdown", str(md), "--json-schema", str(js)]) == 0
    assert schema.main(["--check", "--markdown", str(md), "--json-schema", str(js)]) == 0


def test_the_json_schema_describes_every_message():
    import json

    doc = json.loads(schema.json_schema())
    defs = doc["$defs"]
    for cls in schema.MESSAGES:
        d = defs[cls.__name__]
        assert d["required"] == list(schema.fields(cls)) == list(d["properties"])
        assert all(p.get("description") for p in d["properties"].values())
    joints = defs["HandPoseMsg"]["properties"]["joints_cam"]
    assert (joints["minItems"], joints["maxItems"], joints["items"]["minItems"]) == (21, 21, 3)


# ----------------------------------------------------------------------------------------------- field lists
def test_protocol_field_lists_keep_their_names():
    assert set(protocol.COMMON_FIELDS) == {"topic", "schema", "seq", "frame_id", "t_capture", "t_capture_unix",
                                           "t_publish", "camera"}  # fmt: skip
    assert protocol.CAMERA_FIELDS == ("id", "width", "height", "fx", "fy", "cx", "cy")
    assert protocol.POSE_FIELDS == (
        "track_id", "handedness", "handedness_score", "score", "layout", "units", "joints_cam", "joints_rel",
        "joints_2d", "joint_std", "root_source", "modalities", "model", "latency_ms", "quality", "confidence",
        "low_confidence",
    )  # fmt: skip
    # added later: a recording or an older sender lacks them, and its messages still parse
    assert schema.optional(schema.HandPoseMsg) == ("quality", "confidence", "low_confidence")
    assert protocol.FRAME_FIELDS == ("hands", "latency_ms")
    assert protocol._SHAPES == {"joints_cam": (21, 3), "joints_rel": (21, 3), "joints_2d": (21, 2), "joint_std": (21,)}
    assert (protocol.SCHEMA, protocol.LAYOUT, protocol.UNITS) == (1, "mediapipe21", "m")


def test_every_field_has_a_description():
    for cls in (*schema.MESSAGES, schema.Camera, schema.HandSummary):
        for f in msgspec.inspect.type_info(cls).fields:
            assert schema._unwrap(f.type)[1].get("description"), f"{cls.__name__}.{f.name}"


# ----------------------------------------------------------------------------------------------- round trips
def _pose(**over: Any) -> schema.HandPoseMsg:
    rng = np.random.default_rng(0)
    m = schema.HandPoseMsg(
        topic="hand.pose.left", seq=3, t_publish=12.5, frame_id=7, t_capture=12.25, t_capture_unix=1.7e9,
        camera=schema.camera("desk", K), track_id=2, handedness="left", handedness_score=0.93, score=0.88,
        layout="mediapipe21", units="m", joints_cam=schema.floats(rng.normal(0.0, 0.05, (21, 3)) + 0.5),
        joints_rel=schema.floats(rng.normal(0.0, 0.05, (21, 3))), joints_2d=schema.floats(rng.uniform(0, 480, (21, 2))),
        joint_std=schema.floats(rng.uniform(0.002, 0.02, 21)), root_source="depth", modalities=["2d"],
        model="sh-test", latency_ms={"detect": 11.5, "infer": 3.25, "place": 0.5, "total": 17.0},
    )  # fmt: skip
    return msgspec.structs.replace(m, **over)


def _messages() -> list[tuple[str, msgspec.Struct]]:
    frame_fields = {"seq": 0, "t_publish": 2.0, "frame_id": 7, "t_capture": 1.0, "t_capture_unix": 1.7e9,
                    "camera": schema.camera("desk", K)}  # fmt: skip
    return [
        ("hand.pose.left", _pose()),
        ("hand.pose.right", _pose(topic="hand.pose.right", handedness="right", root_source="estimate")),
        ("hand.frame", schema.FrameMsg(topic="hand.frame", **frame_fields, latency_ms={"detect": 1.0, "total": 2.0},
                                       hands=[schema.HandSummary(track_id=2, handedness="left", score=0.9)])),
        ("hand.frame", schema.FrameMsg(topic="hand.frame", **frame_fields, hands=[], latency_ms={})),
        ("status", schema.StatusMsg(topic="status", **frame_fields, uptime_s=3.5, source="demo", source_state="ok",
                                    frames_in=10, frames_processed=9, fps=29.5, drops={"detect": 1},
                                    corrupt_frames=0, hands_published=12, latency_ms={"detect": 10.0},
                                    backend="torch[cpu]", backend_reason="", detector="mediapipe",
                                    stalled={})),
        ("log.warning", schema.LogMsg(topic="log.warning", seq=4, t_publish=3.0, level="warning", message="hi",
                                      logger="streamhand")),
    ]  # fmt: skip


@pytest.mark.parametrize(("topic", "msg"), _messages(), ids=lambda v: v if isinstance(v, str) else "")
def test_struct_to_msgpack_to_struct(topic, msg):
    parts = protocol.encode(topic, msg)
    plain = msgpack.unpackb(parts[1])  # any msgpack library reads it: a map, the field names as keys
    assert list(plain) == list(schema.fields(type(msg)))
    got_topic, got = protocol.decode(parts)
    assert got_topic == topic and protocol.validate(topic, got) == []
    back, problems = protocol.parse(topic, got)
    assert problems == [] and back == msg


def test_checking_a_received_pose_costs_well_under_a_millisecond():
    """A subscriber checks every pose against the schema: 1 000 checks take a fraction of a second (each cost 12 ms
    while the optional fields were worked out from the class's annotations per field per message, so a Python
    subscriber fell behind two hands at 30 frames/s)."""
    import time

    _, got = protocol.decode(protocol.encode("hand.pose.left", _pose()))
    t0 = time.perf_counter()
    for _ in range(1000):
        back, problems = protocol.parse("hand.pose.left", got)
    assert problems == [] and isinstance(back, schema.HandPoseMsg)
    assert time.perf_counter() - t0 < 2.0


def test_a_struct_and_the_old_dict_encode_to_the_same_bytes():
    """Before the schema, messages were dicts of numpy arrays through to_wire + msgpack: same bytes now."""
    m = _pose()
    old = {f: getattr(m, f) for f in schema.fields(schema.HandPoseMsg)}
    old["camera"] = protocol.camera_block("desk", K)
    for f in protocol._SHAPES:
        old[f] = np.asarray(old[f], np.float32 if f == "joints_2d" else np.float64)
    rounded = {f: schema.floats(old[f]) for f in protocol._SHAPES}
    m = msgspec.structs.replace(m, **rounded)
    assert protocol.encode(m.topic, m)[1] == msgpack.packb(protocol.to_wire(old), use_bin_type=True)


def test_the_client_reads_a_struct_into_a_hand_pose():
    m = _pose()
    pose = HandPose.from_message(m.topic, protocol.decode(protocol.encode(m.topic, m))[1], gap=2)
    assert pose.joints_cam.shape == (21, 3) and pose.joints_2d.shape == (21, 2) and pose.joint_std.shape == (21,)
    assert pose.joints_cam.dtype == np.float64 and pose.gap == 2 and pose.camera["fx"] == 600.0
    assert (pose.seq, pose.track_id, pose.handedness, pose.model) == (3, 2, "left", "sh-test")
    shared = set(HandPose.__dataclass_fields__) - {"gap", "raw"}
    assert shared == set(schema.fields(schema.HandPoseMsg)) - {"schema", "layout", "units"}


# ----------------------------------------------------------------------------------------------- rejections
def _wire(topic: str, msg: msgspec.Struct) -> dict:
    return protocol.decode(protocol.encode(topic, msg))[1]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda m: m.update(score="high"), "Expected `float`, got `str` - at `$.score`"),
        (lambda m: m.update(track_id=1.5), "Expected `int`, got `float` - at `$.track_id`"),
        (lambda m: m.update(seq=True), "Expected `int`, got `bool` - at `$.seq`"),
        (lambda m: m.update(frame_id="7"), "Expected `int`, got `str` - at `$.frame_id`"),
        (lambda m: m["camera"].update(fx="wide"), "at `$.camera.fx`"),
        (lambda m: m.update(camera=[1, 2]), "Expected `object`, got `array` - at `$.camera`"),
        (lambda m: m.update(latency_ms={"detect": "slow"}), "at `$.latency_ms[...]`"),
        (lambda m: m.update(modalities="2d"), "Expected `array`, got `str` - at `$.modalities`"),
        (lambda m: m.update(joints_cam=[[0.0, 0.0, 0.0]] * 20), "joints_cam has shape (20, 3), expected (21, 3)"),
        (lambda m: m.update(joints_2d=[[0.0, 0.0, 0.0]] * 21), "joints_2d has shape (21, 3), expected (21, 2)"),
        (lambda m: m.update(joint_std=[0.0] * 22), "joint_std has shape (22,), expected (21,)"),
        (lambda m: m.update(joint_std=["a"] * 21), "joint_std is not an array of numbers"),
        (lambda m: m.update(joints_rel=[[0.0, 0.0, True]] * 21), "Expected `float`, got `bool`"),
        (lambda m: m.pop("model"), "missing model"),
        (lambda m: m.update(root_source="magic"), "root_source"),
    ],
)
def test_pose_with_a_wrong_type_or_shape_is_rejected(mutate, problem):
    m = _wire("hand.pose.left", _pose())
    mutate(m)
    problems = protocol.validate("hand.pose.left", m)
    assert any(problem in p for p in problems), problems
    with pytest.raises(ValueError):
        HandPose.from_message("hand.pose.left", m)


@pytest.mark.parametrize(
    ("index", "mutate", "problem"),
    [
        (2, lambda m: m["hands"][0].update(track_id="x"), "at `$.hands[0].track_id`"),
        (2, lambda m: m["hands"][0].update(handedness="both"), "'both' - at `$.hands[0].handedness`"),
        (2, lambda m: m.pop("hands"), "missing hands"),
        (4, lambda m: m.update(drops={"detect": 1.5}), "at `$.drops[...]`"),
        (4, lambda m: m.update(fps="fast"), "at `$.fps`"),
        (5, lambda m: m.pop("level"), "missing level"),
        (5, lambda m: m.update(message=None), "at `$.message`"),
    ],
)
def test_other_messages_with_a_wrong_type_are_rejected(index, mutate, problem):
    topic, msg = _messages()[index]
    m = _wire(topic, msg)
    mutate(m)
    assert any(problem in p for p in protocol.validate(topic, m)), protocol.validate(topic, m)


def test_unknown_fields_are_ignored():
    m = _wire("hand.pose.left", _pose())
    m["future_field"] = {"anything": [1, 2]}
    assert protocol.validate("hand.pose.left", m) == []


# ----------------------------------------------------------------------------------------------- the pipeline
class _Sent:
    """Stands in for the publisher's PUB socket: keeps what it is given."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[list[bytes]] = []

    def send_multipart(self, parts: list[bytes], flags: int = 0) -> None:
        self.parts.append(parts)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> list[tuple[str, dict]]:
    """Every message of a short real demo run (MediaPipe, a tiny model, the real Publisher), decoded."""
    import torch

    from streamhand.capture.demo import DemoSource
    from streamhand.checkpoint import save_checkpoint
    from streamhand.detect import MediaPipeHands
    from streamhand.infer import Lifter, TorchBackend
    from streamhand.models import HandPoseModel, ModelConfig
    from streamhand.run.pipeline import Pipeline
    from streamhand.runtime_config import RunConfig
    from streamhand.stream.publish import Publisher, ZmqLogHandler
    from tests.conftest import free_port

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt", HandPoseModel(ModelConfig(z_dim=8, hidden=32)))
    cfg = RunConfig(frames=12)
    cfg.source.realtime = False
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=False)
    src.open()
    pub = Publisher("127.0.0.1", free_port(), None)
    sock, sent = pub._pub, _Sent()
    pub._pub = sent
    logger = logging.getLogger("streamhand.test_schema")
    handler = ZmqLogHandler(pub, camera_id=src.camera_id)  # as a run names its camera
    logger.addHandler(handler)
    try:
        pipe = Pipeline(cfg, src, MediaPipeHands(max_hands=2), Lifter(TorchBackend(ckpt, n_samples=4)), pub)
        pipe._maybe_status(force=True)  # before the first frame
        pipe.run()
        logger.warning("a warning for the log topic")
    finally:
        logger.removeHandler(handler)
        pub._pub = sock
        pub.close()
    return [protocol.decode(p) for p in sent.parts]


def _documented(cls: type[msgspec.Struct]) -> set[str]:
    """The fields of ``cls``'s table in docs/protocol_fields.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "protocol_fields.md").read_text(encoding="utf-8")
    section = text.split(f"## {cls.__name__}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))


def test_every_published_field_is_documented(published):
    topics = {t.rsplit(".", 1)[0] if t.startswith("hand.pose.") else t for t, _ in published}
    assert {"hand.pose", "hand.frame", "status", "log.warning"} <= topics
    for topic, msg in published:
        cls = protocol.struct_for(topic)
        assert cls is not None, topic
        assert set(msg) == set(schema.fields(cls)) == _documented(cls), topic  # nothing undocumented, none missing
        assert protocol.validate(topic, msg) == [], topic
        if "camera" in msg:
            assert set(msg["camera"]) == _documented(schema.Camera)
        for hand in msg.get("hands", []):
            assert set(hand) == _documented(schema.HandSummary)


def test_a_published_pose_round_trips_through_its_struct(published):
    topic, msg = next((t, m) for t, m in published if t.startswith("hand.pose."))
    back, problems = protocol.parse(topic, msg)
    assert problems == []
    again = protocol.decode(protocol.encode(topic, back))[1]
    assert again == msg  # field for field, values included
    joints = np.asarray(msg["joints_cam"])
    assert (np.round(joints, 6) == joints).all()  # 6 decimals, as protocol.to_wire wrote them
    pose = HandPose.from_struct(back)
    np.testing.assert_array_equal(pose.joints_cam, np.asarray(msg["joints_cam"]))
