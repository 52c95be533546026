"""Processes coming and going: `streamhand proxy` forwards two `streamhand run --connect` publishers (each with
its own --camera-id) to one subscriber, every publisher's seq gap-free; kill -9 of a subscriber or of the
publisher, and the publisher's restart, leave the other side working."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from streamhand.stream.client import PoseSubscriber
from tests.conftest import free_port
from tests.helpers import ROOT, drain, invoke

ENV = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamhand.cli", *args], cwd=str(ROOT), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
def test_two_publishers_through_the_proxy_gap_free_per_camera():
    front, back = free_port(), free_port()
    proxy = _start("proxy", "--frontend-port", str(front), "--backend-port", str(back))
    sub = PoseSubscriber(f"tcp://127.0.0.1:{back}", topics=("hand.frame",), raw=True, timeout=60)
    runs = []
    try:
        time.sleep(1.0)
        for cam in ("left-cam", "right-cam"):
            # --no-realtime: every one of the 60 frames is published, however busy the machine (paced, a loaded
            # machine drops frames and may publish fewer than the 30 awaited)
            runs.append(_start("run", "--source", "demo", "--frames", "60", "--no-realtime", "--connect",
                               f"tcp://127.0.0.1:{front}", "--camera-id", cam,
                               "--control-port", str(free_port())))  # fmt: skip
        seqs: dict[str, list[int]] = {"left-cam": [], "right-cam": []}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (len(seqs["left-cam"]) < 30 or len(seqs["right-cam"]) < 30):
            m = sub.recv()
            seqs[m.data["camera"]["id"]].append(m.data["seq"])
        for cam, s in seqs.items():
            assert len(s) >= 30, (cam, len(s))
            assert s == list(range(s[0], s[0] + len(s))), cam  # consecutive: nothing lost in between
        assert sub.gaps == 0  # seq is tracked per topic and camera, so the two streams do not collide
    finally:
        sub.close()
        for p in runs:
            p.wait(timeout=120)
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(timeout=10)
    assert all(p.returncode == 0 for p in runs), [p.stderr.read()[-800:] for p in runs]
    assert proxy.returncode == 0


def test_proxy_bad_ports_are_one_line_exit_2():
    busy = free_port()
    import zmq

    s = zmq.Context.instance().socket(zmq.PUB)
    s.bind(f"tcp://127.0.0.1:{busy}")
    try:
        r = invoke("proxy", "--frontend-port", str(busy), "--backend-port", str(free_port()))
    finally:
        s.close(0)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr  # the one error, no line saying it runs
    assert lines[0].startswith("error: ") and "--frontend-port" in lines[0]
    r = invoke("proxy", "--frontend-port", "5999", "--backend-port", "5999")
    assert r.returncode == 2 and "must differ" in r.stderr


SUBSCRIBER = """
import sys
from streamhand.stream.client import PoseSubscriber
for m in PoseSubscriber(sys.argv[1], topics=("hand.frame",), raw=True):
    print(m.data["seq"], flush=True)
"""


@pytest.mark.slow
def test_kill_9_of_either_side_and_restart_recover():
    port, cport = free_port(), free_port()
    addr = f"tcp://127.0.0.1:{port}"
    run_args = ("run", "--source", "demo", "--frames", "900", "--port", str(port), "--control-port", str(cport))
    pub = _start(*run_args)
    doomed = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, addr], cwd=str(ROOT), env=ENV,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    sub = PoseSubscriber(addr, topics=("hand.frame",), raw=True, timeout=90)
    try:
        assert doomed.stdout.readline().strip().isdigit()  # the other subscriber receives ...
        doomed.kill()  # ... and dies without a word: the publisher must not care
        doomed.wait(timeout=10)
        first = sub.recv().data["seq"]
        time.sleep(0.5)
        last = sub.recv().data["seq"]
        assert last > first  # still publishing
        pub.kill()  # the publisher dies (kill -9)
        pub.wait(timeout=10)
        pub = _start(*run_args)  # and comes back on the same ports
        # the same subscriber, never reconnected by hand, receives from the new one: its seq starts again
        deadline = time.monotonic() + 90
        restarted = False
        while not restarted and time.monotonic() < deadline:
            seq = sub.recv().data["seq"]
            restarted, last = seq < last, seq
        assert restarted
        assert sub.recv().data["seq"] == last + 1  # and keeps receiving
        assert pub.poll() is None
    finally:
        sub.close()
        for p in (pub, doomed):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)



def test_a_stopped_proxy_forwards_what_had_reached_it():
    """What publishers had already sent to a proxy when it stops is forwarded (then sent out under a bounded
    linger), not dropped: the messages wait in the frontend's queue, and the stop drains it."""
    import zmq

    from streamhand.stream.publish import _drain

    ctx = zmq.Context()
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    try:
        xsub.bind("inproc://front")
        xpub.bind("inproc://back")
        pub.connect("inproc://front")
        sub.connect("inproc://back")
        sub.setsockopt(zmq.SUBSCRIBE, b"t")
        sub.setsockopt(zmq.RCVTIMEO, 1000)
        assert xpub.recv() == b"\x01t"  # the subscription reaches the proxy's backend
        xsub.send(b"\x01t")  # and goes upstream, as the proxy's loop sends it
        time.sleep(0.2)
        for i in range(500):
            pub.send_multipart([b"t", str(i).encode()])
        deadline = time.monotonic() + 5
        while not xsub.poll(0) and time.monotonic() < deadline:  # queued at the frontend, unread
            time.sleep(0.01)
        time.sleep(0.2)
        _drain(xsub, xpub)
        got = []
        while True:
            try:
                got.append(int(sub.recv_multipart()[1]))
            except zmq.Again:
                break
        assert got == list(range(500))
    finally:
        for sock in (pub, sub, xsub, xpub):
            sock.close(0)
        ctx.term()


def test_each_cameras_log_messages_name_it_and_count_their_seq_apart():
    """Two runs behind one proxy: their ``log.*`` messages carried no camera, so they could not be told apart and a
    subscriber counted false gaps in their ``seq`` (one topic, one key). Each now names its camera, as frames do."""
    import logging
    import threading

    from streamhand.stream import protocol
    from streamhand.stream.publish import Publisher, ZmqLogHandler, run_proxy

    front, back, stop, ready = free_port(), free_port(), threading.Event(), threading.Event()
    t = threading.Thread(target=run_proxy, args=("127.0.0.1", front, back, stop, ready.set), daemon=True)
    t.start()
    assert ready.wait(10)
    pubs = {cam: Publisher(port=0, control_port=None, connect=f"tcp://127.0.0.1:{front}") for cam in ("a", "b")}
    loggers = {cam: logging.getLogger(f"streamhand.test_proxy.{cam}") for cam in pubs}
    handlers = {cam: ZmqLogHandler(pubs[cam], camera_id=f"cam-{cam}") for cam in pubs}
    for cam in pubs:
        loggers[cam].addHandler(handlers[cam])
    sub = PoseSubscriber(f"tcp://127.0.0.1:{back}", topics=("log.",), raw=True, timeout=0.2)
    got: list = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and {m.data["message"] for m in got} != {"a ready", "b ready"}:
            for cam in pubs:  # until both publishers reach the subscriber through the proxy
                loggers[cam].warning("%s ready", cam)
            got = drain(sub)
        gaps0 = sub.gaps
        for i in range(5):
            for cam in pubs:
                loggers[cam].warning("%s %d", cam, i)
        got = drain(sub)
    finally:
        for cam in pubs:
            loggers[cam].removeHandler(handlers[cam])
            pubs[cam].close()
        sub.close()
        stop.set()
        t.join(10)
    assert len(got) == 10 and sub.gaps == gaps0 == 0, (len(got), sub.gaps)
    for m in got:
        assert m.data["camera"]["id"] == f"cam-{m.data['message'][0]}"
        _, problems = protocol.parse(m.topic, m.data)
        assert not problems, problems


def test_run_connect_with_curve_keys_is_refused_before_any_work(tmp_path):
    """A proxy has no CurveZMQ: a run connecting to one with --curve-server-key/--curve-allowed was accepted and got
    nothing through (its encrypted handshake never completes). It is one line saying why, exit 2."""
    from streamhand.stream.security import make_keys

    _public, secret = make_keys(tmp_path / "server", "server")
    make_keys(tmp_path / "allowed", "alice")
    r = invoke("run", "--source", "demo", "--frames", "2", "--no-realtime", "--connect",
               f"tcp://127.0.0.1:{free_port()}", "--control-port", str(free_port()), "--curve-server-key", str(secret),
               "--curve-allowed", str(tmp_path / "allowed"))  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr  # the one error: no run, no `done:`
    assert lines[0].startswith("error: ") and "--connect" in lines[0] and "in the clear" in lines[0], lines[0]


def test_proxy_bound_beyond_this_machine_warns_as_a_run_does():
    """`proxy --bind 0.0.0.0` opened both ports to the network without a word (`run` warns so); bound to
    127.0.0.1 it says nothing of the kind."""
    procs = {bind: _start("proxy", "--bind", bind, "--frontend-port", str(free_port()), "--backend-port",
                          str(free_port())) for bind in ("0.0.0.0", "127.0.0.1")}  # fmt: skip
    said = {}
    try:
        for p in procs.values():
            assert p.stderr.readline().startswith("proxy: publishers connect to ")  # both ports bound
    finally:
        for bind, p in procs.items():  # read on through the same reader: what it holds past the line counts too
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
            said[bind] = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
    assert "--bind 0.0.0.0: both ports" in said["0.0.0.0"] and "without authentication" in said["0.0.0.0"]
    assert "without authentication" not in said["127.0.0.1"], said["127.0.0.1"]
    assert all(p.returncode == 0 for p in procs.values())
