"""Hostile input: the subscriber's decoder and the control socket take bytes from the network. Generated and
random inputs (10 000 for each decoder, through real sockets too) never raise anything but the documented
error, never kill a socket, and never stop good messages from arriving."""

from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamhand.stream import protocol
from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from tests.conftest import free_port

N = 10_000
_FUZZ = settings(max_examples=N, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

# msgpack-encodable values, nested, including the shapes our fields take and wrong ones
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=8,
)  # fmt: skip
_field_names = st.sampled_from([*protocol.COMMON_FIELDS, *protocol.POSE_FIELDS, "junk"])
_maps = st.dictionaries(_field_names, _values, max_size=12)


def _good_pose(seq: int) -> dict:
    z = np.zeros
    return {"topic": "hand.pose.left", "schema": protocol.SCHEMA, "seq": seq, "frame_id": seq, "t_capture": 1.0,
            "t_capture_unix": 1.0, "t_publish": 1.0, "camera": {f: 1 for f in protocol.CAMERA_FIELDS},
            "track_id": 1, "handedness": "left", "handedness_score": 0.9, "score": 0.9, "layout": protocol.LAYOUT,
            "units": protocol.UNITS, "joints_cam": z((21, 3)), "joints_rel": z((21, 3)), "joints_2d": z((21, 2)),
            "joint_std": z(21), "root_source": "estimate", "modalities": ["2d"], "model": "m",
            "latency_ms": {}}  # fmt: skip


@pytest.mark.slow  # 10 000 examples
@_FUZZ
@given(parts=st.lists(st.binary(max_size=64), max_size=4))
def test_decode_random_bytes(parts):
    try:
        topic, msg = protocol.decode(parts)
    except protocol.MalformedMessage:
        return
    assert isinstance(topic, str) and isinstance(msg, dict)


@pytest.mark.slow  # 1000 examples
@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(topic=st.sampled_from(["hand.pose.left", "hand.pose.right", "hand.frame", "status", "x"]), msg=_maps)
def test_decode_validate_and_read_generated_maps(topic, msg):
    """Well-formed msgpack of the wrong content: decode gives the map; validate lists problems; reading a pose
    raises only the errors the subscriber skips on."""
    from streamhand.stream.client import HandPose

    got_topic, got = protocol.decode([topic.encode(), msgpack.packb(msg, use_bin_type=True)])
    assert got_topic == topic
    problems = protocol.validate(topic, got)
    assert isinstance(problems, list)
    if topic.startswith("hand.pose.") and not problems:
        try:
            HandPose.from_message(topic, got)
        except (KeyError, TypeError, ValueError, OverflowError):
            pass


@pytest.mark.parametrize(
    "payload",
    [
        b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
        b"\xdf\xff\xff\xff\xff",  # a map claiming 4 billion pairs
        b"\xdb\xff\xff\xff\xff" + b"a" * 10,  # a string claiming 4 GB
        b"\x91" * 100_000 + b"\xc0",  # nested 100 000 deep
        b"\xd4\x01\x00",  # an extension type (never built)
        msgpack.packb({1: 2}),  # non-string keys
        msgpack.packb([1, 2]),  # not a map
        b"\x00" * (protocol.MAX_MESSAGE_BYTES + 1),  # over the size bound
    ],
)
def test_decode_bounds(payload):
    with pytest.raises(protocol.MalformedMessage):
        protocol.decode([b"status", payload])


def test_subscriber_skips_a_flood_of_garbage_and_keeps_receiving():
    port = free_port()
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"tcp://127.0.0.1:{port}")
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.pose",), timeout=10)
    rng = np.random.default_rng(0)
    try:
        time.sleep(0.3)
        pub.send_multipart(protocol.encode("hand.pose.left", _good_pose(0)))
        assert sub.recv().data["seq"] == 0  # connected
        for i in range(N):
            kind = i % 4
            if kind == 0:  # random bytes, random part counts
                parts = [b"hand.pose.left"] + [rng.bytes(int(rng.integers(0, 64))) for _ in range(rng.integers(0, 3))]
            elif kind == 1:  # msgpack maps missing fields or with wrong types
                bad = _good_pose(i)
                wrong = ["x", None, [1, 2], {"a": 1}, 1e308, 2**63]
                bad[list(bad)[int(rng.integers(len(bad)))]] = wrong[int(rng.integers(len(wrong)))]
                parts = protocol.encode("hand.pose.right", bad)
            elif kind == 2:  # a non-UTF-8 topic under our prefix
                parts = [b"hand.pose.\xff\xfe", protocol.encode("hand.pose.left", _good_pose(i))[1]]
            else:  # a truncated good message
                good = protocol.encode("hand.pose.left", _good_pose(i))
                parts = [good[0], good[1][: int(rng.integers(0, len(good[1])))]]
            pub.send_multipart(parts)
        pub.send_multipart(protocol.encode("hand.pose.left", _good_pose(1)))
        poses = iter(sub)
        pose = next(poses)  # every hostile message skipped; the good one arrives
        assert pose.seq == 1 and pose.joints_cam.shape == (21, 3)
        assert sub.malformed >= N // 2
    finally:
        sub.close()
        pub.close(0)


def test_the_timeout_counts_from_the_last_pose_given_not_the_last_message():
    """A publisher sending only poses that are malformed: the subscriber gives up after its timeout, however many
    arrive. A topic given as one string is one topic; topics that carry no pose need raw=True."""
    port = free_port()
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"tcp://127.0.0.1:{port}")
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics="hand.pose.left", timeout=0.6)
    stop = threading.Event()

    def flood() -> None:  # for 5 s at most: a subscriber that never gives up fails the test instead of hanging it
        bad = {**_good_pose(0), "joints_cam": "not an array"}
        t_end = time.monotonic() + 5.0
        while not stop.is_set() and time.monotonic() < t_end:
            pub.send_multipart(protocol.encode("hand.pose.left", bad))
            time.sleep(0.01)

    sender = threading.Thread(target=flood, daemon=True)
    try:
        assert sub.topics == ("hand.pose.left",)
        sender.start()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            next(iter(sub))
        assert time.monotonic() - t0 < 3.0 and sub.malformed > 5
    finally:
        stop.set()
        sender.join()
        sub.close()
        pub.close(0)
    with pytest.raises(ValueError, match="yields hand poses only"):
        PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=["hand.frame"])
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="yields hand poses only"):  # before asking a control socket anything
        PoseSubscriber(control=f"tcp://127.0.0.1:{free_port()}", topics=["status"], timeout=2)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.slow
def test_control_socket_answers_every_generated_request():
    cport = free_port()
    server = Publisher("127.0.0.1", free_port(), cport, stats=lambda: {"frames_in": 1})
    rng = np.random.default_rng(1)
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{cport}")
    words = [b"PUB_PORT", b"t", b"stats", b"config", b"STOP", b"stats\x00", b"\xff", b""]
    try:
        for i in range(N):
            if i % 3 == 0:
                parts = [rng.bytes(int(rng.integers(0, 200)))]
            elif i % 3 == 1:
                parts = [words[int(rng.integers(len(words)))] for _ in range(int(rng.integers(1, 4)))]
            else:
                parts = [bytes(rng.choice(list(b"PUB_ORTstaconfig \\n\\t"), int(rng.integers(0, 12))).tolist())]
            req.send_multipart(parts)
            reply = req.recv()
            assert reply and len(reply) < 300
        req.send(b"t")
        assert float(req.recv()) > 0  # alive after all of it
    finally:
        req.close()
        server.close()
