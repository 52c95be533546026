"""``PoseSubscriber.latest()``: a consumer slower than the stream gets the newest whole frame's hands, not the backlog
that ZeroMQ and the system buffer for it, never half a frame, and nothing of a camera whose newest frame has no hands
(real publisher and subscriber over TCP)."""

from __future__ import annotations

import threading
import time

import msgspec
import pytest

from streamhand.stream import schema
from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from tests.conftest import free_port
from tests.helpers import drain
from tests.test_schema import _pose


def _send(pub: Publisher, frame: int, camera: str = "desk", tracks: tuple[int, ...] = (1, 2), bad: bool = False):
    """One frame as a run publishes it: its poses, then its ``hand.frame``, then a ``status`` (``bad``: the last
    pose is malformed)."""
    cam = msgspec.structs.replace(_pose().camera, id=camera)
    hands = []
    for track, hand in zip(tracks, ("left", "right")):
        m = _pose(topic=f"hand.pose.{hand}", handedness=hand, track_id=track, frame_id=frame, camera=cam)
        body = schema.body(m)
        if bad and track == tracks[-1]:
            body["joints_cam"] = [[0.0, 0.0]]
        pub.publish(m.topic, body)
        hands.append(schema.HandSummary(track_id=track, handedness=hand, score=0.9))
    f = schema.FrameMsg(topic="hand.frame", frame_id=frame, t_capture=1.0, t_capture_unix=1.7e9, camera=cam,
                        hands=hands, latency_ms={})  # fmt: skip
    pub.publish("hand.frame", schema.body(f))
    pub.publish("status", {"x": frame})  # another topic between frames


def _hands(got) -> list[tuple]:
    return sorted((p.camera["id"], p.frame_id, p.track_id) for p in got)


def _until(sub: PoseSubscriber, camera: str, frame: int) -> list:
    """``latest()`` until ``camera``'s frame ``frame`` is among what it gives (TCP delivers in order)."""
    deadline = time.monotonic() + 10
    got: list = []
    while time.monotonic() < deadline and not any((p.camera["id"], p.frame_id) == (camera, frame) for p in got):
        got = sub.latest(wait=1.0) or got
    return got


def test_a_slow_consumer_gets_the_newest_whole_frame_not_the_backlog():
    port = free_port()
    pub = Publisher("127.0.0.1", port, None, sndhwm=100_000)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.pose", "status"), raw=True)
    try:
        time.sleep(0.3)  # the subscription reaches the publisher
        for frame in range(500):  # a backlog: 1 000 poses, 500 frame ends and 500 status messages waiting
            _send(pub, frame)
        assert _hands(_until(sub, "desk", 499)) == [("desk", 499, 1), ("desk", 499, 2)]
        assert sub.gaps == 0 and sub.latest(wait=0.0) is None  # drained: nothing new has come
        _send(pub, 500, tracks=(1,))  # the second hand has left
        _send(pub, 0, camera="other")  # another camera's first frame
        assert _hands(_until(sub, "other", 0)) == [("desk", 500, 1), ("other", 0, 1), ("other", 0, 2)]
        _send(pub, 501, tracks=())  # no hand in view now: an answer, and none of this camera's
        assert sub.latest(wait=5.0) == []
        _send(pub, 7, camera="other")  # a restarted run counts its frames from 0 again: its newest is the last come
        assert _hands(_until(sub, "other", 7)) == [("other", 7, 1), ("other", 7, 2)]
        _send(pub, 8, camera="other", bad=True)  # a malformed pose: skipped, the rest of its frame given
        assert _hands(_until(sub, "other", 8)) == [("other", 8, 1)] and sub.malformed == 1
        start = time.monotonic()
        assert sub.latest(wait=0.2) is None and 0.15 < time.monotonic() - start < 2.0  # waits as told, then None
        assert all(m.topic != "hand.frame" for m in _drain_raw(pub, sub))  # iterating is not given the frame ends
    finally:
        sub.close()
        pub.close()


def _drain_raw(pub: Publisher, sub: PoseSubscriber) -> list:
    _send(pub, 9, camera="other")
    sub.timeout = 1.0
    return drain(sub)


def test_a_frame_is_never_given_half():
    """Frames of two hands at 200 a second while the consumer asks at its own pace: every answer has both."""
    port = free_port()
    pub = Publisher("127.0.0.1", port, None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}")
    stop = threading.Event()

    def stream() -> None:
        frame = 0
        while not stop.is_set():
            _send(pub, frame)
            frame += 1
            time.sleep(0.005)

    t = threading.Thread(target=stream, daemon=True)
    try:
        time.sleep(0.3)
        t.start()
        answers = [sub.latest(wait=1.0) for _ in range(60)]
        assert all(len(a) == 2 and len({p.frame_id for p in a}) == 1 for a in answers), [len(a) for a in answers]
    finally:
        stop.set()
        t.join(5)
        sub.close()
        pub.close()


def _poses_only(pub: Publisher, frame: int, camera: str, tracks: tuple[int, ...] = (1, 2)) -> None:
    """A frame's poses without its ``hand.frame`` (a recording of poses alone, an older publisher)."""
    cam = msgspec.structs.replace(_pose().camera, id=camera)
    for track, hand in zip(tracks, ("left", "right")):
        m = _pose(topic=f"hand.pose.{hand}", handedness=hand, track_id=track, frame_id=frame, camera=cam)
        pub.publish(m.topic, schema.body(m))


def test_frames_without_an_end_a_camera_stopped_mid_frame_and_a_lost_pose():
    """A camera that sends no ``hand.frame`` has its frames given once the next begins or 0.1 s has passed; one
    stopped mid-frame does not hold up another camera's answer (it took as long as the other kept streaming); a
    frame whose end lists a hand that never came is not given as whole."""
    port = free_port()
    pub = Publisher("127.0.0.1", port, None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}")
    stop = threading.Event()
    try:
        time.sleep(0.3)
        for frame in range(3):
            _poses_only(pub, frame, "poses-only")
        got = _until(sub, "poses-only", 2)
        assert _hands(got) == [("poses-only", 2, 1), ("poses-only", 2, 2)]
        _send(pub, 0, camera="A")
        _poses_only(pub, 1, "A", tracks=(1,))  # A stops mid-frame: its end never comes

        def stream_b() -> None:
            frame = 0
            while not stop.is_set():
                _send(pub, frame, camera="B")
                frame += 1
                time.sleep(0.01)

        t = threading.Thread(target=stream_b, daemon=True)
        t.start()
        time.sleep(0.5)
        begun = time.monotonic()
        got = sub.latest(wait=0.0)
        assert time.monotonic() - begun < 1.0 and got is not None and {p.camera["id"] for p in got} >= {"B"}
        assert all(p.frame_id == 0 for p in got if p.camera["id"] == "A")  # A's half frame is not given
        stop.set()
        t.join(5)
        sub.latest(wait=1.0)  # drained
        lost = _pose(topic="hand.pose.left", handedness="left", track_id=1, frame_id=9,
                     camera=msgspec.structs.replace(_pose().camera, id="C"))  # fmt: skip
        pub.publish(lost.topic, schema.body(lost))
        hands = [schema.HandSummary(track_id=1, handedness="left", score=0.9),
                 schema.HandSummary(track_id=2, handedness="right", score=0.9)]  # the second pose was lost
        f = schema.FrameMsg(topic="hand.frame", frame_id=9, t_capture=1.0, t_capture_unix=1.7e9, camera=lost.camera,
                            hands=hands, latency_ms={})  # fmt: skip
        pub.publish("hand.frame", schema.body(f))
        assert sub.latest(wait=1.0) is None  # half a frame: nothing whole came
    finally:
        stop.set()
        sub.close()
        pub.close()


def test_closing_from_another_thread_ends_a_read_in_progress_cleanly():
    """A node shutting down closes its subscriber from another thread while the reading thread waits: ZeroMQ's
    sockets are one thread's, and this aborted the process (SIGABRT) or left the reader blocked for ever. The
    reader's loop ends, `recv` and `latest` raise SubscriberClosed, and closing again does nothing."""
    from streamhand.stream.client import SubscriberClosed

    port = free_port()
    pub = Publisher(port=port, control_port=None)
    try:
        for blocking in ("iterate", "recv", "latest"):
            sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", timeout=None)
            ended: list = []

            def read(sub=sub, blocking=blocking, ended=ended) -> None:
                try:
                    if blocking == "iterate":
                        ended.extend(list(sub))
                        ended.append("loop ended")
                    elif blocking == "recv":
                        sub.recv()
                    else:
                        sub.latest(wait=None)
                except SubscriberClosed as e:
                    ended.append(type(e).__name__)

            th = threading.Thread(target=read)
            th.start()
            time.sleep(0.3)  # the reader waits on the socket
            t0 = time.monotonic()
            sub.close()
            th.join(5)
            assert not th.is_alive() and time.monotonic() - t0 < 2
            assert ended == (["loop ended"] if blocking == "iterate" else ["SubscriberClosed"])
            sub.close()
            with pytest.raises(SubscriberClosed, match="closed"):
                sub.recv()
            with pytest.raises(SubscriberClosed, match="closed"):
                sub.latest()
    finally:
        pub.close()


def test_a_subscriber_used_in_a_forked_child_says_so():
    """A subscriber made before a fork hung in the child (its sockets are the parent's); it now says to make a new
    one, and the child's close() leaves the parent's sockets alone."""
    import multiprocessing as mp

    sub = PoseSubscriber(f"tcp://127.0.0.1:{free_port()}", timeout=0.2)

    def child(q) -> None:
        try:
            sub.recv()
            q.put("read")
        except RuntimeError as e:
            sub.close()
            q.put(str(e))

    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=child, args=(q,))
    p.start()
    said = q.get(timeout=30)
    p.join(30)
    assert "made in another process" in said
    with pytest.raises(TimeoutError):  # the parent's own still works
        sub.recv()
    sub.close()
