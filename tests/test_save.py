"""``run --save`` (poses to JSON lines, CSV or MCAP) and ``--save-video`` (the overlay): every processed frame is in the
file, what a subscriber received, nothing lost at the end. Real demo runs, real OpenCV video, the real mcap library."""

from __future__ import annotations

import csv
import json
import re
import sys
import time

import cv2
import msgpack
import numpy as np
import pytest

from streamhand.run.save import csv_header
from streamhand.stream.recording import check_recording
from tests.conftest import free_port
from tests.helpers import hold_open, invoke

FRAMES = 24


def _run(tmp_path, *extra: str) -> dict:
    rep = tmp_path / "r.json"
    r = invoke("run", "--source", "demo", "--frames", str(FRAMES), "--no-realtime", "--port", str(free_port()),
               "--control-port", str(free_port()), "--report", str(rep), *extra)  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    return json.loads(rep.read_text())


@pytest.mark.slow
def test_every_format_holds_every_pose(tmp_path):
    rep = _run(tmp_path, "--save", str(tmp_path / "p.jsonl"), "--save-video", str(tmp_path / "o.mp4"))
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    frames = [m for m in lines if m["topic"] == "hand.frame"]
    poses = [m for m in lines if m["topic"].startswith("hand.pose.")]
    assert len(frames) == FRAMES and [m["frame_id"] for m in frames] == sorted(m["frame_id"] for m in frames)
    assert len(poses) == rep["hands_published"] > 0
    assert all(len(p["joints_cam"]) == 21 for p in poses)
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    ok, img = cap.read()
    assert ok and img.shape == (480, 640, 3)
    cap.release()
    assert not list(tmp_path.glob(".*part*"))  # the temporary files were renamed
    assert rep["latency_ms"]["save_video"]["n"] == FRAMES and rep["cpu_ms"]["save_video"]["p50"] > 0  # timed

    rep2 = _run(tmp_path, "--save", str(tmp_path / "p.csv"))
    rows = list(csv.reader((tmp_path / "p.csv").open()))
    assert rows[0] == csv_header() and len(rows[0]) == 8 + 63 + 63 + 42 + 21 + 2
    assert len(rows) - 1 == rep2["hands_published"]
    first = dict(zip(rows[0], rows[1]))
    assert first["handedness"] in ("left", "right") and 0.1 < float(first["cam0_z"]) < 2.0
    assert 0.0 < float(first["quality"]) < 0.2 and 0.0 <= float(first["confidence"]) <= 1.0

    rep3 = _run(tmp_path, "--save", str(tmp_path / "p.mcap"))
    info = check_recording(tmp_path / "p.mcap")
    assert info.topics["hand.frame"] == FRAMES
    assert sum(n for t, n in info.topics.items() if t.startswith("hand.pose.")) == rep3["hands_published"]
    from mcap.reader import make_reader

    with open(tmp_path / "p.mcap", "rb") as f:  # every message keeps its own seq, poses and the rest alike
        seqs = [(m.sequence, msgpack.unpackb(m.data)["seq"]) for _, _, m in make_reader(f).iter_messages()]
    assert all(a == b for a, b in seqs) and any(b > 0 for _, b in seqs)


@pytest.mark.parametrize(
    ("option", "name", "says"),
    [("--save", "poses.txt", ".jsonl, .csv, .mcap"), ("--save", "poses", ".jsonl"),
     ("--save-video", "overlay.gif", ".mp4, .avi, .mkv"), ("--save-video", "sub/file.txt/o.mp4", "is a file")],
)  # fmt: skip
def test_bad_save_paths_are_one_line_before_any_work(tmp_path, option, name, says):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.txt").write_text("x")
    r = invoke("run", "--source", "demo", "--frames", "1", "--port", str(free_port()), "--control-port",
               str(free_port()), option, str(tmp_path / name))  # fmt: skip
    assert r.returncode == 2 and says in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_picture_of_another_shape_is_letterboxed_into_the_video_not_stretched():
    from streamhand.run.save import letterbox

    tall = np.full((200, 100, 3), 255, np.uint8)  # a portrait picture into a 300x150 video
    out = letterbox(tall, (300, 150))
    assert out.shape == (150, 300, 3)
    cols = np.flatnonzero(out[75, :, 0] > 0)
    assert (cols.min(), cols.max()) == (112, 186)  # 75 wide (the aspect kept), centred
    assert (out[:, :100] == 0).all() and (out[:, 200:] == 0).all()


def _frames(n: int, size: tuple[int, int] = (96, 128)) -> list:
    from streamhand.capture.base import Frame
    from streamhand.geometry import Intrinsics

    h, w = size
    k = Intrinsics(w, h, 100.0, 100.0, w / 2, h / 2)
    return [Frame(i, float(i), float(i), np.full((h, w, 3), 40 * i % 255, np.uint8), k, "0") for i in range(n)]


def test_the_overlay_video_is_drawn_and_encoded_beside_the_run_and_every_frame_is_kept(tmp_path, monkeypatch):
    """The run hands each frame to the writer's own thread and goes on (a 4K frame's encoding takes longer than
    MediaPipe's frame); a full queue makes it wait rather than leave frames out; closing writes what is queued and
    the report's stages time the writer."""
    from streamhand.run.save import OverlayVideo
    from streamhand.run.stats import StageStats

    stats = StageStats()
    video = OverlayVideo(tmp_path / "o.mp4", 30.0, stats)
    real = video._encode

    def slow(*a):  # a writer slower than the run
        time.sleep(0.05)
        real(*a)

    monkeypatch.setattr(video, "_encode", slow)
    frames = _frames(OverlayVideo.QUEUE + 12)
    t0 = time.perf_counter()
    for f in frames[:4]:
        video.write(f, [], {"total": 1.0})
    assert time.perf_counter() - t0 < 0.1  # handed on, not encoded in the run's thread
    for f in frames[4:]:
        video.write(f, [], {"total": 1.0})
    assert time.perf_counter() - t0 > 0.05 * 10  # the queue filled: the run waited for the writer
    video.close()
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames) == video.frames
    cap.release()
    assert stats.percentiles_ms("save_video")["n"] == len(frames) and stats.cpu_ms()["save_video"]["p50"] > 0
    assert not list(tmp_path.glob(".*part*"))


def test_a_writer_that_fails_stops_the_run_at_its_next_frame(tmp_path, monkeypatch, caplog):
    from streamhand.run.save import OverlayVideo, SaveError

    video = OverlayVideo(tmp_path / "o.avi", 30.0)

    def fails(*a):
        raise SaveError("--save-video o.avi: OpenCV cannot write this kind of video here")

    monkeypatch.setattr(video, "_encode", fails)
    frames = _frames(3)
    video.write(frames[0], [], {})
    with pytest.raises(SaveError, match="cannot write"):
        for f in frames[1:]:
            time.sleep(0.2)  # the writer has met the first frame
            video.write(f, [], {})
    with caplog.at_level("WARNING"):
        video.close()
    assert not caplog.records and not (tmp_path / "o.avi").exists()  # the run said it; nothing written


def test_a_writer_that_fails_on_the_last_frames_fails_the_run(tmp_path, monkeypatch):
    """An error on a frame still queued when the stream ends (no next frame to raise it at) was only a log line after
    the summary, the run exiting 0: the run's end waits for the writer and fails with it."""
    from streamhand.run.save import OverlayVideo

    video = OverlayVideo(tmp_path / "o.mp4", 30.0)
    real = video._encode

    def full_on_the_last(frame, poses, text):
        if frame.index == 2:
            raise OSError(28, "No space left on device")
        real(frame, poses, text)

    monkeypatch.setattr(video, "_encode", full_on_the_last)
    for f in _frames(3):
        video.write(f, [], {})
    with pytest.raises(OSError, match="No space left"):
        video.flush()
    video.flush()  # said once: the run's end does not report it again
    video.close()


def test_a_video_name_that_is_not_utf8_is_written_and_a_folder_that_is_not_is_refused(tmp_path):
    """Names read from bytes that are not UTF-8 (a Latin-1 shell): OpenCV's writer crashed the whole process on
    them. The video is written under a plain name and renamed; a folder OpenCV cannot write into is one line."""
    import os

    from streamhand.run.save import OverlayVideo, SaveError

    name = os.fsdecode(b"v\xe9.mp4")
    video = OverlayVideo(tmp_path / name, 30.0)
    for f in _frames(3):
        video.write(f, [], {})
    video.close()
    assert os.listdir(os.fsencode(tmp_path)) == [b"v\xe9.mp4"] and video.frames == 3
    folder = tmp_path / os.fsdecode(b"d\xe9")
    folder.mkdir()
    with pytest.raises(SaveError, match="not valid UTF-8"):
        OverlayVideo(folder / "v.mp4", 30.0)


def test_a_run_whose_video_writer_fails_at_the_end_exits_1_with_the_error_in_its_report(tmp_path, monkeypatch):
    from streamhand.run.save import OverlayVideo

    real = OverlayVideo._encode

    def full_on_the_last(self, frame, poses, text):
        if frame.index == FRAMES - 1:
            raise OSError(28, "No space left on device")
        real(self, frame, poses, text)

    monkeypatch.setattr(OverlayVideo, "_encode", full_on_the_last)
    rep = tmp_path / "r.json"
    r = invoke("run", "--source", "demo", "--frames", str(FRAMES), "--no-realtime", "--port", str(free_port()),
               "--control-port", str(free_port()), "--report", str(rep), "--save-video",
               str(tmp_path / "o.mp4"))  # fmt: skip
    assert r.returncode == 1, r.stderr[-1500:]
    errors = json.loads(rep.read_text())["errors"]
    assert errors == ["publish stage failed: OSError: [Errno 28] No space left on device"]


def test_a_pose_file_that_cannot_take_its_name_says_so_and_fails(tmp_path, monkeypatch):
    """On Windows a file another program holds open (Excel and a .csv) cannot be replaced: the run said nothing
    (the rename's error was logged at debug level), exited 0, and the poses lay in a hidden part file."""


    hold_open(monkeypatch, "poses.csv")
    out = tmp_path / "poses.csv"
    r = invoke("run", "--source", "demo", "--frames", "3", "--no-realtime", "--port", str(free_port()),
               "--control-port", str(free_port()), "--save", str(out))  # fmt: skip
    assert r.returncode == 1, r.stderr[-1500:]
    part = next(tmp_path.glob(".poses.*.part.csv"))
    assert f"--save {out}: could not be written (Permission denied); what was saved is in {part}" in r.stderr
    assert "Traceback" not in r.stderr and len(part.read_text().splitlines()) > 1 and not out.exists()


@pytest.mark.slow
def test_every_run_output_that_cannot_take_its_name_says_where_it_stays(tmp_path, monkeypatch):
    """The MCAP recording of ``--save X.mcap`` and the Rerun recording of ``--rerun X.rrd`` were renamed with a bare
    ``os.replace`` whose failure the run logged at debug level: exit 0, and the recording lay in a hidden part file.
    Each output now says where it stays, and the run fails."""

    pytest.importorskip("rerun")
    names = ("poses.mcap", "overlay.mp4", "hands.rrd")
    hold_open(monkeypatch, *names)
    mcap, video, rrd = (tmp_path / n for n in names)
    r = invoke("run", "--source", "demo", "--frames", "3", "--no-realtime", "--port", str(free_port()),
               "--control-port", str(free_port()), "--save", str(mcap), "--save-video", str(video), "--rerun",
               str(rrd))  # fmt: skip
    assert r.returncode == 1, r.stderr[-1500:]
    assert "Traceback" not in r.stderr
    for option, out in (("--save", mcap), ("--save-video", video), ("--rerun", rrd)):
        part = next(tmp_path.glob(f".{out.stem}.*.part{out.suffix}"))
        assert f"error: {option} {out}: could not be written (Permission denied); what was saved is in {part}" in (
            r.stderr), r.stderr[-1500:]
        assert part.stat().st_size > 0 and not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="a file-size limit (RLIMIT_FSIZE) stands in for a full disk")
@pytest.mark.parametrize(
    ("option", "name", "says"),
    [
        ("--save", "p.jsonl", "hand poses written are in {part}, its last line perhaps cut short"),
        ("--save", "p.csv", "hand poses written are in {part}, its last line perhaps cut short"),
        ("--save", "p.mcap", "messages recorded are in {part}, its end cut short"),
        ("--save-video", "v.mp4", "could not be written to its end (the disk full, or a file-size limit reached); "
                                  "what was written is in {part}"),
        ("--save-video", "v.avi", "could not be written to its end (the disk full, or a file-size limit reached); "
                                  "what was written is in {part}"),
    ],
)
def test_an_output_the_disk_cannot_hold_says_where_what_was_written_stays(option, name, says, tmp_path):
    """A full disk (here a file-size limit, which fails a write the same way): the pose files failed the run with
    ``OSError: [Errno 28]``, naming neither the option nor the file, their lines hidden in a part file; the video was
    reported written (exit 0) and put under its name, unreadable. Each now names the option and where what was
    written stays, nothing under the final name, and the run fails."""
    import resource

    out = tmp_path / name
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, hard))  # this process's files only, put back below
    try:
        r = invoke("run", "--source", "demo", "--frames", "40", "--no-realtime", "--port", str(free_port()),
                   "--control-port", str(free_port()), option, str(out))  # fmt: skip
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert r.returncode == 1, r.stderr[-1500:]
    part = next(tmp_path.glob(f".{out.stem}.*.part{out.suffix}"))
    assert f"{option} {out}: " in r.stderr and says.format(part=part) in r.stderr, r.stderr[-1500:]
    assert "Traceback" not in r.stderr and not out.exists() and part.stat().st_size == 60_000
    if out.suffix in (".jsonl", ".csv"):  # the run stopped on it: its closing line does not read as a success
        assert re.search(r"^failed: \d+/\d+ frames", r.stderr, flags=re.M) and "\ndone: " not in r.stderr, r.stderr


@pytest.mark.slow
def test_an_output_that_fails_on_a_status_message_fails_the_run_in_one_line(tmp_path, monkeypatch):
    """`--save X.mcap` records every topic, `status` too, which the run's own thread publishes: a full disk met on a
    status escaped as "failed unexpectedly" with a crash log and no report. Now as on any other message."""
    from streamhand.outputs import OutputUnfinished
    from streamhand.run.save import PoseFile

    real = PoseFile.__call__

    def full_on_a_status(self, topic, payload):
        if topic == "status" and self.poses:
            self.closed = True
            raise OutputUnfinished(f"--save {self.path}: could not be written (No space left on device)")
        real(self, topic, payload)

    monkeypatch.setattr(PoseFile, "__call__", full_on_a_status)
    rep = tmp_path / "r.json"
    r = invoke("run", "--source", "demo", "--frames", "60", "--port", str(free_port()), "--control-port",
               str(free_port()), "--save", str(tmp_path / "p.mcap"), "--report", str(rep))  # fmt: skip
    assert r.returncode == 1, r.stderr[-1500:]
    assert "failed unexpectedly" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
    errors = json.loads(rep.read_text())["errors"]
    assert errors and "--save" in errors[0] and "No space left on device" in errors[0], errors
