"""``run --save`` (poses to JSON lines, CSV or MCAP) and ``--save-video`` (the overlay): every processed frame is in the
file, what a subscriber received, nothing lost at the end. Real demo runs, real OpenCV video, the real mcap library."""

from __future__ import annotations

import csv
import json

import cv2
import msgpack
import numpy as np
import pytest

from streamhand.run.save import csv_header
from streamhand.stream.recording import check_recording
from tests.conftest import free_port
from tests.helpers import invoke

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
