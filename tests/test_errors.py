"""The one error convention: a failure no check foresaw is one line naming the command and the log file that holds
its traceback, exit 1, in both command lines; user errors stay one line and exit 2."""

from __future__ import annotations

import pytest

from tests.helpers import invoke, train_cli


@pytest.fixture
def logs(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path))
    return tmp_path / "logs"


def _boom(*_a, **_k):
    raise RuntimeError("boom\nsecond line")


def _check_one_line_and_log(r, logs, command: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"error: {command} failed unexpectedly: RuntimeError: boom (the traceback is in ")
    (log,) = logs.glob("crash-*.log")
    assert str(log) in lines[0]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "second line" in text and "_boom" in text


def test_streamhand_command_failing_unexpectedly(logs, monkeypatch):
    import streamhand.tools.about as about

    monkeypatch.setattr(about, "describe", _boom)
    _check_one_line_and_log(invoke("info"), logs, "streamhand info")


def test_where_no_log_can_be_written_the_line_says_how_to_keep_one(tmp_path, monkeypatch):
    import streamhand.tools.about as about

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "file"))  # logs cannot be made under a file
    monkeypatch.setattr(about, "describe", _boom)
    r = invoke("info")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "the traceback could not be written into" in r.stderr and "point STREAMHAND_CACHE at a writable" in r.stderr


def test_train_command_failing_unexpectedly(logs, monkeypatch, tiny_checkpoint):
    import train.evaluate as evaluate

    monkeypatch.setattr(evaluate, "evaluate_synthetic", _boom)
    r = train_cli("eval", "--checkpoint", str(tiny_checkpoint), "--n", "5")
    _check_one_line_and_log(r, logs, "python -m train eval")


def test_user_errors_and_clean_exits_are_left_alone(logs):
    r = invoke("run", "--port", "0")
    assert r.returncode == 2 and r.stderr.startswith("error: --port:")
    assert invoke("run", "--help").returncode == 0
    assert invoke("run", "--no-such-option").returncode == 2
    assert not logs.exists()


def test_a_closed_pipe_is_not_a_failure(logs, monkeypatch):
    import streamhand.tools.about as about

    def closed(*_a, **_k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(about, "describe", closed)
    r = invoke("info")
    assert r.returncode == 0 and r.stderr == "" and not logs.exists()


def test_ctrl_c_while_the_command_loads_is_one_line_and_exit_130():
    """A Ctrl-C in the first second or so (the command's modules still loading) printed a traceback."""
    import signal
    import subprocess
    import sys
    import time

    p = subprocess.Popen([sys.executable, "-c", "from streamhand.entry import main; main()", "info"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.4)  # numpy, typer and the rest take longer than this to load
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err, err[-1500:]
    assert err.strip().splitlines()[-1].startswith("stopped: streamhand"), err


def test_ctrl_c_is_one_line_and_exit_130(logs, monkeypatch):
    import streamhand.tools.about as about

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(about, "describe", interrupted)
    r = invoke("info")
    assert r.returncode == 130 and r.stderr.strip() == "stopped: streamhand info interrupted", r.stderr
    assert not logs.exists()  # no crash log: nothing failed
