"""How commands end on signals and with broken standard streams: SIGTERM and SIGHUP as Ctrl-C, a signal while
loading (also where the kernel would ignore it, as for a container's PID 1), signals ignored at start kept ignored,
a stop during ``--compare-mediapipe``, standard error closed or a closed pipe. Real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import free_port
from tests.helpers import ROOT

ENV = {**os.environ, "GLOG_minloglevel": "2"}


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=str(ROOT), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_while_loading_a_stop_signal_ends_the_command_at_once_unwinding_it(sig, code):
    """The handler a command installs first: the signal ends it (exit 128 + its number; Ctrl-C as
    KeyboardInterrupt) with its finally blocks run, where the default action would leave no chance to clean up and
    a container's PID 1 would not be ended at all."""
    p = _python(f"""
        import os, signal, sys, time
        from streamhand.stop_signals import exit_on_stop_signals
        exit_on_stop_signals()
        try:
            print("loading", flush=True)
            os.kill(os.getpid(), {int(sig)})
            time.sleep(5)
            print("not stopped", flush=True)
        except KeyboardInterrupt:
            sys.exit(130)
        finally:
            print("cleaned up", flush=True)
    """)
    out, err = p.communicate(timeout=30)
    assert p.returncode == code and out.split() == ["loading", "cleaned", "up"], err


def test_a_signal_ignored_at_start_stays_ignored_and_the_others_stop_gracefully():
    """``nohup`` ignores SIGHUP: a command started under it keeps running when the terminal closes; SIGTERM still
    asks it to stop."""
    p = _python("""
        import os, signal, threading, time
        from streamhand.stop_signals import on_stop_signals
        stop = threading.Event()
        on_stop_signals(stop.set)
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.2)
        print("after hup", stop.is_set(), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        print("after term", stop.is_set(), flush=True)
    """, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0 and out.splitlines() == ["after hup False", "after term True"], err


def _run(tmp_path, *extra: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamhand.cli", "run", "--source", "demo", "--port",
                             str(free_port()), "--control-port", str(free_port()), "--report",
                             str(tmp_path / "r.json"), *extra], cwd=str(ROOT), env=ENV, text=True, **kw)  # fmt: skip


@pytest.mark.slow
def test_a_stop_during_the_comparison_with_mediapipe_skips_it_and_the_report_is_written(tmp_path):
    """After the run, ``--compare-mediapipe`` times MediaPipe alone on as many frames again (paced: as long again);
    a signal then ends that at once, and the report is the run's own, without half a baseline."""
    p = _run(tmp_path, "--frames", "60", "--compare-mediapipe", "--save", str(tmp_path / "p.jsonl"),
             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    lines = []
    try:
        for line in p.stderr:
            lines.append(line)
            if "--compare-mediapipe: timing" in line:
                time.sleep(0.5)
                t0 = time.monotonic()
                p.send_signal(signal.SIGTERM)
                break
        rest = p.stderr.read()
        p.wait(timeout=60)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, "".join(lines) + rest
    assert took < 5  # not the paced comparison's seconds
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames_in"] == 60 and "mediapipe_alone" not in rep and "ratio_to_mediapipe" not in rep
    assert "the report has no comparison" in rest and (tmp_path / "p.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("stderr", ["closed", "a pipe nobody reads"])
def test_a_run_whose_standard_error_is_closed_or_broken_still_writes_its_report(tmp_path, stderr):
    """A daemon started with standard error closed, or a pipe whose reader went away (``2>&1 | head -1``): the run
    works, and its report is written before the summary line that cannot be."""
    if stderr == "closed":
        p = _run(tmp_path, "--frames", "5", "--no-realtime", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                 preexec_fn=lambda: os.close(2))  # fmt: skip
    else:
        p = _run(tmp_path, "--frames", "5", "--no-realtime", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        p.stderr.close()  # the reader is gone before the run says anything
    assert p.wait(timeout=120) == 0
    assert json.loads((tmp_path / "r.json").read_text())["frames_processed"] == 5


def test_windows_ctrl_break_and_a_closed_console_stop_a_run():
    """Windows has no SIGHUP: the console window closed (or Ctrl+Break) sends SIGBREAK, which nothing handled, so
    the process ended with its outputs unfinished. It is a stop signal where it exists."""
    import subprocess
    import sys

    code = ("import signal; signal.SIGBREAK = 21\n"
            "from streamhand.stop_signals import STOP_SIGNALS\nprint(21 in STOP_SIGNALS)")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "True", r.stdout + r.stderr
