"""The one error convention: a failure no check foresaw is one line naming the command and the log file that holds
its traceback, exit 1, in both command lines; user errors stay one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

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


@pytest.mark.parametrize("where", ["the command line's modules", "typer reading the commands"])
def test_ctrl_c_while_the_command_loads_is_one_line_and_exit_130(where):
    """A Ctrl-C in the first second (the command's modules loading, typer reading its commands) printed a traceback.
    The interruption is made to happen there, not timed."""
    import subprocess
    import sys

    hook = ("import builtins; real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'streamhand.cli': raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n") if where.startswith("the command") else (
            "import typer.main\n"
            "def refuse(*a, **k): raise KeyboardInterrupt\n"
            "typer.main.get_command = refuse\n")  # fmt: skip
    p = subprocess.run([sys.executable, "-c", hook + "from streamhand.entry import main; main()", "info"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 130 and p.stderr == "stopped: streamhand interrupted while starting\n", p.stderr[-1500:]


def test_ctrl_c_is_one_line_and_exit_130(logs, monkeypatch):
    import streamhand.tools.about as about

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(about, "describe", interrupted)
    r = invoke("info")
    assert r.returncode == 130 and r.stderr.strip() == "stopped: streamhand info interrupted", r.stderr
    assert not logs.exists()  # no crash log: nothing failed


def _entry(args: list[str], tmp_path, **kw):
    env = {**os.environ, "STREAMHAND_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-c", "from streamhand.entry import main; main()", *args], text=True,
                          stderr=subprocess.PIPE, timeout=120, env=env, **kw)  # fmt: skip


@pytest.mark.parametrize("args", [["info"], ["--help"], ["run", "--help"], ["run", "--print-config"]])
def test_output_that_cannot_be_written_is_one_line_not_a_defect(tmp_path, args):
    """Standard output on a full disk (`> /dev/full`): one line saying so, exit 1, no crash log; the help, printed
    before any command runs, was a traceback."""
    with open("/dev/full", "w") as full:
        r = _entry(args, tmp_path, stdout=full)
    assert r.returncode == 1 and r.stderr == "error: cannot write the output: No space left on device\n", r.stderr
    assert not (tmp_path / "cache" / "logs").exists()


def test_a_working_folder_that_was_removed_is_one_line(tmp_path):
    """A relative output path from a folder removed under the command: one line and exit 2, not a defect's."""
    gone = tmp_path / "gone"
    gone.mkdir()

    def enter_and_remove():
        os.chdir(gone)
        os.rmdir(gone)

    r = _entry(["run", "--source", "demo", "--frames", "1", "--report", "r.json"], tmp_path,
               stdout=subprocess.DEVNULL, preexec_fn=enter_and_remove)  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: the working folder no longer exists: give absolute paths, or run from a folder that exists"
    ], r.stderr
    assert not (tmp_path / "cache" / "logs").exists()


def test_output_in_a_code_page_that_cannot_hold_a_name_is_escaped_not_a_crash(tmp_path):
    """A Windows program's redirected output is in its code page (cp1252): `streamhand info` with numba's cache under
    a Cyrillic user name ended with a UnicodeEncodeError (exit 1); the name is written escaped."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": "cp1252", "NUMBA_CACHE_DIR": str(tmp_path / "Дмитрий" / "nb"),
           "STREAMHAND_CONFIG": str(tmp_path / "config")}  # fmt: skip
    code = "import sys; from streamhand.entry import main; sys.argv = ['streamhand', 'info']; main()"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode("cp1252", "replace")[-1500:]
    assert b"\\u0414\\u043c\\u0438\\u0442\\u0440\\u0438\\u0439" in r.stdout


def test_a_crash_log_holds_any_name_whatever_the_locale(tmp_path, monkeypatch):
    """The crash log was written in the locale's encoding (a Windows code page): a command line with a Cyrillic user
    name raised UnicodeEncodeError inside the error handler itself. It is UTF-8 now."""
    from pathlib import Path

    from streamhand import errors

    real = Path.write_text

    def as_on_windows(self, data, encoding=None, errors=None, newline=None):  # the locale's code page by default
        return real(self, data, encoding=encoding or "cp1252", errors=errors, newline=newline)

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(Path, "write_text", as_on_windows)
    monkeypatch.setattr(errors.sys, "argv", ["streamhand", "run", "--video", r"C:\Users\Дмитрий\clip.mp4"])
    path = errors.crash_log(RuntimeError("boom"), "run")
    assert path is not None and "Дмитрий" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (MemoryError(), "error: memory ran out: close other programs, give a smaller input, or raise the limit"),
        (RuntimeError("can't start new thread"), "error: no thread could be started (memory ran out): close other"),
        ("cv2", "error: memory ran out: close other programs"),
    ],
)
def test_memory_running_out_is_said_so_without_a_crash_log(exc, says, logs, monkeypatch):
    """Memory running out (a small machine, `ulimit -v`, a container's limit) is the place the command runs in, not
    a fault in it: one line saying so, exit 1, and no crash log (it was "failed unexpectedly" and a traceback)."""
    import streamhand.tools.about as about

    def no_memory(*_a, **_k):
        if exc == "cv2":  # OpenCV's own error for it
            import cv2

            raise cv2.error("OpenCV(4.11.0) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 24883200 "
                            "bytes in function 'OutOfMemoryError'")  # fmt: skip
        raise exc

    monkeypatch.setattr(about, "describe", no_memory)
    r = invoke("info")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith(says), r.stderr
    assert not logs.exists() or not list(logs.glob("crash-*.log"))
