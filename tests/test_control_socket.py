"""The control socket as programs meet it across processes: what PUB_PORT names for a run behind a proxy, how long a
subscriber waits for it, a `stop` that comes while the run is still loading, and the stream's text and warnings for
several cameras behind one proxy (real sockets, the real commands)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import zmq

from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from tests.conftest import free_port
from tests.helpers import ROOT, invoke

ENV = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamhand.cli", *args], cwd=str(ROOT), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_run_behind_a_proxy_names_no_port_of_its_own():
    """PUB_PORT answered the unused --port of a `run --connect`, so `--control` lookups read another stream there."""
    control = free_port()
    pub = Publisher(port=free_port(), control_port=control, connect=f"tcp://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(ValueError, match=r"names no port to subscribe to: error: this run publishes through "
                                             r"tcp://127.0.0.1:[0-9]+ .a proxy's frontend.") as e:  # fmt: skip
            PoseSubscriber(control=f"tcp://127.0.0.1:{control}", timeout=5)
        assert "\n" not in str(e.value)
    finally:
        pub.close()


def test_a_subscriber_waits_for_the_control_socket_as_long_as_it_is_told():
    control, port = free_port(), free_port()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer from the control socket at .* in 0.3 s"):
        PoseSubscriber(control=f"tcp://127.0.0.1:{control}", timeout=0.3)
    assert time.monotonic() - t0 < 3
    got: list = []

    def subscribe() -> None:  # started before the run: its control socket answers a second later
        try:
            got.append(PoseSubscriber(control=f"tcp://127.0.0.1:{control}", timeout=0.3, control_timeout=None))
        except Exception as e:  # reported below
            got.append(e)

    th = threading.Thread(target=subscribe)
    th.start()
    time.sleep(1.0)
    pub = Publisher(port=port, control_port=control)
    try:
        th.join(10)
        assert len(got) == 1 and isinstance(got[0], PoseSubscriber), got
        assert got[0].address == f"tcp://127.0.0.1:{port}"
        got[0].close()
    finally:
        pub.close()


def _ask(control: int, cmd: bytes, deadline_s: float) -> bytes:
    """``cmd`` on the control socket, retried until it answers (the run binds it while it starts)."""
    ctx = zmq.Context.instance()
    end = time.monotonic() + deadline_s
    while True:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 200)
        req.connect(f"tcp://127.0.0.1:{control}")
        try:
            req.send(cmd)
            return req.recv()
        except zmq.Again:
            if time.monotonic() > end:
                raise
        finally:
            req.close(0)


def test_a_stop_while_the_run_loads_stops_it():
    """`stop` was answered `ok` and forgotten while the models loaded; the run then streamed on."""
    control = free_port()
    run = _start("run", "--source", "demo", "--port", str(free_port()), "--control-port", str(control))
    try:
        assert _ask(control, b"stop", 60) == b"ok"
        _, err = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err[-1500:]
    assert "done: stopped before the first frame (a `stop` on the control socket, or a signal)" in err, err[-1500:]


def test_echo_names_each_messages_camera():
    port = free_port()
    pub = Publisher(port=port, control_port=None)
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            pub.publish("hand.frame", {"frame_id": 3, "camera": {"id": "desk", "width": 640, "height": 480, "fx": 500.0,
                                                                 "fy": 500.0, "cx": 320.0, "cy": 240.0}, "hands": []})
            time.sleep(0.05)

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    try:
        r = invoke("echo", "--address", f"tcp://127.0.0.1:{port}", "--count", "1", "--timeout", "20")
    finally:
        stop.set()
        th.join(5)
        pub.close()
    assert r.returncode == 0 and "hand.frame seq" in r.stdout and "frame 3 camera desk hands 0" in r.stdout, r.stdout


def test_connect_says_what_an_endpoint_is():
    r = invoke("run", "--connect", "foo")
    assert r.returncode == 2 and "'foo': a proxy's endpoint, tcp://HOST:PORT (or ipc://PATH)" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "pattern" not in r.stderr


@pytest.mark.slow
def test_a_run_behind_a_proxy_without_its_own_camera_id_is_warned(caplog):
    r = invoke("run", "--source", "demo", "--frames", "2", "--no-realtime", "--connect",
               f"tcp://127.0.0.1:{free_port()}", "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    said = "as camera 'demo', the source's name: give each run behind one proxy its own --camera-id"
    assert said in r.stderr + caplog.text


def test_view_saving_nothing_leaves_the_file_there(tmp_path):
    """`view --rerun --save` stopped with nothing received replaced a recording with an empty one."""
    pytest.importorskip("rerun")
    kept = tmp_path / "kept.rrd"
    kept.write_bytes(b"an earlier recording")
    v = _start("view", "--rerun", "--save", str(kept), "--address", f"tcp://127.0.0.1:{free_port()}")
    try:
        said = ""
        while "(Ctrl-C stops)" not in said:  # it has started and waits for the stream
            line = v.stderr.readline()
            assert line, said
            said += line
        v.send_signal(signal.SIGINT)
        _, err = v.communicate(timeout=30)
    finally:
        if v.poll() is None:
            v.kill()
            v.communicate()
    assert v.returncode == 0 and "nothing arrived from" in err and "no recording was written" in err, err[-1500:]
    assert kept.read_bytes() == b"an earlier recording" and [p.name for p in tmp_path.iterdir()] == ["kept.rrd"]


def test_a_publisher_bound_to_ipv6_is_reached_by_a_subscriber_over_ipv6():
    """``--bind ::1`` failed (ZeroMQ's sockets speak IPv4 unless told, and the address needs brackets); a subscriber
    finds the stream through the control socket at ``tcp://[::1]:PORT``."""
    from streamhand.stream import schema
    from tests.test_schema import _pose

    port, control = free_port(), free_port()
    pub = Publisher(bind="::1", port=port, control_port=control)
    try:
        sub = PoseSubscriber(control=f"tcp://[::1]:{control}", timeout=5)
        assert sub.address == f"tcp://[::1]:{port}"
        m = _pose()
        deadline = time.monotonic() + 5
        got = None
        while got is None and time.monotonic() < deadline:  # a PUB drops what is sent before the subscriber joined
            pub.publish(m.topic, schema.body(m))
            got = sub.latest(wait=0.2)
        assert got and got[0].handedness == m.handedness
        sub.close()
    finally:
        pub.close()


def test_a_run_connecting_to_a_proxy_over_ipv6_is_heard():
    """``run --connect tcp://[::1]:PORT`` (a proxy bound to ::1) published nothing, without a word."""
    from streamhand.stream import schema
    from tests.test_schema import _pose

    port = free_port()
    front = zmq.Context.instance().socket(zmq.SUB)  # a proxy's frontend, as `proxy --bind ::1` binds it
    front.setsockopt(zmq.IPV6, 1)
    front.setsockopt(zmq.SUBSCRIBE, b"")
    front.bind(f"tcp://[::1]:{port}")
    pub = Publisher(port=free_port(), control_port=None, connect=f"tcp://[::1]:{port}")
    try:
        m = _pose()
        heard = False
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            pub.publish(m.topic, schema.body(m))
            heard = bool(front.poll(200))
        assert heard
    finally:
        pub.close()
        front.close(0)


def test_a_port_in_use_is_named_so_where_pythons_errno_is_not_libzmqs(monkeypatch):
    """On Windows Python's EADDRINUSE is the socket layer's 10048 while libzmq reports its own number: a busy port
    read as "cannot bind ..., check --bind" instead of "port N ... is in use"."""
    import zmq

    from streamhand.stream import publish

    monkeypatch.setattr(publish.errno, "EADDRINUSE", 10048)  # as on Windows
    port = free_port()
    busy = zmq.Context.instance().socket(zmq.PUB)
    busy.bind(f"tcp://127.0.0.1:{port}")
    try:
        with pytest.raises(publish.PortInUse, match=rf"port {port} on 127.0.0.1 is in use; choose another"):
            publish.Publisher("127.0.0.1", port, None)
    finally:
        busy.close(0)


@pytest.mark.slow
@pytest.mark.parametrize(("last_state", "code", "topics"), [("stopped", 0, []), ("ok", 1, []),
                                                          ("ended", 0, ["--topic", "hand.frame"])])  # fmt: skip
def test_echo_after_the_stream_said_it_ended_is_no_failure(last_state, code, topics):
    """A run's last message is a status whose source_state is ``ended`` or ``stopped``: echo then timing out is the
    stream's end, exit 0 saying so (it was ``error: nothing received ... (after N messages)``, exit 1, for a clean
    end); a stream that goes quiet without saying so is still a failure."""
    port = free_port()
    pub = Publisher(port=port, control_port=None)
    cam = {"id": "desk", "width": 0, "height": 0, "fx": 0.0, "fy": 0.0, "cx": 0.0, "cy": 0.0}
    stop = threading.Event()

    def publish() -> None:
        for i in range(60):  # 3 s of frames: echo (which waits --timeout for the first) has joined for some
            pub.publish("hand.frame", {"frame_id": i, "camera": cam, "hands": []})
            time.sleep(0.05)
        pub.publish("status", {"frame_id": 59, "camera": cam, "source_state": last_state})

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    try:
        r = invoke("echo", "--address", f"tcp://127.0.0.1:{port}", "--timeout", "1.5", *topics)
    finally:
        stop.set()
        th.join(5)
        pub.close()
    assert r.returncode == code, r.stderr
    said = rf"the stream ended \({last_state}\) after \d+ messages; nothing since for 1.5 s" if code == 0 else (
        r"nothing received from .* in 1.5 s \(after \d+ messages\)")  # fmt: skip
    assert re.search(said, r.stderr), r.stderr
    if topics:  # status read to know the end, not printed where not asked for
        assert "status" not in r.stdout and "hand.frame seq" in r.stdout, r.stdout[-500:]
