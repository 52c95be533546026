"""``streamhand view --rerun`` and ``run --rerun``: a real publisher's messages logged to a Rerun recording, read back
with the Rerun SDK's own reader (``rr.chunk.RrdReader``); a live viewer stood in for by the ``rerun`` program saving
what it receives; and every bad value as one line, exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from streamhand.stream import protocol
from streamhand.stream import schema as sch
from tests.conftest import free_port
from tests.helpers import hold_open, invoke
from tests.test_viewer import _unused_display

rr = pytest.importorskip("rerun")

CAM = sch.Camera(id="synthetic", width=640, height=480, fx=554.3, fy=554.3, cx=320.0, cy=240.0)
T0_UNIX = 1.7e9


def hand(frame_id: int, track_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(joints_cam, joints_2d, joint_std) of a synthetic hand: a fixed shape per track, drifting along x."""
    shape = np.random.default_rng(track_id).normal(0.0, 0.03, (21, 3))
    shape[0] = 0.0
    joints = shape + np.array([(-0.1 if track_id == 2 else 0.1) + 0.001 * frame_id, 0.0, 0.5])
    uv = CAM.fx * joints[:, :2] / joints[:, 2:] + [CAM.cx, CAM.cy]
    std = 0.004 + 0.0005 * np.arange(21) + 0.001 * (track_id - 1)
    return joints, uv, std


def left_present(frame_id: int) -> bool:
    """The left hand (track 2) comes and goes every 15 frames; the right one (track 1) stays."""
    return (frame_id // 15) % 2 == 0


class SyntheticStream(threading.Thread):
    """A real :class:`~streamhand.stream.publish.Publisher` publishing schema-valid messages at about 100 frames/s
    until :meth:`stop`: per frame the hands' ``hand.pose.*``, then ``hand.frame``; ``status`` every 10 frames and a
    ``log.warning`` every 25."""

    def __init__(self, port: int) -> None:
        from streamhand.stream.publish import Publisher

        super().__init__(daemon=True)
        self.pub = Publisher("127.0.0.1", port, None)
        self.address = f"tcp://127.0.0.1:{port}"
        self._halt = threading.Event()
        self.frames = 0

    def publish_frame(self, i: int) -> None:
        common = {"frame_id": i, "t_capture": 100.0 + i / 30, "t_capture_unix": T0_UNIX + i / 30, "camera": CAM}
        hands = [(1, "right")] + ([(2, "left")] if left_present(i) else [])
        for tid, handed in hands:
            j, uv, std = hand(i, tid)
            pose = sch.HandPoseMsg(topic=protocol.pose_topic(handed), **common, track_id=tid, handedness=handed,
                                   handedness_score=0.9, score=0.95, layout=sch.LAYOUT, units=sch.UNITS,
                                   joints_cam=sch.floats(j), joints_rel=sch.floats(j - j[0]), joints_2d=sch.floats(uv),
                                   joint_std=sch.floats(std), root_source="estimate", modalities=["2d"],
                                   model="synthetic", latency_ms={"detect": 5.0, "total": 20.0 + i % 7})  # fmt: skip
            self.pub.publish(pose.topic, sch.body(pose))
        summary = [sch.HandSummary(track_id=t, handedness=h, score=0.95) for t, h in hands]  # type: ignore[arg-type]
        frame = sch.FrameMsg(topic=protocol.TOPIC_FRAME, **common, hands=summary, latency_ms={"total": 21.0 + i % 7})
        self.pub.publish(frame.topic, sch.body(frame))
        if i % 10 == 0:
            status = sch.StatusMsg(topic=protocol.TOPIC_STATUS, **common, uptime_s=1.0 + i / 30, source="synthetic",
                                   source_state="ok", frames_in=i + 1, frames_processed=i + 1, fps=30.0, drops={},
                                   corrupt_frames=0, hands_published=0, latency_ms={}, backend="none",
                                   backend_reason="", detector="none", stalled={})  # fmt: skip
            self.pub.publish(status.topic, sch.body(status))
        if i % 25 == 0:
            msg = sch.LogMsg(topic="log.warning", level="warning", message=f"frame {i}", logger="synthetic")
            self.pub.publish(msg.topic, sch.body(msg))

    def run(self) -> None:
        while not self._halt.is_set():
            self.publish_frame(self.frames)
            self.frames += 1
            time.sleep(0.01)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.pub.close()

    def __enter__(self) -> SyntheticStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_rrd(path: Path) -> dict[str, list[dict]]:
    """Every row of the recording's first recording store, per entity path (the SDK's chunk reader)."""
    import pyarrow as pa

    rows: dict[str, list[dict]] = {}
    with warnings.catch_warnings():  # a file still being written has no footer yet: the SDK warns, and scans it
        warnings.simplefilter("ignore")
        chunks = list(rr.chunk.RrdReader(path).stream())
    for chunk in chunks:
        batch = chunk.to_record_batch()
        columns = {}  # times as integer nanoseconds (a datetime.timedelta cannot hold them)
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            columns[name] = (col.cast(pa.int64()) if pa.types.is_temporal(col.type) else col).to_pylist()
        n = batch.num_rows
        rows.setdefault(chunk.entity_path, []).extend({k: v[i] for k, v in columns.items()} for i in range(n))
    return rows


#: rerun-sdk 0.41's chunk reader; before it (0.23, what pip resolves beside numpy 1.x) the dataframe API reads files
HAS_CHUNK_READER = hasattr(rr, "chunk")


def joint_rows(path: Path, entity: str = "/hands/1/joints") -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(frame, positions, radii) of every logged row of a joints entity, with whichever reader this SDK has."""
    if HAS_CHUNK_READER:
        return [(r["frame"], np.array(r["Points3D:positions"]), np.array(r["Points3D:radii"]))
                for r in read_rrd(path).get(entity, []) if r.get("Points3D:positions")]  # fmt: skip
    table = rr.dataframe.load_recording(str(path)).view(index="frame", contents=entity).select().read_all()
    if f"{entity}:Position3D" not in table.schema.names:
        return []
    cols = [table.column(n).to_pylist() for n in ("frame", f"{entity}:Position3D", f"{entity}:Radius")]
    return [(f, np.array(p), np.array(r)) for f, p, r in zip(*cols) if p]


def entity_paths(path: Path) -> set[str]:
    if HAS_CHUNK_READER:
        return set(rr.chunk.RrdReader(path).store().schema().entity_paths())
    return {c.entity_path for c in rr.dataframe.load_recording(str(path)).schema().component_columns()}


def _column(rows: list[dict], name: str) -> list:
    return [r[name] for r in rows if r.get(name) is not None]


def test_view_rerun_save_writes_a_recording_the_sdk_reads_back(tmp_path):
    out = tmp_path / "rec" / "hands.rrd"  # a missing folder is made, as for every output file
    with SyntheticStream(free_port()) as stream:
        t0 = time.monotonic()
        r = invoke("view", "--rerun", "--save", str(out), "--count", "60", "--address", stream.address)
        seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    assert "logged 60 hand poses" in r.stderr and out.is_file()
    assert not list(out.parent.glob(".*part*"))  # written under a temporary name, renamed when complete
    paths = entity_paths(out)
    expected = {"/", "/camera", "/hands/1/joints", "/hands/1/bones", "/camera/hands/1/landmarks",
                "/camera/hands/1/bones", "/hands/2/joints", "/metrics/latency_ms", "/metrics/fps",
                "/metrics/joint_std_mm/1", "/metrics/joint_std_mm/2", "/log"}  # fmt: skip
    assert expected <= paths, expected - paths
    joints = joint_rows(out)  # the 3D skeleton: joints_cam in metres (float32), radius = joint_std
    assert len(joints) >= 30
    for frame, positions, radii in joints:
        j, _, std = hand(frame, 1)
        np.testing.assert_allclose(positions, j, atol=2e-6)
        np.testing.assert_allclose(radii, std, atol=1e-7)
    if not HAS_CHUNK_READER:  # the component-level checks below read rerun-sdk 0.41's column names
        return
    reader = rr.chunk.RrdReader(out)
    assert reader.recordings()[0].application_id == "streamhand" and reader.blueprints()  # layout sent with it
    schema = reader.store().schema()
    assert {c.name for c in schema.index_columns()} >= {"frame", "capture", "capture_time"}
    rows = read_rrd(out)

    # the 3D skeleton: joints_cam in metres (float32), radius = joint_std
    joints = [r for r in rows["/hands/1/joints"] if r.get("Points3D:positions")]
    assert len(joints) >= 30
    for row in joints:
        j, _, std = hand(row["frame"], 1)
        np.testing.assert_allclose(np.array(row["Points3D:positions"]), j, atol=2e-6)
        np.testing.assert_allclose(row["Points3D:radii"], std, atol=1e-7)
        assert row["capture"] is not None and row["capture_time"] is not None
    strips = _column(rows["/hands/1/bones"], "LineStrips3D:strips")[0]
    assert len(strips) == 6 and [len(s) for s in strips] == [5, 5, 5, 5, 5, 4]  # five fingers from the wrist, palm
    assert _column(rows["/hands/1/bones"], "LineStrips3D:labels")[0] == ["right 1"]
    # the 2D landmarks, in the image space the camera's pinhole spans
    for row in rows["/camera/hands/1/landmarks"]:
        np.testing.assert_allclose(np.array(row["Points2D:positions"]), hand(row["frame"], 1)[1], atol=1e-3)
    pinhole = rows["/camera"][0]
    assert pinhole["Pinhole:resolution"] == [[640.0, 480.0]]
    k = np.array(pinhole["Pinhole:image_from_camera"][0]).reshape(3, 3).T  # stored column-major
    np.testing.assert_allclose(k, [[554.3, 0, 320], [0, 554.3, 240], [0, 0, 1]], rtol=1e-6)
    # the left hand came and went: cleared when hand.frame stopped listing it
    cleared = [r["frame"] for r in rows["/hands/2"] if r.get("Clear:is_recursive")]
    assert cleared and all(not left_present(f) for f in cleared)
    # time series: latency (hand.frame's total), fps (status), quality (mean joint_std, mm)
    lat = rows["/metrics/latency_ms"]
    assert [r["Scalars:scalars"] for r in lat] == [[21.0 + r["frame"] % 7] for r in lat]
    assert {v[0] for v in _column(rows["/metrics/fps"], "Scalars:scalars")} == {30.0}
    quality = _column(rows["/metrics/joint_std_mm/1"], "Scalars:scalars")
    assert quality and all(abs(v[0] - 1000 * hand(0, 1)[2].mean()) < 1e-3 for v in quality)
    assert "synthetic: frame" in _column(rows["/log"], "TextLog:text")[0][0]
    print(f"view --rerun --save: 60 poses in {seconds:.1f} s, {out.stat().st_size} bytes")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_view_rerun_streams_to_a_listening_viewer(tmp_path):
    """No --save: a viewer that listens on --port gets the stream (here the `rerun` program itself, headless,
    saving what it receives)."""
    from streamhand.viz.rerun_log import _executable

    exe = _executable() or "rerun"
    port, got = free_port(), tmp_path / "received.rrd"
    viewer = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", str(got)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        with SyntheticStream(free_port()) as stream:
            r = invoke("view", "--rerun", "--port", str(port), "--count", "20", "--address", stream.address,
                       env={"DISPLAY": None, "WAYLAND_DISPLAY": None})  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"rerun+http://127.0.0.1:{port}/proxy" in r.stderr
        deadline = time.monotonic() + 10
        joints: list = []
        while time.monotonic() < deadline and len(joints) < 5:
            time.sleep(0.3)
            try:
                joints = joint_rows(got)
            except Exception:  # the file is still being written
                joints = []
        assert len(joints) >= 5
    finally:
        viewer.send_signal(signal.SIGINT)
        try:
            viewer.wait(10)
        except subprocess.TimeoutExpired:
            viewer.kill()


@pytest.mark.slow
def test_run_rerun_logs_the_published_stream_and_the_frames(tmp_path, tiny_checkpoint):
    """``run --rerun FILE.rrd``: the same entities from the publisher's tap, plus every processed frame's image."""
    out = tmp_path / "run.rrd"
    t0 = time.monotonic()
    r = invoke("run", "--source", "demo", "--frames", "20", "--no-realtime", "--model", str(tiny_checkpoint),
               "--port", str(free_port()), "--control-port", str(free_port()), "--rerun", str(out))  # fmt: skip
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    paths = entity_paths(out)
    assert "/camera/rgb" in paths and any(p.startswith("/hands/") and p.endswith("/joints") for p in paths)
    if not HAS_CHUNK_READER:  # the images' and scalars' columns below are read with rerun-sdk 0.41's reader
        return
    rows = read_rrd(out)
    images = [r for r in rows["/camera/rgb"] if r.get("EncodedImage:blob")]
    assert sorted(r["frame"] for r in images) == list(range(20))
    assert all(r["EncodedImage:media_type"] == ["image/jpeg"] for r in images)
    import cv2

    first = cv2.imdecode(np.frombuffer(bytes(images[0]["EncodedImage:blob"][0]), np.uint8), cv2.IMREAD_COLOR)
    assert first.shape == (480, 640, 3)
    assert rows["/camera"][0]["Pinhole:resolution"] == [[640.0, 480.0]]
    hands = {p.split("/")[2] for p in rows if p.startswith("/hands/") and p.endswith("/joints")}
    assert hands, sorted(rows)
    assert len(_column(rows["/metrics/latency_ms"], "Scalars:scalars")) == 20
    print(f"run --rerun: 20 demo frames in {seconds:.1f} s, tracks {sorted(hands)}, {out.stat().st_size} bytes")


# --------------------------------------------------------------------------------------------- bad input
def _one_line_exit_2(r, *words: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, err[-1500:])
    assert "Traceback" not in r.stderr and len(err.splitlines()) == 1, err[-1500:]
    assert all(w in err for w in words), err
    return err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rerun", "--save", "{tmp}/x.txt"], ["--save", ".rrd"]),
        (["--rerun", "--save", "/proc/no-such/x.rrd"], ["--save", "cannot write"]),
        (["--rerun", "--save", "{tmp}"], ["--save", ".rrd"]),
        (["--save", "{tmp}/x.rrd"], ["--save", "--rerun"]),
        (["--rerun", "--foxglove"], ["--rerun", "--foxglove"]),
        (["--count", "5"], ["--count", "--rerun"]),
        (["--port", "9000"], ["--port", "--address"]),
        (["--rerun", "--save", "{tmp}/x.rrd", "--port", "9000"], ["--port"]),
    ],
)
def test_bad_viewer_options_are_one_line(args, words, tmp_path):
    r = invoke("view", *[a.replace("{tmp}", str(tmp_path)) for a in args], "--address", "tcp://127.0.0.1:1")
    _one_line_exit_2(r, *words)
    assert not list(tmp_path.iterdir())  # nothing written


def test_no_viewer_and_no_display_is_one_line():
    port = free_port()  # nothing listens there
    env = {"DISPLAY": None, "WAYLAND_DISPLAY": None}
    r = invoke("view", "--rerun", "--port", str(port), "--address", "tcp://127.0.0.1:1", env=env)
    _one_line_exit_2(r, "--rerun", f"127.0.0.1:{port}", "DISPLAY is not set", ".rrd")
    if not _listening(9876):  # run --rerun spawn: the default viewer port
        r = invoke("run", "--frames", "1", "--no-realtime", "--port", str(free_port()), "--control-port",
                   str(free_port()), "--rerun", "spawn", env=env)  # fmt: skip
        _one_line_exit_2(r, "--rerun", "127.0.0.1:9876", "DISPLAY is not set")


def test_a_viewer_that_cannot_open_its_window_is_one_line():
    """A display that does not answer: the spawned viewer exits, and its reason is the one line."""
    port = free_port()
    t0 = time.monotonic()
    r = invoke("view", "--rerun", "--port", str(port), "--address", "tcp://127.0.0.1:1",
               env={"DISPLAY": _unused_display(), "WAYLAND_DISPLAY": None})  # fmt: skip
    err = _one_line_exit_2(r, "--rerun", "the Rerun viewer did not start", "X server", ".rrd")
    assert time.monotonic() - t0 < 15, err
    assert not _listening(port)


@pytest.mark.parametrize(("value", "words"), [("x.txt", [".rrd"]), ("/proc/no-such/x.rrd", ["cannot write"])])
def test_run_rerun_bad_file_is_one_line_before_any_work(value, words):
    r = invoke("run", "--frames", "1", "--no-realtime", "--port", str(free_port()), "--control-port",
               str(free_port()), "--rerun", value)  # fmt: skip
    _one_line_exit_2(r, "--rerun", *words)


def test_without_the_sdk_the_option_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rerun", None)  # import rerun raises ImportError
    r = invoke("view", "--rerun", "--save", str(tmp_path / "x.rrd"), "--address", "tcp://127.0.0.1:1")
    _one_line_exit_2(r, "--save", "pip install 'streamhand[viewers]'")
    r = invoke("run", "--frames", "1", "--port", str(free_port()), "--control-port", str(free_port()), "--rerun",
               str(tmp_path / "x.rrd"))  # fmt: skip
    _one_line_exit_2(r, "--rerun", "pip install 'streamhand[viewers]'")


def test_streamhand_imports_without_the_viewer_sdks():
    code = ("import sys; sys.modules['rerun'] = None; sys.modules['foxglove'] = None; import streamhand, "
            "streamhand.cli, streamhand.app, streamhand.viz.rerun_log, streamhand.viz.foxglove_bridge")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]


def test_view_rerun_save_that_cannot_take_its_name_says_where_it_stays(tmp_path, monkeypatch):
    """A recording logged to its end whose name cannot be taken (held open by another program, as on Windows): one
    line saying where it stays, and exit 1 (it was a traceback)."""
    hold_open(monkeypatch, "held.rrd")
    out = tmp_path / "held.rrd"
    with SyntheticStream(free_port()) as stream:
        r = invoke("view", "--rerun", "--save", str(out), "--count", "5", "--address", stream.address)
    part = next(tmp_path.glob(".held.*.part.rrd"))
    assert r.returncode == 1, r.stderr[-1500:]
    assert r.stderr.strip().splitlines()[-1] == (f"error: --save {out}: could not be written (Permission denied); "
                                                 f"what was saved is in {part}")  # fmt: skip
    assert len(joint_rows(part)) >= 1 and not out.exists()


@pytest.mark.parametrize(("platform", "flags"), [("linux", None), ("win32", 0x200)])
def test_a_spawned_viewer_is_out_of_reach_of_the_ctrl_c_that_stops_streamhand(platform, flags, monkeypatch):
    """The viewer ``--rerun`` starts is left open when streamhand stops: its own session on POSIX, its own process
    group on Windows (where ``start_new_session`` is ignored: the console's Ctrl+C closed the viewer too)."""
    import subprocess

    from streamhand.viz import rerun_log

    seen: dict = {}

    def popen(args, **kwargs):
        seen.update(kwargs)
        raise OSError("stop here")

    monkeypatch.setattr(rerun_log, "_executable", lambda: "rerun")
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(rerun_log.sys, "platform", platform)
    with pytest.raises(OSError, match="stop here"):
        rerun_log._spawn(free_port(), "--rerun")
    assert seen["start_new_session"] is True and seen.get("creationflags") == flags
