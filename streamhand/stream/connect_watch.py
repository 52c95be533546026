"""Watches a publisher's ``--connect`` to a ``streamhand proxy``: ZeroMQ connects in the background and a PUB socket
with no peer drops every message without a word, so a proxy that is not running, or a wrong port (the proxy's
backend, whose default is the usual stream port), would be a run that publishes into the void. A socket monitor read
on a thread of its own says so in one warning once no ZeroMQ handshake has completed for :data:`WARN_AFTER_S`
seconds (at the start, or after the proxy went away), and once when the connection is then made. The thread ends
when the socket closes (libzmq then stops its monitor)."""

from __future__ import annotations

import logging
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger(__name__)

#: how long a connection may go without a completed handshake before the warning (seconds)
WARN_AFTER_S = 3.0
#: the monitor's events read here (libzmq 4.3 and up); the rest (retries every 100 ms) are not sent at all
_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_DISCONNECTED
           | zmq.EVENT_MONITOR_STOPPED)  # fmt: skip
_FAILED = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH


def watch_connect(sock: zmq.Socket, endpoint: str) -> threading.Thread:
    """Watch ``sock``'s connection to ``endpoint`` (call it before ``sock.connect``, so that no event is missed);
    the watching thread, already started."""
    mon = sock.get_monitor_socket(_EVENTS)
    t = threading.Thread(target=_watch, args=(mon, endpoint, WARN_AFTER_S), name="connect-watch", daemon=True)
    t.start()
    return t


def _why(connected: bool, failed: bool, endpoint: str) -> str:
    """What the events of a connection that never completed its handshake say about the other end."""
    if failed or connected:  # something answered, but not as a proxy's frontend (an XSUB socket) does
        return (f"something listens at {endpoint}, but it is not a `streamhand proxy`'s frontend (the ZeroMQ handshake "
                "did not complete): is this the proxy's --frontend-port (default 5570), not its --backend-port "
                "(default 5560, where subscribers connect) or a run's own port?")  # fmt: skip
    return (f"nothing answers at {endpoint}: is `streamhand proxy` running there, and is this its --frontend-port "
            "(default 5570)?")  # fmt: skip


def _watch(mon: zmq.Socket, endpoint: str, after_s: float) -> None:
    """The thread: read the monitor's events, warn when the handshake is overdue, say when it then completes."""
    up, warned = False, False
    down_since: float | None = time.monotonic()  # not connected since (None while connected)
    connected = failed = False  # what this time without a connection has seen
    lost = False  # the connection had been made before this time without one
    try:
        while True:
            left = None if down_since is None or warned else down_since + after_s - time.monotonic()
            if left is not None and left <= 0:
                log.warning("--connect %s: %sno ZeroMQ handshake for %g s, so what this run publishes is lost until "
                            "it connects; %s", endpoint, "the proxy went away; " if lost else "", after_s,
                            _why(connected, failed, endpoint))  # fmt: skip
                warned = True
                continue
            if not mon.poll(None if left is None else max(1, int(left * 1000) + 1)):
                continue
            event = recv_monitor_message(mon)["event"]
            if event == zmq.EVENT_MONITOR_STOPPED:
                return
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if warned:
                    log.info("--connect %s: connected to the proxy; publishing through it", endpoint)
                up, warned, down_since, connected, failed = True, False, None, False, False
            elif event == zmq.EVENT_CONNECTED:
                connected = True
            elif event & _FAILED:
                failed = True
            elif event == zmq.EVENT_DISCONNECTED and up:
                up, lost, down_since = False, True, time.monotonic()
    except zmq.ZMQError:  # the context terminated under the thread: nothing left to watch
        pass
    finally:
        mon.close(0)
