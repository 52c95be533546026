"""ZeroMQ publisher (PUB) and control socket (REP, like Pupil Remote).

Control commands (plain strings): ``PUB_PORT`` -> the PUB port; ``t`` -> the monotonic clock that
``t_capture`` uses; ``stats`` / ``config`` -> msgpack maps; ``stop`` -> "ok" and the run stops.
Anything else (several parts, not UTF-8, an unknown command) is answered ``error: ...`` and the socket keeps
serving; a request over ``MAX_REQUEST_BYTES`` is dropped by ZeroMQ itself (its peer is disconnected).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from streamhand.stream import protocol
from streamhand.stream.connect_watch import watch_connect

log = logging.getLogger(__name__)


#: the longest control request accepted (the commands are a few bytes)
MAX_REQUEST_BYTES = 1024
_COMMANDS = "PUB_PORT, t, stats, config, stop"


class PortInUse(RuntimeError):
    pass


def _bind(sock: zmq.Socket, bind: str, port: int, flag: str) -> None:
    endpoint = protocol.tcp_endpoint(bind, port)
    if protocol.is_ipv6(endpoint):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as e:
        if e.errno in (errno.EADDRINUSE, zmq.EADDRINUSE):  # Python's and libzmq's numbers differ on Windows
            raise PortInUse(f"port {port} on {bind} is in use; choose another with {flag}") from None
        raise PortInUse(f"cannot bind {endpoint} ({e}); check --bind / {flag}") from None


#: how long a closing publisher keeps sending what it already queued for connected subscribers (milliseconds): the
#: last poses of a run reach them, and a stalled subscriber holds the close up no longer than this
FLUSH_MS = 500
#: how long after binding the first message waits (milliseconds), so that subscribers already trying the port (ZeroMQ
#: retries a refused connection every 100 ms) have joined: a run that starts fast (a single image, models already
#: loaded) otherwise publishes before they are there, and a PUB socket drops what no subscriber has asked for yet
JOIN_MS = 250


class Publisher:
    def __init__(
        self,
        bind: str = "127.0.0.1",
        port: int = protocol.DEFAULT_PUB_PORT,
        control_port: int | None = protocol.DEFAULT_CONTROL_PORT,
        sndhwm: int = 100,
        stats: Callable[[], dict] | None = None,
        config: Callable[[], dict] | None = None,
        on_stop: Callable[[], None] | None = None,
        connect: str | None = None,
        curve: tuple[str, str] | None = None,
        clock: Callable[[], float | None] = time.monotonic,
        context: zmq.Context | None = None,
    ):
        """Bind the PUB socket on ``bind:port``, or with ``connect`` (``tcp://host:port``) connect it to a
        :func:`run_proxy` instead (the control socket still binds locally). ``curve``: (the server's
        ``.key_secret`` file, the folder of allowed clients' ``.key`` files) encrypts both sockets and admits
        only those clients (:mod:`streamhand.stream.security`); raises
        :class:`~streamhand.stream.security.SecurityError`. ``clock``: what ``t`` answers (the clock of the
        messages' ``t_capture``; a replay's is the recording's, None before it has one). ``context``: the ZeroMQ
        context of the sockets (the process's shared one where not given; with ``curve`` its own)."""
        self.bind, self.port, self.control_port, self.connect = bind, port, control_port, connect
        self._clock = clock
        self._curve = None
        if curve is not None:
            from streamhand.stream.security import CurveServer

            self._ctx = zmq.Context()  # its own: one authenticator per context
            self._curve = CurveServer(curve[0], curve[1], self._ctx)
        else:
            self._ctx = context if context is not None else zmq.Context.instance()
        self._pub = self._ctx.socket(zmq.PUB)
        if self._curve is not None:
            self._curve.apply(self._pub)
        self._pub.setsockopt(zmq.SNDHWM, sndhwm)  # a slow subscriber loses messages, never stalls us
        self._pub.setsockopt(zmq.LINGER, 0)
        self._rep: zmq.Socket | None = None
        self._seq: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats, self._config, self._on_stop = stats, config, on_stop
        self.sent = 0  # a PUB socket never refuses one: a subscriber whose queue is full misses it, unsaid
        #: called with (topic, payload) of every message :meth:`publish` sends (``run --save``)
        self.taps: list[Callable[[str, bytes], None]] = []
        try:
            if connect is not None:
                why = protocol.out_of_range_port(connect)
                if why is not None:
                    raise PortInUse(f"--connect {connect}: {why}")
                if protocol.is_ipv6(connect):
                    self._pub.setsockopt(zmq.IPV6, 1)
                watch_connect(self._pub, connect)  # no proxy there, or not its frontend: warned, not silent
                try:
                    self._pub.connect(connect)
                except zmq.ZMQError as e:
                    raise PortInUse(f"--connect {connect}: not a ZeroMQ endpoint ({e}); give tcp://HOST:PORT") from None
            else:
                _bind(self._pub, bind, port, "--port")
            if control_port is not None:
                self._rep = self._ctx.socket(zmq.REP)
                if self._curve is not None:
                    self._curve.apply(self._rep)
                self._rep.setsockopt(zmq.LINGER, 0)
                self._rep.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
                _bind(self._rep, bind, control_port, "--control-port")
        except PortInUse:
            self.close()
            raise
        if self._rep is not None:
            self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
            self._thread.start()
        self._join_until: float | None = time.monotonic() + JOIN_MS / 1000.0

    def _let_subscribers_join(self) -> None:
        """Before the first message only: wait out what is left of :data:`JOIN_MS` since the socket was made."""
        if self._join_until is not None:
            time.sleep(max(0.0, self._join_until - time.monotonic()))
            self._join_until = None

    def publish(self, topic: str, msg: dict[str, Any]) -> None:
        with self._lock:
            self._let_subscribers_join()
            seq = self._seq.get(topic, 0)
            self._seq[topic] = seq + 1
            full = {"topic": topic, "schema": protocol.SCHEMA, "seq": seq, **msg, "t_publish": time.monotonic()}
            parts = protocol.encode(topic, full)
            for tap in self.taps:
                tap(topic, parts[1])
            self._pub.send_multipart(parts, flags=zmq.NOBLOCK)
            self.sent += 1

    def send_raw(self, topic: str, payload: bytes) -> None:
        """Send a message as it is (a replayed recording: its own ``seq`` and times, the same bytes)."""
        with self._lock:
            self._let_subscribers_join()
            self._pub.send_multipart([topic.encode(), payload], flags=zmq.NOBLOCK)
            self.sent += 1

    def _serve(self) -> None:
        assert self._rep is not None
        poller = zmq.Poller()
        poller.register(self._rep, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                if not dict(poller.poll(100)):
                    continue
                parts = self._rep.recv_multipart()
                self._rep.send(self._reply(parts))
            except zmq.ZMQError as e:
                if self._stop.is_set() or self._rep.closed or e.errno == zmq.ETERM:
                    break
                log.warning("control socket: %s", e)  # the peer went away mid-request; keep serving
                time.sleep(0.01)

    def _reply(self, parts: list[bytes]) -> bytes:
        """The answer to one request; never raises."""
        if len(parts) != 1:
            return f"error: send one-part requests ({_COMMANDS})".encode()
        try:
            cmd = parts[0].decode("utf-8").strip()
        except UnicodeDecodeError:
            return f"error: not a UTF-8 command ({_COMMANDS})".encode()
        try:
            return self._answer(cmd)
        except Exception as e:  # a failing stats/config callback must not kill the control thread
            log.warning("control command %r failed: %s: %s", cmd[:40], type(e).__name__, e)
            return f"error: {cmd[:40]!r} failed: {type(e).__name__}".encode()

    def _answer(self, cmd: str) -> bytes:
        if cmd == "PUB_PORT":
            if self.connect:  # nothing of this run's is bound to subscribe to: the proxy is where its stream is
                return (f"error: this run publishes through {self.connect} (a proxy's frontend); subscribe at the "
                        "proxy's backend port").encode()  # fmt: skip
            return str(self.port).encode()
        if cmd == "t":
            t = self._clock()
            return b"error: no message sent yet, so no clock" if t is None else repr(t).encode()
        if cmd == "stats":
            return msgpack.packb(protocol.to_wire(self._stats() if self._stats else {}), use_bin_type=True)
        if cmd == "config":
            return msgpack.packb(protocol.to_wire(self._config() if self._config else {}), use_bin_type=True)
        if cmd == "stop":
            if self._on_stop:
                self._on_stop()
            return b"ok"
        return f"error: unknown command {cmd[:40]!r} ({_COMMANDS})".encode()

    def close(self, flush_ms: int = FLUSH_MS) -> None:
        """Close both sockets; what is queued for connected subscribers still goes out for ``flush_ms`` at most (while
        the context lives: one's own, ended after, waits for it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if not self._pub.closed:  # what is queued for connected subscribers still goes out, for a bounded time
            self._pub.close(linger=flush_ms)
        if self._rep is not None and not self._rep.closed:
            self._rep.close(0)
        if self._curve is not None:
            self._curve.stop()
            self._curve = None
            self._ctx.term()


def run_proxy(bind: str, frontend_port: int, backend_port: int, stop: threading.Event | None = None,
              on_ready: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Forward every message from publishers connected to ``frontend_port`` (XSUB) to subscribers connected to
    ``backend_port`` (XPUB), subscriptions flowing back, until ``stop`` is set; ``on_ready`` is called once both ports
    are bound. Raises :class:`PortInUse`."""
    ctx = zmq.Context.instance()
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):
        sock.setsockopt(zmq.LINGER, 0)
    xpub.setsockopt(zmq.SNDHWM, 1000)  # a slow subscriber loses messages, never stalls the others
    try:
        _bind(xsub, bind, frontend_port, "--frontend-port")
        _bind(xpub, bind, backend_port, "--backend-port")
        if on_ready is not None:
            on_ready()
        poller = zmq.Poller()
        poller.register(xsub, zmq.POLLIN)
        poller.register(xpub, zmq.POLLIN)
        while stop is None or not stop.is_set():
            ready = dict(poller.poll(100))
            if xsub in ready:
                xpub.send_multipart(xsub.recv_multipart())  # XPUB drops for a full subscriber, never blocks
            if xpub in ready:
                xsub.send_multipart(xpub.recv_multipart())  # (un)subscriptions upstream
        _drain(xsub, xpub)
    finally:
        xsub.close(0)
        xpub.close(linger=FLUSH_MS)  # what was forwarded still reaches connected subscribers, for a bounded time


def _drain(xsub: zmq.Socket, xpub: zmq.Socket, most: int = 100_000) -> None:
    """Forward what has already reached the proxy when it is stopped (at most ``most`` messages)."""
    for _ in range(most):
        try:
            parts = xsub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        xpub.send_multipart(parts)


class ZmqLogHandler(logging.Handler):
    """Forwards log records (WARNING and up by default) to ``log.<level>`` topics, each naming ``camera_id`` (the
    run's camera, as its frames do) where one is given."""

    def __init__(self, publisher: Publisher, level: int = logging.WARNING, camera_id: str = ""):
        super().__init__(level)
        self.publisher = publisher
        # only the id is known of the camera here (as on a status before the first frame): the rest 0
        self.camera = {"id": camera_id, "width": 0, "height": 0, "fx": 0.0, "fy": 0.0, "cx": 0.0, "cy": 0.0} if (
            camera_id) else None  # fmt: skip

    def emit(self, record: logging.LogRecord) -> None:
        msg = {"level": record.levelname.lower(), "message": record.getMessage(), "logger": record.name}
        if self.camera is not None:
            msg["camera"] = self.camera
        try:
            self.publisher.publish(protocol.log_topic(record.levelname), msg)
        except Exception:  # logging must never raise
            pass
