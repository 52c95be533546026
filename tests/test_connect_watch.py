"""`run --connect` with no proxy there, or pointed at the proxy's backend port (whose default is the usual stream
port), published into the void without a word. A publisher connecting to a proxy now warns once when no ZeroMQ
handshake has completed within a few seconds, naming the address and what to check, and says once when it does
connect after that (what it publishes then goes through); its watching thread ends with the publisher."""

from __future__ import annotations

import logging
import threading
import time

from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher, run_proxy
from tests.conftest import free_port

WATCH_LOGGER = "streamhand.stream.connect_watch"


def _proxy(front: int, back: int) -> tuple[threading.Thread, threading.Event]:
    """A real proxy on a thread, its ports bound; (its thread, what stops it)."""
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=run_proxy, args=("127.0.0.1", front, back, stop, ready.set), daemon=True)
    t.start()
    assert ready.wait(10)
    return t, stop


def _said(caplog, address: str, level: int) -> list[str]:
    """The lines logged at ``level`` that name ``address``."""
    return [r.getMessage() for r in caplog.records if r.levelno == level and address in r.getMessage()]


def test_connect_to_no_proxy_or_to_its_backend_warns_once_and_says_when_connected(caplog):
    caplog.set_level(logging.INFO)
    front, back, nowhere = free_port(), free_port(), free_port()
    absent, backend, frontend = (f"tcp://127.0.0.1:{p}" for p in (nowhere, back, front))
    proxy, stop = _proxy(front, back)
    later: tuple[threading.Thread, threading.Event] | None = None
    sub: PoseSubscriber | None = None
    pubs = [Publisher(port=0, control_port=None, connect=a) for a in (absent, backend, frontend)]
    try:
        deadline = time.monotonic() + 10  # the warning comes after a few seconds (3)
        while time.monotonic() < deadline and not (_said(caplog, absent, logging.WARNING)
                                                   and _said(caplog, backend, logging.WARNING)):  # fmt: skip
            time.sleep(0.05)
        nones, wrongs = _said(caplog, absent, logging.WARNING), _said(caplog, backend, logging.WARNING)
        assert len(nones) == len(wrongs) == 1, (nones, wrongs)  # one warning for each bad address
        none, wrong = nones[0], wrongs[0]
        assert "nothing answers" in none and "`streamhand proxy`" in none and "--frontend-port" in none
        assert "not a `streamhand proxy`'s frontend" in wrong and "--backend-port" in wrong, wrong
        assert not _said(caplog, frontend, logging.WARNING)  # the proxy's frontend: connected, not a word
        later_back = free_port()
        later = _proxy(nowhere, later_back)  # the proxy starts after all: the run connects and says so once
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _said(caplog, absent, logging.INFO):
            time.sleep(0.05)
        assert len(_said(caplog, absent, logging.INFO)) == 1 and "connected" in _said(caplog, absent, logging.INFO)[0]
        assert len(_said(caplog, absent, logging.WARNING)) == len(_said(caplog, backend, logging.WARNING)) == 1
        sub = PoseSubscriber(f"tcp://127.0.0.1:{later_back}", topics=("status",), raw=True, timeout=0.1)
        got = None
        deadline = time.monotonic() + 10
        while got is None and time.monotonic() < deadline:  # and what it publishes now goes through
            pubs[0].publish("status", {"frame_id": 0})
            try:
                got = sub.recv()
            except TimeoutError:
                pass
        assert got is not None and got.topic == "status"
    finally:
        if sub is not None:
            sub.close()
        for p in pubs:
            p.close()
        for _t, s in (proxy, stop), *([later] if later else []):
            s.set()
    deadline = time.monotonic() + 5  # the watching threads end with their publishers
    while time.monotonic() < deadline and any(t.name == "connect-watch" for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "connect-watch"]

