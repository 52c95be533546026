"""Subscribe to streamhand's pose stream: ``PoseSubscriber`` yields typed ``HandPose`` objects.

Imports only numpy, pyzmq, msgpack and msgspec (through :mod:`streamhand.stream.protocol`): no torch, no MediaPipe.

    from streamhand.stream.client import PoseSubscriber
    for pose in PoseSubscriber("tcp://127.0.0.1:5560"):
        print(pose.handedness, pose.joints_cam[8])  # index fingertip, metres, camera frame
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import msgspec
import numpy as np
import zmq

from streamhand.stream import protocol
from streamhand.stream.schema import HandPoseMsg
from streamhand.version import __version__

log = logging.getLogger(__name__)

#: the fields a :class:`HandPose` holds as numpy arrays (float64)
_ARRAYS = ("joints_cam", "joints_rel", "joints_2d", "joint_std")


@dataclass
class HandPose:
    """One hand in one frame: the fields of :class:`streamhand.stream.schema.HandPoseMsg` (docs/protocol_fields.md),
    its arrays as numpy arrays, ``camera`` as a dict; ``gap`` and the decoded map ``raw`` besides."""

    topic: str
    seq: int
    frame_id: int
    track_id: int
    handedness: str
    handedness_score: float
    score: float
    joints_cam: np.ndarray  # (21, 3) metres, camera frame (x right, y down, z forward)
    joints_rel: np.ndarray  # (21, 3) metres, relative to the wrist
    joints_2d: np.ndarray  # (21, 2) pixels
    joint_std: np.ndarray  # (21,) metres
    root_source: str
    t_capture: float
    t_capture_unix: float
    t_publish: float
    camera: dict
    modalities: list[str]
    model: str
    latency_ms: dict
    quality: float | None = None  # expected mean joint error (metres): the error model's, else mean joint_std
    confidence: float | None = None  # chance that the mean joint error is below 2 cm (None: no error model)
    low_confidence: bool = False  # below the run's --min-confidence (with --low-confidence flag)
    gap: int = 0  # messages of this topic missed just before this one
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_struct(cls, m: HandPoseMsg, gap: int = 0, raw: dict | None = None) -> HandPose:
        """The one place a pose message becomes a :class:`HandPose`."""
        kw = {f: getattr(m, f) for f in cls.__dataclass_fields__ if f not in ("gap", "raw")}
        for f in _ARRAYS:
            kw[f] = np.asarray(kw[f], dtype=float)
        kw["camera"] = msgspec.structs.asdict(m.camera)
        return cls(**kw, gap=gap, raw=msgspec.to_builtins(m) if raw is None else raw)

    @classmethod
    def from_message(cls, topic: str, msg: dict, gap: int = 0) -> HandPose:
        """A decoded pose map -> :class:`HandPose`; raises ``ValueError`` when it does not follow the schema."""
        m, problems = protocol.parse(topic, msg)
        if not isinstance(m, HandPoseMsg):
            raise ValueError("; ".join(problems[:3]) or f"{topic[:40]!r} is not a pose topic")
        return cls.from_struct(m, gap, raw=msg)


@dataclass
class Message:
    topic: str
    data: dict
    gap: int = 0
    payload: bytes = field(default=b"", repr=False)  # the msgpack map as received (what a recording keeps)


def _is_wait(seconds: object) -> bool:
    """Whether ``seconds`` is a wait a subscriber takes: None (for ever) or a number from 0 to the longest."""
    if seconds is None:
        return True
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)):
        return False
    return 0 <= float(seconds) <= protocol.MAX_WAIT_S  # NaN fails both


def _connect(sock: zmq.Socket, endpoint: str, what: str) -> None:
    """Connect, or a ValueError in one line naming the endpoint (ZeroMQ says only "Invalid argument", or nothing)."""
    why = protocol.out_of_range_port(endpoint)
    if why is not None:
        sock.close(0)
        raise ValueError(f"{what} {endpoint!r}: {why}")
    if protocol.is_ipv6(endpoint):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as e:
        sock.close(0)
        raise ValueError(f"{what} {endpoint!r}: not a ZeroMQ endpoint ({e}); give tcp://HOST:PORT, "
                         f"e.g. tcp://127.0.0.1:{protocol.DEFAULT_PUB_PORT}") from None  # fmt: skip


def check_endpoint(endpoint: str, what: str) -> None:
    """A ValueError in one line, naming ``what``, where ``endpoint`` is no ZeroMQ endpoint a socket can connect to
    (nothing is sent: connecting is ZeroMQ's background work)."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    _connect(sock, endpoint, what)
    sock.close(0)


#: how long :meth:`PoseSubscriber.latest` waits for a frame's ``hand.frame`` once its poses have come (they are sent
#: back to back)
_FRAME_END_S = 0.1
_FRAME_TOPIC = protocol.TOPIC_FRAME.encode()
#: the most messages one :meth:`PoseSubscriber.latest` reads (a stream that comes faster than it drains ends it)
_MOST_DRAINED = 100_000
#: how often a read waiting on the socket looks whether :meth:`PoseSubscriber.close` came from another thread
#: (milliseconds; a ZeroMQ socket is one thread's at a time, so the closing thread waits for the reader to let go)
_CLOSE_CHECK_MS = 100
#: past a read's deadline, the messages already queued are still read for this long (seconds) at most
_DRAIN_S = 0.05
#: ``PoseSubscriber(control_timeout=...)`` left out: the control socket is waited for as long as ``timeout`` says
_AS_TIMEOUT = object()


class SubscriberClosed(RuntimeError):
    """The :class:`PoseSubscriber` was closed (by another thread, while this one read: its read ends with this)."""


class PoseSubscriber:
    """Iterate :class:`HandPose` objects (``raw=True``: every :class:`Message` of the subscribed topics).

    ``address`` is the PUB endpoint, or give ``control`` (the REP endpoint) to ask it for the PUB port.
    ``timeout`` (seconds) raises ``TimeoutError`` when nothing arrives in time; the control socket is waited for as
    long (``control_timeout`` apart: None waits for ever, as ``timeout`` None does; a ``timeout`` of 0 gives it 5 s).
    A server with CurveZMQ needs
    ``curve_server_key`` (its ``.key`` file) and ``curve_client_key`` (this client's ``.key_secret``, whose
    public half the server allows).

    Bytes from the network are decoded within bounds (:func:`streamhand.stream.protocol.decode`), then a pose into
    :class:`streamhand.stream.schema.HandPoseMsg` with strict types; a message that is not one of ours (malformed, or a
    pose with missing fields or wrong types or shapes) is logged, counted in ``malformed`` and skipped.
    """

    def __init__(
        self,
        address: str | None = None,
        topics: tuple[str, ...] | list[str] = (protocol.TOPIC_POSE,),
        timeout: float | None = None,
        control: str | None = None,
        raw: bool = False,
        context: zmq.Context | None = None,
        curve_server_key: str | None = None,
        curve_client_key: str | None = None,
        control_timeout: float | object | None = _AS_TIMEOUT,
    ):
        self.topics = (topics,) if isinstance(topics, str) else tuple(topics)
        pose = protocol.TOPIC_POSE + "."
        if not raw and not any(pose.startswith(t) or t.startswith(protocol.TOPIC_POSE) for t in self.topics):
            raise ValueError(f"topics {list(self.topics)}: without raw=True a PoseSubscriber yields hand poses only, "
                             f"and none of these topics carries one; subscribe to {protocol.TOPIC_POSE} or give "
                             "raw=True")  # fmt: skip
        self._ctx = context or zmq.Context.instance()
        self._curve = None
        if (curve_server_key is None) != (curve_client_key is None):
            raise ValueError(
                "--curve-server-key and --curve-client-key go together (CurveZMQ needs the server's "
                "public key and this client's secret key file)"
            )
        if curve_server_key is not None:
            self._curve = (curve_server_key, curve_client_key)
        for name, wait in (("timeout", timeout), ("control_timeout", control_timeout)):
            if wait is not _AS_TIMEOUT and not _is_wait(wait):
                raise ValueError(f"{name} {wait!r}: give seconds (a number from 0 to {protocol.MAX_WAIT_S:.0f}) or "
                                 "None to wait for ever")  # fmt: skip
        if address is not None and control is not None:
            raise ValueError(f"--address {address} and --control {control}: give one of them (--control asks the "
                             "stream's control socket for the address)")  # fmt: skip
        if address is None:
            if control is None:
                address = f"tcp://127.0.0.1:{protocol.DEFAULT_PUB_PORT}"
            else:
                if control_timeout is not _AS_TIMEOUT:
                    wait = control_timeout
                else:  # as ``timeout``; 0 (do not wait for a message) still gives the control socket 5 s
                    wait = timeout if timeout is None or timeout > 0 else 5.0
                address = self._address_from_control(control, wait)  # type: ignore[arg-type]
        self.address, self.timeout, self.raw = address, timeout, raw
        self._sock = self._ctx.socket(zmq.SUB)
        self._secure(self._sock)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_MESSAGE_BYTES + 4096)
        #: whether the caller's topics take ``hand.frame``; :meth:`latest` reads it in any case, as the end of a frame
        self._frames_wanted = any(protocol.TOPIC_FRAME.startswith(t) for t in self.topics)
        for t in self.topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        if not self._frames_wanted:
            self._sock.setsockopt(zmq.SUBSCRIBE, _FRAME_TOPIC)
        _connect(self._sock, address, "--address")
        self._reading = threading.Lock()  # held while a thread reads the socket; close() waits for it
        self._closing = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._last_seq: dict[tuple[str, str], int] = {}
        self.gaps = 0
        #: the cameras that have sent a ``hand.frame`` (:meth:`latest` waits for their frames' ends)
        self._framed: set[str] = set()
        self.malformed = 0
        self._last_warning = 0.0
        self._last_skipped = ""  # why the last message skipped was
        self._other_schema_said = False  # the one warning that the publisher speaks another schema version

    def _secure(self, sock: zmq.Socket) -> None:
        if self._curve is not None:
            from streamhand.stream.security import apply_client

            apply_client(sock, *self._curve)

    def _address_from_control(self, control: str, timeout: float | None) -> str:
        """The PUB endpoint the control socket at ``control`` names, waiting up to ``timeout`` s (None: for ever) for
        its answer; a ``TimeoutError``, or a ValueError where it names none (a run that publishes through a proxy)."""
        req = self._ctx.socket(zmq.REQ)
        self._secure(req)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, -1 if timeout is None else max(int(1000 * timeout), 1))
        _connect(req, control, "--control")
        try:
            req.send(b"PUB_PORT")
            answer = req.recv().decode("utf-8", "replace").strip()
        except zmq.Again:
            raise TimeoutError(f"no answer from the control socket at {control} in {timeout:g} s") from None
        finally:
            req.close(0)
        if not answer.isdigit():
            raise ValueError(f"the control socket at {control} names no port to subscribe to: {answer}")
        host = control.rsplit(":", 1)[0]
        return f"{host}:{int(answer)}"

    def recv(self) -> Message:
        """The next well-formed message of the subscribed topics (malformed ones are skipped)."""
        with self._reader():
            return self._recv_by(None if self.timeout is None else time.monotonic() + self.timeout)

    @contextmanager
    def _reader(self) -> Iterator[None]:
        """This thread reads the sockets for the block; :class:`SubscriberClosed` once closed, a RuntimeError in a
        process forked from the one that made the subscriber (its sockets are that process's)."""
        if os.getpid() != self._pid:
            raise RuntimeError("this PoseSubscriber was made in another process (before a fork); make a new one in "
                               "this process")  # fmt: skip
        with self._reading:
            if self._closed:
                raise SubscriberClosed("the PoseSubscriber is closed")
            yield

    def _ready(self, timeout_ms: int) -> bool:
        """Whether a message waits, within ``timeout_ms`` (-1: for ever); :class:`SubscriberClosed` where
        :meth:`close` came meanwhile (it is looked for every :data:`_CLOSE_CHECK_MS`)."""
        end = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0
        while True:
            left = _CLOSE_CHECK_MS if end is None else min(_CLOSE_CHECK_MS, int((end - time.monotonic()) * 1000))
            waiting = self._sock.poll(max(left, 0))
            if self._closed:
                raise SubscriberClosed("the PoseSubscriber was closed while reading")
            if waiting or (end is not None and time.monotonic() >= end):
                return bool(waiting)

    def _recv_by(self, deadline: float | None) -> Message:
        """:meth:`recv`, a ``TimeoutError`` where nothing well-formed arrived by ``deadline`` (``time.monotonic``)."""
        while True:
            # past the deadline only what is queued already is read (``timeout=0``: what came before the call), and
            # for :data:`_DRAIN_S` at most: it gives up even while messages still queue (a flood of ones it skips)
            now = time.monotonic()
            if deadline is not None and now >= deadline + _DRAIN_S:
                raise TimeoutError(f"nothing received from {self.address} in {self.timeout} s")
            left = -1 if deadline is None else max(int((deadline - now) * 1000), 0)
            if not self._ready(left):
                raise TimeoutError(f"nothing received from {self.address} in {self.timeout} s")
            m = self._decoded(self._sock.recv_multipart())
            if m is not None:
                return m

    def _decoded(self, parts: list, pass_frames: bool = False) -> Message | None:
        """One received message, its ``seq`` gap counted; None (logged, counted) where it is malformed, and None where
        it is a ``hand.frame`` that only :meth:`latest` subscribed to (``pass_frames``: it is :meth:`latest` asking)."""
        unasked = not self._frames_wanted and bool(parts) and parts[0] == _FRAME_TOPIC
        if unasked and not pass_frames:
            return None
        try:
            topic, msg = protocol.decode(parts)
            seq = msg.get("seq", -1)
            if isinstance(seq, bool) or not isinstance(seq, int):
                raise protocol.MalformedMessage(f"seq {str(seq)[:20]!r} is not an integer")
        except protocol.MalformedMessage as e:
            self._skip(e)
            return None
        cam = msg.get("camera")
        key = (topic, str(cam.get("id", ""))[:64] if isinstance(cam, dict) else "")  # per publisher (camera)
        last = self._last_seq.get(key)
        gap = max(0, seq - last - 1) if last is not None and seq >= 0 else 0
        self._last_seq[key] = seq
        self.gaps += 0 if unasked else gap
        return Message(topic, msg, gap, bytes(parts[1]))

    def _skip(self, why: Exception) -> None:
        self.malformed += 1
        self._last_skipped = str(why)[:200]
        now = time.monotonic()
        if now - self._last_warning > 5.0:  # a flood of garbage must not flood the log
            self._last_warning = now
            log.warning("skipped a malformed message from %s (%s; %d so far)", self.address, why, self.malformed)

    def __iter__(self) -> Iterator[HandPose | Message]:
        """Every message (``raw``) or hand pose; ``timeout`` counts from the last one yielded, so messages skipped in
        between (malformed, or not poses) do not hold it off."""
        while True:
            deadline = None if self.timeout is None else time.monotonic() + self.timeout
            skipped = self.malformed
            while True:
                try:
                    with self._reader():  # not held while the caller works on what it was given
                        m = self._recv_by(deadline)
                except SubscriberClosed:
                    return  # closed (by another thread): the loop over the poses ends
                except TimeoutError as e:  # messages came, but none it could give: said, not "nothing received"
                    if self.malformed > skipped:
                        raise TimeoutError(f"no readable {'message' if self.raw else 'pose'} from {self.address} in "
                                           f"{self.timeout} s: {self.malformed - skipped} skipped as malformed (the "
                                           f"last: {self._last_skipped})") from None  # fmt: skip
                    raise e from None
                if self.raw:
                    yield m
                    break
                if m.topic.startswith(protocol.TOPIC_POSE + "."):
                    pose = self._pose(m)
                    if pose is not None:
                        yield pose
                        break

    def _pose(self, m: Message) -> HandPose | None:
        """A pose message as a :class:`HandPose`, every field's type and shape checked; None (logged, counted) where
        one is wrong or missing."""
        msg, problems = protocol.parse(m.topic, m.data)  # into schema.HandPoseMsg
        if isinstance(msg, HandPoseMsg):
            return HandPose.from_struct(msg, m.gap, raw=m.data)
        other = m.data.get("schema")
        if other != protocol.SCHEMA and not self._other_schema_said:  # not damage: another version speaking
            self._other_schema_said = True
            log.warning("%s sends schema %s, and this streamhand (%s) reads schema %d: its poses are skipped; run the "
                        "same streamhand version on both sides", self.address, str(other)[:20], __version__,
                        protocol.SCHEMA)  # fmt: skip
        self._skip(protocol.MalformedMessage("; ".join(problems[:3])))
        return None

    def latest(self, wait: float | None = 0.0) -> list[HandPose] | None:
        """The hands of the newest whole frame of each camera among what has arrived since the last call, the queue
        drained: a consumer slower than the stream (a control loop at 10 Hz) gets the present, not a backlog that
        ZeroMQ's and the system's buffers keep for it (iterating reads every message in order, seconds late once it
        falls behind). A frame is whole when its ``hand.frame`` has come with every hand it lists (it follows the
        frame's poses; a subscriber takes that topic for this in any case, and gives it out only where asked): so a
        frame is never half-given, and a newest frame without hands gives none of that camera's (an empty list where
        no camera's newest frame has one). A camera that has sent no ``hand.frame`` (a recording of poses alone, an
        older publisher) has its frames taken as whole once a newer one begins or :data:`_FRAME_END_S` has passed.
        Waits up to ``wait`` seconds (None: for ever) for a first whole frame, and at most :data:`_FRAME_END_S` more
        for a frame's end; None when no whole frame came (nothing new: the last answer stands). ``gap`` counts every
        message of the topic missed on the way, drained ones not included."""
        with self._reader():
            return self._latest(wait)

    def _latest(self, wait: float | None) -> list[HandPose] | None:
        """:meth:`latest`, this thread reading."""
        deadline = None if wait is None else time.monotonic() + wait
        whole: dict[str, list[Message]] = {}  # camera id -> the poses of its newest whole frame
        partial: dict[str, tuple[object, float, list[Message]]] = {}  # camera -> (frame_id, when begun, its poses)
        settle_by: float | None = None  # once a frame is whole: the latest moment to stop for another's end

        def close(key: str) -> None:  # a frame without its end, of a camera that sends none: taken as whole
            got = partial.pop(key)
            if key not in self._framed:
                whole[key] = got[2]

        for _ in range(_MOST_DRAINED):
            now = time.monotonic()
            for key in [k for k, (_f, begun, _m) in partial.items() if now - begun > _FRAME_END_S]:
                close(key)  # its end never came: a publisher that stopped mid-frame, or one that sends no ends
            if whole and settle_by is None:
                settle_by = now + _FRAME_END_S
            if settle_by is not None and now > settle_by:
                break
            if not self._ready(0):  # the queue is drained
                if whole and not partial:
                    break
                # a half frame's end follows its poses at once: wait for it a little, else as long as asked
                until = min(begun for _f, begun, _m in partial.values()) + _FRAME_END_S if partial else deadline
                left = None if until is None else until - time.monotonic()
                if (left is not None and left <= 0) or not self._ready(-1 if left is None else int(left * 1e3) + 1):
                    if partial:
                        continue  # the stale half frames are closed above
                    return None  # nothing whole by the deadline
                continue
            m = self._decoded(self._sock.recv_multipart(), pass_frames=True)
            if m is None:
                continue
            cam, frame = m.data.get("camera"), m.data.get("frame_id")
            key = str(cam.get("id", "")) if isinstance(cam, dict) else ""
            if m.topic == protocol.TOPIC_FRAME:  # the frame's end: messages come in order, so it is the newest
                self._framed.add(key)
                got = partial.pop(key, None)
                poses = got[2] if got is not None and got[0] == frame else []
                listed = m.data.get("hands")
                if isinstance(listed, list) and len(listed) == len(poses):  # none of its poses lost on the way
                    whole[key] = poses
            elif m.topic.startswith(protocol.TOPIC_POSE + "."):
                got = partial.get(key)
                if got is not None and got[0] != frame:  # a newer frame begins: the last one had no end
                    close(key)
                    got = None
                if got is None:
                    partial[key] = (frame, time.monotonic(), [m])
                else:
                    got[2].append(m)
        if not whole:
            return None
        return [pose for messages in whole.values() for m in messages if (pose := self._pose(m)) is not None]

    def close(self) -> None:
        """Close the socket (once; again does nothing). From another thread while one reads: that read ends within
        :data:`_CLOSE_CHECK_MS` (iterating stops; :meth:`recv` and :meth:`latest` raise :class:`SubscriberClosed`),
        then the socket closes."""
        if os.getpid() != self._pid:  # a forked child's copy: the sockets are the parent's
            return
        with self._closing:
            if self._closed:
                return
            self._closed = True  # a thread waiting on the socket sees it within _CLOSE_CHECK_MS and lets go
            with self._reading:
                self._sock.close(0)

    def __enter__(self) -> PoseSubscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
