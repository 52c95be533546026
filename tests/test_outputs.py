"""Output paths: checked before any work (one line naming the option, exit 2), written atomically at the end; a
write that still fails after the work prints the summary first, then one line, exit 1, and leaves no temporary
file behind."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamhand.outputs import OutputError, check_output, check_output_dir, write_text_atomic
from tests.conftest import free_port
from tests.helpers import invoke


def _file(folder):
    (folder / "f").write_text("x")
    return folder / "f"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t, "is a folder; give a file name"),
        (lambda t: (t / "hands.rrd").mkdir() or t / "hands.rrd", r"give a file name, e.g. .*hands.rrd/out.rrd"),
        (lambda t: _file(t) / "r.json", "is a file, not a folder"),
        (lambda t: _file(t) / "deeper" / "r.json", "is a file, not a folder"),
        (lambda t: "/proc/streamhand-nope/r.json", "cannot write there"),
    ],
)
def test_check_output_refuses_in_one_line(tmp_path, make, message):
    with pytest.raises(OutputError, match=message) as e:
        check_output(make(tmp_path), "--report")
    assert str(e.value).startswith("--report ") and "\n" not in str(e.value)


def test_check_output_makes_the_folder_and_leaves_nothing_else(tmp_path):
    p = check_output(tmp_path / "a" / "b" / "r.json", "--report")
    assert p is not None and p.parent.is_dir() and list(p.parent.iterdir()) == []
    assert check_output(None, "--report") is None
    (p.parent / "x").write_text("")
    with pytest.raises(OutputError, match="is a file; give a folder"):
        check_output_dir(p.parent / "x", "--out")
    assert check_output_dir(tmp_path / "new", "--out") == tmp_path / "new"


def test_a_refused_command_leaves_no_folder_it_made(tmp_path):
    kept = tmp_path / "there"  # a folder that was there before is never removed, even left empty
    kept.mkdir()
    around = tmp_path / "new" / ".." / "there" / "r.json"  # `there` is kept, and no `new` is made
    for report in (tmp_path / "a" / "b" / "r.json", kept / "c" / "r.json", around):
        r = invoke("run", "--source", "demo", "--model", "no-such-model", "--frames", "5", "--no-realtime",
                   "--report", str(report))  # fmt: skip
        assert r.returncode == 2 and "checkpoint not found" in r.stderr, r.stderr[-1500:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"] and list(kept.iterdir()) == []


def test_a_command_that_went_well_keeps_the_folders_it_made(tmp_path):
    from streamhand.outputs import made_folders

    p = check_output(tmp_path / "a" / "r.json", "--report")  # e.g. a run that published no frame writes nothing
    made_folders(failed=False)
    assert p is not None and p.parent.is_dir()
    made_folders(failed=True)  # forgotten: a later failure in this process does not touch it
    assert p.parent.is_dir()


def test_a_failed_final_write_removes_its_temporary_file(tmp_path):
    target = tmp_path / "gone" / "r.json"
    (tmp_path / "gone").write_text("a file where the folder should be")
    with pytest.raises(OutputError, match="could not be written"):
        write_text_atomic(target, "{}", "--json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gone"]
    ok = write_text_atomic(tmp_path / "ok.json", '{"a": 1}')
    assert json.loads(ok.read_text()) == {"a": 1} and not list(tmp_path.glob("ok.json*.tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--source", "demo", "--report", "{dir}"], "--report {dir}: is a folder"),
        (["run", "--source", "demo", "--report", "/proc/streamhand-nope/r.json"], "--report /proc/streamhand-nope"),
        (["bench", "--json", "{dir}"], "--json {dir}: is a folder"),
        (["bench", "--soak", "1", "--json", "{file}/x.json"], "is a file, not a folder"),
        (["keys", "--out", "{file}"], "--out {file}: is a file; give a folder"),
        # an output that is an input, or another output: the command would overwrite it without a word
        (["run", "--video", "{dir}/clip.avi", "--save-video", "{dir}/../{dir_name}/clip.avi"],
         "that is the input --video"),
        (["run", "--source", "demo", "--config", "{file}.yaml", "--report", "{file}.yaml"],
         "--report {file}.yaml: that is the input --config"),
        (["run", "--source", "demo", "--save", "{dir}/p.jsonl", "--report", "{dir}/p.jsonl"],
         "--report {dir}/p.jsonl: --save writes there too"),
        (["run", "--source", "demo", "--report", "{dir}/p.rrd", "--rerun", "{dir}/p.rrd"],
         "--rerun {dir}/p.rrd: --report writes there too"),
    ],
)
def test_commands_check_their_outputs_before_any_work(tmp_path, args, message):
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "f.txt.yaml").write_text("smooth: {enabled: false}\n")
    video = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    video.write(np.zeros((48, 64, 3), np.uint8))
    video.release()
    subs = {"{dir}": str(tmp_path), "{file}": str(tmp_path / "f.txt"), "{dir_name}": tmp_path.name}
    args = [_filled(a, subs) for a in args]
    if args[0] == "run":
        args += ["--frames", "5", "--no-realtime", "--port", str(free_port()), "--control-port", str(free_port())]
    r = invoke(*args)
    assert r.returncode == 2, r.stderr[-1500:]
    lines = r.stderr.strip().splitlines()
    assert lines == [lines[-1]] and lines[-1].startswith("error: "), r.stderr[-1500:]  # one line, nothing ran
    assert _filled(message, subs) in lines[-1]
    assert (tmp_path / "clip.avi").stat().st_size > 0 and (tmp_path / "f.txt.yaml").read_text().startswith("smooth")


def _filled(text: str, subs: dict[str, str]) -> str:
    for k, v in subs.items():
        text = text.replace(k, v)
    return text


def test_train_eval_checks_its_json_before_evaluating(tmp_path):
    from train.__main__ import app as train_app

    r = invoke("eval", "--checkpoint", "default", "--json", str(tmp_path), app=train_app)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --json {tmp_path}: is a folder; give a file name, e.g. {tmp_path / 'out.json'}"
    ]


@pytest.mark.parametrize("command", [["eval", "--n", "20", "--json"], ["card", "--out"],
                                     ["synth-report", "--n", "20", "--json"]])  # fmt: skip
def test_train_commands_do_not_write_over_their_checkpoint(tmp_path, command):
    import shutil

    from streamhand.model_files import shipped_models
    from train.__main__ import app as train_app

    ck = Path(shutil.copy(shipped_models()["default"], tmp_path / "m.pt"))
    size = ck.stat().st_size
    r = invoke(command[0], "--checkpoint", str(ck), *command[1:], str(ck), app=train_app)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
        f"error: {command[-1]} {ck}: that is the input --checkpoint; write the output elsewhere")
    assert ck.stat().st_size == size


def test_part_files_of_dead_processes_are_swept_and_a_live_ones_kept(tmp_path):
    """A process killed by SIGKILL cannot remove its part file (NAME.PID.tmp); the next writer of that name, or the
    next look into a cache folder, removes those whose process is gone."""
    import os
    import subprocess
    import sys

    from streamhand.outputs import remove_abandoned, sweep_abandoned

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, live_pid = gone.stdout.strip(), os.getpid()
    for name in (f"a.onnx.{dead_pid}.tmp", f"a.onnx.{live_pid}.tmp", f"b[1].json.{dead_pid}.tmp", "c.tmp"):
        (tmp_path / name).write_text("part")
    remove_abandoned(tmp_path / "b[1].json")  # a name with glob characters
    assert not (tmp_path / f"b[1].json.{dead_pid}.tmp").exists()
    sweep_abandoned(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"a.onnx.{live_pid}.tmp", "c.tmp"])


def test_on_windows_a_process_is_asked_without_os_kill(tmp_path, monkeypatch):
    """On Windows ``os.kill(pid, 0)`` is no question: 0 is CTRL_C_EVENT, a console Ctrl+C to that process and every
    other on its console (a run aborted at start as if interrupted). Windows is asked instead (OpenProcess)."""
    from streamhand import outputs

    for pid in (4242, 4343):
        (tmp_path / f"a.onnx.{pid}.tmp").write_text("part")
    asked = []
    monkeypatch.setattr(outputs.sys, "platform", "win32")
    monkeypatch.setattr(outputs.os, "kill", lambda pid, sig: asked.append(pid))
    monkeypatch.setattr(outputs, "_windows_process_gone", lambda pid: pid == 4242)  # 4343 still runs
    outputs.sweep_abandoned(tmp_path)
    assert not asked and sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx.4343.tmp"]


def test_the_part_files_of_outputs_killed_runs_left_are_removed_by_the_next_writer_of_the_name(tmp_path):
    """``--save``, ``--save-video``, ``--rerun`` and ``record`` write ``.STEM.PID.part.SUFFIX``: a run killed by
    SIGKILL (or a hang-up) left them for good; the next writer of that name removes those whose process is gone and
    that have not changed for an hour, not a live writer's (here or another container's), nor another name's."""
    import os
    import subprocess
    import sys

    from streamhand.outputs import part_path

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, live_pid = gone.stdout.strip(), os.getppid()
    left = [f".p.{dead_pid}.part.jsonl", f".p.{live_pid}.part.jsonl", f".p.{dead_pid}.part.csv",
            f".q.{dead_pid}.part.jsonl", f".v[1].{dead_pid}.part.mp4"]  # fmt: skip
    for name in left:
        (tmp_path / name).write_text("part")
        os.utime(tmp_path / name, (0, 0))  # long unchanged
    fresh = tmp_path / f".p.{dead_pid}9.part.jsonl"  # another container's writer (its pid not here), at work
    fresh.write_text("part")
    assert part_path(tmp_path / "p.jsonl").name == f".p.{os.getpid()}.part.jsonl"
    assert fresh.exists()
    fresh.unlink()
    part_path(tmp_path / "v[1].mp4")  # a name with glob characters
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(left[1:4])


def test_a_result_into_a_device_or_named_pipe_is_written_into_it_never_replacing_it(tmp_path):
    """``--report /dev/stdout``: the atomic rename replaced the device itself with a file (as root, ``/dev/full`` was
    found replaced by a report); a device or named pipe is now written into, and a failure there is one line."""
    import os
    import stat
    import threading
    import time

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    time.sleep(0.3)  # the reader waits on the pipe (one that nobody reads is refused: the next test)
    assert check_output(fifo, "--report") == fifo
    write_text_atomic(fifo, '{"fps": 30}', "--report")
    reader.join(10)
    assert got == ['{"fps": 30}'] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name != "pipe"]  # no temporary file, no probe
    if os.path.exists("/dev/full"):
        with pytest.raises(OutputError, match=r"--report /dev/full: could not be written \(No space left on device\)"):
            write_text_atomic("/dev/full", "x", "--report")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_stream_is_written_into_where_python_has_no_set_blocking(tmp_path, monkeypatch):
    """Windows before Python 3.12 has no ``os.set_blocking``: writing a report into a stream (``--report`` to the
    process's redirected output) raised AttributeError, which no handler caught."""
    import os

    from streamhand import outputs

    monkeypatch.delattr(outputs.os, "set_blocking")
    out = tmp_path / "stdout.txt"
    with open(out, "a") as f:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{f.fileno()}")
        write_text_atomic(link, '{"fps": 30}\n', "--report")
    assert out.read_text() == '{"fps": 30}\n' and hasattr(os, "getpid")


def test_a_pipe_nobody_reads_is_one_line_and_a_link_to_the_process_stream_is_written_into(tmp_path):
    """A named pipe without a reader hung the run for ever, deaf to signals; ``--report /dev/stdout`` with standard
    output redirected to a file (the link leads to a regular file) replaced the link instead of writing into it."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match=r"--report .*pipe: could not be written \(no program reads the pipe\)"):
        write_text_atomic(fifo, "{}", "--report")
    out = tmp_path / "stdout.txt"
    out.write_text("before\n")
    with open(out, "a") as f:  # the process's standard output, redirected with >>
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{f.fileno()}")
        assert check_output(link, "--report") == link
        write_text_atomic(link, '{"fps": 30}\n', "--report")
    assert link.is_symlink() and out.read_text() == 'before\n{"fps": 30}\n'


def test_an_output_given_as_a_symbolic_link_is_written_through_it(tmp_path):
    """``--report latest.json`` pointing at today's report: the report goes to the link's target and the link stays
    (it was replaced by a file, the target left as it was); the same for a file written under a part name (a video,
    a recording), and for a link whose target is not there yet."""
    from streamhand.outputs import finish_part, part_path

    (tmp_path / "reports").mkdir()
    for name, write in (("report", lambda p: write_text_atomic(p, "new")),
                        ("video", lambda p: (part_path(p).write_text("new"), finish_part(part_path(p), p, "--x")))):
        for exists in (True, False):
            target, link = tmp_path / "reports" / f"{name}{exists}.txt", tmp_path / f"latest-{name}{exists}.txt"
            if exists:
                target.write_text("old")
            else:  # a link to a folder not made yet: made when the output is checked, as any output's folder
                target = tmp_path / "reports" / f"new-{name}" / f"{name}.txt"
            link.symlink_to(target)
            check_output(link, "--x")
            write(link)
            assert link.is_symlink() and target.read_text() == "new", (name, exists)
            assert not list(tmp_path.glob(".*part*")) and not list((tmp_path / "reports").glob(".*part*"))


def test_a_dead_part_file_that_cannot_be_removed_is_left_without_a_word(tmp_path, monkeypatch):
    """A read-only cache (or one another user owns) holding a killed process's part file failed every run that
    looked into it, though it needed nothing written ("failed unexpectedly: OSError: [Errno 30]")."""
    import subprocess
    import sys
    from pathlib import Path

    from streamhand.outputs import sweep_abandoned

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    part = tmp_path / f"k0.onnx.{gone.stdout.strip()}.tmp"
    part.write_text("part")

    def read_only(self, missing_ok=False):
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", read_only)
    sweep_abandoned(tmp_path)  # no error
    assert part.exists()
