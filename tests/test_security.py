"""CurveZMQ: an allowed client receives the stream and talks to the control socket; an unknown client and a
plaintext one receive nothing; bad key files are one-line errors."""

from __future__ import annotations

import logging
import time

import pytest
import zmq

from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from streamhand.stream.security import SecurityError, make_keys
from tests.conftest import free_port
from tests.helpers import invoke


@pytest.fixture
def keys(tmp_path):
    make_keys(tmp_path / "server", "server")
    make_keys(tmp_path / "allowed", "alice")
    make_keys(tmp_path / "strangers", "mallory")
    return tmp_path


def _publish_for(pub: Publisher, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish("status", {"frame_id": 0})
        time.sleep(0.02)


def _received(subs: list[PoseSubscriber], pub: Publisher) -> list[bool]:
    """Which of ``subs`` receive something within 3 s of publishing (they are watched in the same 3 s)."""
    got = [False] * len(subs)
    for s in subs:
        s.timeout = 0.05
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and not all(got):
        _publish_for(pub, 0.1)
        for i, s in enumerate(subs):
            if not got[i]:
                try:
                    s.recv()
                    got[i] = True
                except TimeoutError:
                    continue
    return got


@pytest.mark.slow
def test_allowed_client_receives_strangers_and_plaintext_do_not(keys):
    port, cport = free_port(), free_port()
    pub = Publisher("127.0.0.1", port, cport, curve=(str(keys / "server/server.key_secret"), str(keys / "allowed")))
    addr = f"tcp://127.0.0.1:{port}"
    server_key = str(keys / "server/server.key")
    alice = PoseSubscriber(addr, topics=("",), raw=True, curve_server_key=server_key,
                           curve_client_key=str(keys / "allowed/alice.key_secret"))  # fmt: skip
    mallory = PoseSubscriber(addr, topics=("",), raw=True, curve_server_key=server_key,
                             curve_client_key=str(keys / "strangers/mallory.key_secret"))  # fmt: skip
    plain = PoseSubscriber(addr, topics=("",), raw=True)
    try:
        assert _received([alice], pub) == [True]
        assert _received([mallory, plain], pub) == [False, False]
        # the control socket: alice is answered, a plaintext client is not
        ctx = zmq.Context.instance()
        for secure, answered in ((True, True), (False, False)):
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.RCVTIMEO, 1500)
            req.setsockopt(zmq.LINGER, 0)
            if secure:
                from streamhand.stream.security import apply_client

                apply_client(req, server_key, keys / "allowed/alice.key_secret")
            req.connect(f"tcp://127.0.0.1:{cport}")
            req.send(b"PUB_PORT")
            try:
                got = int(req.recv()) == port
            except zmq.Again:
                got = False
            req.close(0)
            assert got == answered
    finally:
        for s in (alice, mallory, plain):
            s.close()
        pub.close()


@pytest.mark.parametrize(
    ("secret", "allowed", "message"),
    [
        ("server/server.key", "allowed", "holds no secret key"),
        ("server/nope.key_secret", "allowed", "key file not found"),
        ("server/server.key_secret", "nowhere", "not a folder"),
        ("server/server.key_secret", "server/empty", "no client public keys"),
        ("garbage.txt", "allowed", "not a ZeroMQ certificate"),
    ],
)
def test_bad_keys_are_one_line_errors(keys, secret, allowed, message):
    (keys / "server/empty").mkdir()
    (keys / "garbage.txt").write_text("not a certificate\n")
    with pytest.raises(SecurityError, match=message):
        Publisher("127.0.0.1", free_port(), None, curve=(str(keys / secret), str(keys / allowed)))


def test_keys_command_and_run_with_curve(tmp_path, caplog):
    r = invoke("keys", "--out", str(tmp_path / "k"), "--name", "server")
    assert r.returncode == 0 and (tmp_path / "k/server.key_secret").is_file()
    assert (tmp_path / "k/server.key_secret").stat().st_mode & 0o077 == 0  # secret: owner only
    r = invoke("keys", "--out", str(tmp_path / "k"), "--name", "server")
    assert r.returncode == 2 and "exists" in r.stderr  # never overwritten
    make_keys(tmp_path / "allowed", "alice")
    ports = ["--port", str(free_port()), "--control-port", str(free_port())]
    caplog.set_level(logging.INFO, logger="streamhand")  # in this process the run's log lines come here
    r = invoke("run", "--source", "demo", "--frames", "2", "--no-realtime", "--bind", "0.0.0.0", *ports,
               "--curve-server-key", str(tmp_path / "k/server.key_secret"),
               "--curve-allowed", str(tmp_path / "allowed"))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    assert "publishing on tcp://0.0.0.0:" in caplog.text
    assert "without authentication" not in caplog.text + r.stderr  # bound beyond localhost, but authenticated
    r = invoke("run", "--source", "demo", "--frames", "2", *ports, "--curve-allowed", str(tmp_path / "allowed"))
    assert r.returncode == 2 and "--curve-server-key and --curve-allowed go together" in r.stderr
