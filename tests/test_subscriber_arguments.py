"""``PoseSubscriber``'s arguments: a bad one is a one-line ValueError when the subscriber is made, not an error from
deep inside its first read."""

from __future__ import annotations

import re

import numpy as np
import pytest

from streamhand.stream.client import PoseSubscriber
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"timeout": -1}, "timeout -1: give seconds"),
        ({"timeout": "5"}, "timeout '5': give seconds"),
        ({"timeout": float("nan")}, "timeout nan: give seconds"),
        ({"timeout": float("inf")}, "timeout inf: give seconds"),
        ({"timeout": True}, "timeout True: give seconds"),
        ({"control_timeout": -0.5}, "control_timeout -0.5: give seconds"),
        ({"control": "tcp://127.0.0.1:{port}"}, "give one of them"),
        ({"topics": ("status",)}, "without raw=True"),
        ({"curve_server_key": "server.key"}, "go together"),
    ],
)
def test_bad_arguments_say_so_at_once(kwargs, says):
    port = free_port()
    kwargs = {k: v.format(port=port) if k == "control" else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=says) as e:
        PoseSubscriber(f"tcp://127.0.0.1:{port}", **kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("timeout", [None, 0, 0.2, 3, np.float32(1.5), 1e6])
def test_waits_it_takes(timeout):
    sub = PoseSubscriber(f"tcp://127.0.0.1:{free_port()}", timeout=timeout)
    try:
        assert sub.timeout == timeout
    finally:
        sub.close()


def test_a_timeout_of_0_takes_what_is_queued():
    """``timeout=0`` (do not wait): the messages already queued, then ``TimeoutError``. It raised at once, queued
    messages or not (the deadline had passed before the queue was looked at)."""
    import time

    from streamhand.stream import protocol
    from streamhand.stream.publish import Publisher

    port = free_port()
    pub = Publisher(port=port, control_port=None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("",), raw=True, timeout=0)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the subscription has reached the publisher
            pub.publish(protocol.TOPIC_LOG + ".info", {"level": "info", "msg": "warm-up"})
            time.sleep(0.05)
            try:
                sub.recv()
                break
            except TimeoutError:
                continue
        time.sleep(0.2)
        while True:  # the warm-up's last messages
            try:
                sub.recv()
            except TimeoutError:
                break
        for i in range(3):
            pub.publish(protocol.TOPIC_LOG + ".info", {"level": "info", "msg": f"m{i}"})
        time.sleep(0.3)
        assert [sub.recv().data["msg"] for _ in range(3)] == ["m0", "m1", "m2"]
        with pytest.raises(TimeoutError):
            sub.recv()
    finally:
        sub.close()
        pub.close()


def test_a_publisher_of_another_schema_is_named_and_the_timeout_says_what_came(caplog):
    """Poses of another schema version were skipped as malformed and the subscriber then raised "nothing received
    from ... in N s" though hundreds had come: one warning names the versions, the timeout says what was skipped."""
    import logging
    import threading
    import time

    from streamhand.stream import protocol
    from streamhand.stream.publish import Publisher

    port = free_port()
    pub, stop = Publisher(port=port, control_port=None), threading.Event()
    pose = {"frame_id": 1, "track_id": 1, "handedness": "right", "joints_cam": [[0.0, 0.0, 0.5]] * 21}

    def publish() -> None:
        while not stop.is_set():
            pub.publish("hand.pose.right", {**pose, "schema": protocol.SCHEMA + 1})
            time.sleep(0.02)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", timeout=1.5)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(TimeoutError) as e:
            next(iter(sub))
    finally:
        stop.set()
        t.join(5)
        sub.close()
        pub.close()
    said = [r.getMessage() for r in caplog.records if "sends schema" in r.getMessage()]
    assert len(said) == 1 and f"sends schema {protocol.SCHEMA + 1}, and this streamhand" in said[0], said
    assert f"reads schema {protocol.SCHEMA}: its poses are skipped" in said[0]
    assert re.search(r"no readable pose from .* in 1.5 s: \d+ skipped as malformed \(the last: .*schema", str(e.value))
