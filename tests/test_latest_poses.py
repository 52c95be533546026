"""``PoseSubscriber.latest()``: a consumer slower than the stream gets the newest frame's hands, not the backlog
that ZeroMQ and the system buffer for it (real publisher and subscriber over TCP)."""

from __future__ import annotations

import time

import msgspec

from streamhand.stream import schema
from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from tests.conftest import free_port
from tests.test_schema import _pose


def _send(pub: Publisher, frame: int, camera: str = "desk", tracks: tuple[int, ...] = (1, 2)) -> None:
    for track, hand in zip(tracks, ("left", "right")):
        m = _pose(topic=f"hand.pose.{hand}", handedness=hand, track_id=track, frame_id=frame,
                  camera=msgspec.structs.replace(_pose().camera, id=camera))  # fmt: skip
        pub.publish(m.topic, schema.body(m))
    pub.publish("status", {"x": frame})  # another topic between frames: not a pose


def _until(sub: PoseSubscriber, frame: int) -> list:
    """``latest()`` until the frame ``frame`` has arrived (TCP delivers in order; the test's own pace is free)."""
    deadline = time.monotonic() + 10
    got: list = []
    while time.monotonic() < deadline and not any(p.frame_id == frame for p in got):
        got = sub.latest(wait=1.0) or got
    return got


def test_a_slow_consumer_gets_the_newest_frame_not_the_backlog():
    port = free_port()
    pub = Publisher("127.0.0.1", port, None, sndhwm=100_000)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.pose", "status"), raw=True)
    try:
        time.sleep(0.3)  # the subscription reaches the publisher
        for frame in range(500):  # a backlog: 1 000 poses and 500 status messages waiting
            _send(pub, frame)
        got = _until(sub, 499)
        assert sorted((p.frame_id, p.track_id) for p in got) == [(499, 1), (499, 2)]
        assert sub.gaps == 0 and sub.latest(wait=0.0) == []  # drained: nothing new has come
        _send(pub, 500, tracks=(1,))  # the second hand has left
        _send(pub, 0, camera="other")  # another camera's first frame
        got = _until(sub, 0)
        assert sorted((p.camera["id"], p.frame_id, p.track_id) for p in got) == [("desk", 500, 1), ("other", 0, 1),
                                                                                  ("other", 0, 2)]  # fmt: skip
        start = time.monotonic()
        assert sub.latest(wait=0.2) == [] and 0.15 < time.monotonic() - start < 2.0  # waits as told, then empty
    finally:
        sub.close()
        pub.close()
