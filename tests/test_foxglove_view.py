"""``streamhand view --foxglove``: a real publisher's messages served over Foxglove's WebSocket protocol, read by a
real WebSocket client (the ``websockets`` package): the server's advertise of channels, a subscription, and binary
message frames (opcode 0x01, subscription id, timestamp, payload) carrying the skeleton as a ``foxglove.SceneUpdate``
(decoded with protobuf from the schema the server advertised) and our JSON maps; a busy port is one line, exit 2."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import sys
import threading
import time

import numpy as np
import pytest

from tests.conftest import free_port
from tests.helpers import invoke
from tests.test_rerun_view import CAM, T0_UNIX, SyntheticStream, hand

pytest.importorskip("foxglove")
websockets = pytest.importorskip("websockets")

#: subprotocols the client offers: foxglove-sdk 0.30 speaks ``foxglove.sdk.v1``, older ones ``foxglove.websocket.v1``
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]


async def _client(port: int, want: int, deadline: float) -> tuple[dict, dict[str, list[tuple[int, bytes]]], str]:
    """Connect (retrying until the server is up), read the advertise, subscribe to our channels and collect
    ``want`` messages of the ``hands`` channel: (channels by topic, (timestamp, payload) per topic, subprotocol)."""
    while True:
        try:
            ws = await websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS, max_size=None)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    async with ws:
        channels: dict[str, dict] = {}
        while not {"hands", "camera_calibration", "tf", "hand.pose.right", "hand.frame", "status"} <= set(channels):
            m = json.loads(await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.1)))
            if m["op"] == "advertise":
                channels.update({c["topic"]: c for c in m["channels"]})
        subs = dict(enumerate(("hands", "camera_calibration", "tf", "hand.pose.right", "hand.frame"), 1))
        wanted = [{"id": i, "channelId": channels[t]["id"]} for i, t in subs.items()]
        await ws.send(json.dumps({"op": "subscribe", "subscriptions": wanted}))
        got: dict[str, list[tuple[int, bytes]]] = {t: [] for t in subs.values()}
        while len(got["hands"]) < want or not all(got.values()):
            frame = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.1))
            if isinstance(frame, bytes) and frame[0] == 0x01:  # message data: opcode, subscription id, timestamp
                sub_id, t_ns = struct.unpack_from("<IQ", frame, 1)
                got[subs[sub_id]].append((t_ns, frame[13:]))
        return channels, got, ws.subprotocol


def _protobuf(channel: dict):
    """The message class of a protobuf channel, from the FileDescriptorSet its advertise carried."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))


@pytest.mark.slow
def test_view_foxglove_serves_the_skeleton_to_a_websocket_client():
    port = free_port()
    result: dict = {}

    deadline = time.monotonic() + 12

    def client() -> None:
        try:
            result["value"] = asyncio.run(_client(port, want=60, deadline=deadline))
        except BaseException as e:  # reported by the test below
            result["error"] = e

    with SyntheticStream(free_port()) as stream:
        t = threading.Thread(target=client, daemon=True)
        t.start()
        t0 = time.monotonic()
        # the view runs here (signal handlers need the main thread); the client is done long before 400 poses
        r = invoke("view", "--foxglove", "--port", str(port), "--count", "400", "--address", stream.address)
        seconds = time.monotonic() - t0
        t.join(max(deadline - time.monotonic(), 0.0) + 5)  # a busy machine: the client may still be reading
    assert not t.is_alive(), "the websocket client did not finish"
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"ws://127.0.0.1:{port}" in r.stderr and "served 400 hand poses" in r.stderr
    assert "error" not in result, repr(result.get("error"))
    channels, got, subprotocol = result["value"]
    assert subprotocol in SUBPROTOCOLS
    assert channels["hands"]["schemaName"] == "foxglove.SceneUpdate" and channels["hands"]["encoding"] == "protobuf"
    assert channels["camera_calibration"]["schemaName"] == "foxglove.CameraCalibration"
    pose_channel = channels["hand.pose.right"]
    assert (pose_channel["encoding"], pose_channel["schemaEncoding"]) == ("json", "jsonschema")
    assert pose_channel["schemaName"] == "streamhand.HandPoseMsg"
    schema = json.loads(pose_channel["schema"])
    assert "$ref" not in json.dumps(schema) and schema["properties"]["joints_cam"]["type"] == "array"

    # the skeleton: one entity per hand, a sphere per joint at joints_cam sized by joint_std, the bones as a line list
    scene = _protobuf(channels["hands"])
    skeletons, deleted = 0, 0
    for t_ns, payload in got["hands"]:
        update = scene.FromString(payload)
        for e in update.entities:
            track = int(e.id.split("/")[1])
            frame_id = round((e.timestamp.seconds + e.timestamp.nanos * 1e-9 - T0_UNIX) * 30)
            j, _, std = hand(frame_id, track)
            assert e.frame_id == "camera" and len(e.spheres) == 21
            pos = np.array([[s.pose.position.x, s.pose.position.y, s.pose.position.z] for s in e.spheres])
            np.testing.assert_allclose(pos, j, atol=1e-6)
            np.testing.assert_allclose([s.size.x for s in e.spheres], 2 * std, atol=1e-9)
            assert len(e.lines) == 1 and len(e.lines[0].points) == 2 * 25  # 20 bones and 5 palm lines
            assert e.texts[0].text == f"{'right' if track == 1 else 'left'} {track}"
            assert abs(t_ns * 1e-9 - (T0_UNIX + frame_id / 30)) < 1e-3  # the frame's timestamp: capture time
            skeletons += 1
        for d in update.deletions:  # the left hand left: its entity is deleted
            assert d.id == "hand/2"
            deleted += 1
    assert skeletons >= 40 and deleted >= 1

    calibration = _protobuf(channels["camera_calibration"]).FromString(got["camera_calibration"][0][1])
    assert (calibration.width, calibration.height, calibration.frame_id) == (640, 480, "camera")
    np.testing.assert_allclose(calibration.K, [CAM.fx, 0, CAM.cx, 0, CAM.fy, CAM.cy, 0, 0, 1])
    tf = _protobuf(channels["tf"]).FromString(got["tf"][0][1])
    assert (tf.parent_frame_id, tf.child_frame_id) == ("world", "camera")
    x, y, z, w = tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])  # fmt: skip
    np.testing.assert_allclose(rot @ [0, 0, 1], [1, 0, 0], atol=1e-9)  # the camera looks along world x
    np.testing.assert_allclose(rot @ [0, -1, 0], [0, 0, 1], atol=1e-9)  # its up (-y) is world up
    pose = json.loads(got["hand.pose.right"][0][1])
    assert pose["topic"] == "hand.pose.right" and len(pose["joints_cam"]) == 21
    print(f"view --foxglove: {len(got['hands'])} scene updates received; 400 poses served in {seconds:.1f} s")


def test_busy_port_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = invoke("view", "--foxglove", "--port", str(port), "--address", "tcp://127.0.0.1:1")
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in r.stderr, err
    assert f"port {port} on 127.0.0.1 is in use" in err and "--port" in err


def test_without_the_sdk_the_option_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "foxglove", None)
    r = invoke("view", "--foxglove", "--address", "tcp://127.0.0.1:1")
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1, err
    assert "--foxglove" in err and "pip install 'streamhand[viewers]'" in err


def test_json_schemas_are_self_contained_for_every_topic():
    from streamhand.stream.schema import FrameMsg, HandPoseMsg, LogMsg, StatusMsg
    from streamhand.viz.foxglove_bridge import json_schema

    for cls in (HandPoseMsg, FrameMsg, StatusMsg, LogMsg):
        s = json_schema(cls)
        assert s["type"] == "object" and s["title"] == f"streamhand.{cls.__name__}"
        assert "$ref" not in json.dumps(s) and "$defs" not in s
    assert json_schema(HandPoseMsg)["properties"]["camera"]["properties"]["fx"]["type"] == "number"
