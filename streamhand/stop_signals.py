"""The signals that end a command the way Ctrl-C does: SIGINT, SIGTERM (``docker stop``, ``systemctl stop``) and
SIGHUP (the terminal closed), each a request to stop that lets the command finish its files and say why it ended.

A signal that was ignored when the process started stays ignored (``nohup`` ignores SIGHUP; a shell's background job,
SIGINT). While a command still loads, before it can stop gracefully, :func:`exit_on_stop_signals` makes the signal end
it at once (as the default action would; a process that is PID 1 in a container, whose default actions the kernel
ignores, is ended too), its ``finally`` blocks run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

#: what stops a command: Ctrl-C, a service manager's stop and a hang-up (the last not on Windows)
#: SIGBREAK: Windows' Ctrl+Break and the closing of the console window (which has no SIGHUP)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
                     if hasattr(signal, name))  # fmt: skip


def _ignored_at_start(sig: int) -> bool:
    """Whether ``sig`` was ignored when this process began (``nohup``, a background job): it is left ignored."""
    return sig != signal.SIGTERM and signal.getsignal(sig) == signal.SIG_IGN


def on_stop_signals(handler: Callable[[], Any]) -> None:
    """Call ``handler()`` on each stop signal (from the main thread only: elsewhere signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        if not _ignored_at_start(sig):
            signal.signal(sig, lambda *_: handler())


def _exit(signum: int, _frame: Any) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def exit_on_stop_signals() -> None:
    """Until :func:`on_stop_signals` takes over: a stop signal ends the command at once (exit 128 + the signal's
    number; Ctrl-C as KeyboardInterrupt), unwinding it so that what it opened is closed."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        if not _ignored_at_start(sig):
            signal.signal(sig, _exit)
