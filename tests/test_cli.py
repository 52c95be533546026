"""The command line: as processes, the demo end to end with a subscriber in another process, clean shutdown on
SIGTERM and what a run's own stderr shows (native log lines, warnings, the live line); in this process (typer's
CliRunner), every bad-input case giving one line and exit code 2."""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import zmq

from streamhand.stream import protocol
from tests.conftest import free_port
from tests.helpers import ROOT, cli, invoke

# waits up to argv[3] s for the first message, then stops when the stream has been quiet for argv[4] s, or 2 s
# after the argv[5]-th hand.frame (what the last frame's other topics need to arrive)
SUBSCRIBER = r"""
import json, sys
from streamhand.stream.client import PoseSubscriber
sub = PoseSubscriber(sys.argv[1], topics=("",), raw=True, timeout=float(sys.argv[3]))
out = open(sys.argv[2], "w")
frames = 0
try:
    for m in sub:
        frames += m.topic == "hand.frame"
        sub.timeout = 2.0 if frames >= int(sys.argv[5]) else float(sys.argv[4])
        out.write(json.dumps({"topic": m.topic, "data": m.data, "gap": m.gap}) + "\n")
        out.flush()
except TimeoutError:
    pass
"""


@pytest.mark.slow
def test_demo_end_to_end_with_external_subscriber(tmp_path):
    port, cport = free_port(), free_port()
    out = tmp_path / "msgs.jsonl"
    sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, f"tcp://127.0.0.1:{port}", str(out), "60", "10", "90"],
                           cwd=str(ROOT))  # fmt: skip
    try:
        time.sleep(1.0)
        r = cli("run", "--source", "demo", "--frames", "90", "--no-realtime", "--port", str(port),
                "--control-port", str(cport), "--report", str(tmp_path / "r.json"))  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        sub.wait(timeout=120)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames_processed"] == 90 and rep["frames_in"] == 90
    assert rep["detection_rate"] >= 0.8
    assert rep["epe_mean_mm"] <= 30
    # handedness is the track's: the demo's two hands keep theirs (MediaPipe's own label is wrong on some frames)
    assert rep["handedness_switches"] == 0 and rep["handedness_accuracy"] >= 0.95
    assert 0 < rep["jitter_mm"] < 20 and 0 <= rep["lag_ms"] <= 34  # the default smoothing: no more than a frame late
    for k in ("p50", "p95", "p99"):
        assert rep["latency_ms"]["end_to_end"][k] > 0
    msgs = [json.loads(line) for line in out.read_text().splitlines()]
    by_topic: dict[str, list[int]] = {}
    for m in msgs:
        assert protocol.validate(m["topic"], m["data"]) == [], m["topic"]
        by_topic.setdefault(m["topic"], []).append(m["data"]["seq"])
    assert len(by_topic["hand.frame"]) == 90
    for topic, seqs in by_topic.items():
        if topic.startswith("hand."):
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gap in {topic}"
    assert "hand.pose.left" in by_topic and "hand.pose.right" in by_topic


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_cleanly_and_writes_report(tmp_path, sig):
    """SIGTERM (a service manager's stop) and SIGHUP (the terminal closed) end a run as Ctrl-C does: the report and
    the saved poses written under their names, the ports freed, exit 0."""
    port, cport = free_port(), free_port()
    env = {**os.environ, "GLOG_minloglevel": "2"}
    p = subprocess.Popen([sys.executable, "-m", "streamhand.cli", "run", "--port", str(port), "--control-port",
                          str(cport), "--report", str(tmp_path / "r.json"), "--save", str(tmp_path / "p.jsonl")],
                         cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.SUBSCRIBE, b"hand.frame")
    s.connect(f"tcp://127.0.0.1:{port}")
    try:
        assert s.poll(120_000), "no frames published"
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        s.close(0)
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-2000:]
    assert json.loads((tmp_path / "r.json").read_text())["frames_processed"] > 0
    assert (tmp_path / "p.jsonl").stat().st_size > 0 and not list(tmp_path.glob(".*part*"))
    # the ports are free again
    t = ctx.socket(zmq.PUB)
    t.bind(f"tcp://127.0.0.1:{port}")
    t.close(0)


def _busy_port():
    port = free_port()
    s = zmq.Context.instance().socket(zmq.PUB)
    s.bind(f"tcp://127.0.0.1:{port}")
    return port, s


def test_precompile_keeps_the_arithmetic_on_disk_or_says_why_not(monkeypatch):
    """`streamhand precompile` leaves the compiled arithmetic in numba's cache (here, where `.ci/setup.sh` put it);
    where nothing could be kept (no writable folder: `jit.UNCACHED`), it says how to fix that in one line, exit 2;
    without numba it has nothing to do and says so."""
    from streamhand import jit

    r = invoke("precompile")
    assert r.returncode == 0, r.stderr
    assert "per-frame arithmetic ready in" in r.stdout and "numba; machine code kept on disk" in r.stdout
    monkeypatch.setattr(jit, "UNCACHED", ["_encode_2d"])
    r = invoke("precompile")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("set NUMBA_CACHE_DIR to one and run again")
    monkeypatch.setattr(jit, "COMPILED", False)  # numba missing: plain Python, nothing to do
    r = invoke("precompile")
    assert r.returncode == 0 and r.stdout.startswith("nothing to compile: the per-frame arithmetic runs as plain")


def test_precompile_refuses_a_numba_cache_dir_it_cannot_use(tmp_path, monkeypatch):
    """NUMBA_CACHE_DIR where no folder can be (under a file): numba kept the code in its own fallback folder and
    precompile said all was well, where the folder a container's user named stays empty."""
    (tmp_path / "file").write_text("x")
    for where in (tmp_path / "file" / "cache", tmp_path / "file"):
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(where))
        r = invoke("precompile")
        assert r.returncode == 2 and r.stderr.startswith(f"error: NUMBA_CACHE_DIR {where}: "), r.stderr
        assert r.stderr.count("\n") == 1 and not r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "7"], "--camera '7': not available (cameras:"),
        (["--camera", "realsense"], "--camera 'realsense': neither a camera index (0, 1, ...), a device path that "
                                    "exists, nor a stream URL; an Intel RealSense: --realsense"),
        (["--video", "no/such/file.mp4"], "video not found"),
        (["--video", "{empty}"], "--video {empty}: a folder, not a video (use --images"),
        (["--images", "{empty}"], "no images"),
        (["--realsense"], "RealSense"),
        (["--source", "webcam"], "error: --source: Input should be"),
        (["--camera", "0", "--video", "x.mp4"], "choose one source"),
        (["--frames", "0"], "--frames: Input should be greater than or equal to 1"),
        (["--port", "70000"], "--port: Input should be less than or equal to 65535"),
        (["--port", "{busy}"], "--port"),
        (["--port", "5999", "--control-port", "5999"], "the PUB port (--port) and the control port (--control-port) "
                                                       "are both 5999; give them different ports"),
        (["--port", "5561"], "are both 5561"),  # the control port left at its default
        (["--config", "{badkey}"], "did you mean 'detect'"),
        (["--config", "no/such.yaml"], "config file not found"),
        (["--config", "{empty}"], "config file {empty}: is a folder; give a .yaml file"),
        (["--model", "{notckpt}"], "notckpt.pt: not a checkpoint (a checkpoint is the zip archive torch.save writes"),
        (["--model", "missing.pt"], "checkpoint not found"),
        (["--model", "exported.onnx"], "exported.onnx: an ONNX graph; --model takes the checkpoint (.pt)"),
        (["--hand-size", "3"], "error: --hand-size:"),
        (["--fov", "0"], "error: --fov: Input should be greater than or equal to 10"),
        (["--fov", "2"], "error: --fov: Input should be greater than or equal to 10"),  # fx 18 000: z of metres
        (["--fov", "175"], "error: --fov: Input should be less than or equal to 170"),
        (["--samples", "1"], "error: --samples: one posterior sample has no spread"),
        (["--modalities", "rgb"], "--modalities rgb: the model has no rgb expert (it reads 2d, world)"),
        (["--modalities", "cloud"], "--modalities cloud: the model has no cloud expert"),
        (["--modalities", "bogus"], "--modalities bogus: choose from 2d, world, rgb, depth, cloud"),
        (["--intrinsics", "{badintr}"], "--intrinsics"),
        (["--video", "{video}", "--intrinsics", "{intr_abc}"], "--intrinsics: {intr_abc}: fx must be a number"),
        (["--video", "{video}", "--intrinsics", "{intr_neg}"], "fx must be positive"),
        (["--video", "{video}", "--intrinsics", "{intr_yaml}"], "not valid YAML"),
        (["--video", "{video}", "--intrinsics", "{intr_cx}"], "principal point (5000, 120) lies outside the 320x240"),
        (["--images", "{pic}", "--intrinsics", "{intr_wide}"], "are for 1280x720 but the frames are 320x240"),
        (["--show"], "no display"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    """In this process (the table is long; the process's own stderr is checked below, in
    test_failures_print_our_one_line_alone)."""
    busy_port, busy = _busy_port()
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("detct:\n  max_hands: 2\n")
    (tmp_path / "notckpt.pt").write_bytes(b"garbage")
    (tmp_path / "k.json").write_text('{"width": 640}')
    k = '{"width": 320, "height": 240, "fx": FX, "fy": 300, "cx": 160, "cy": 120}'
    (tmp_path / "abc.json").write_text(k.replace("FX", '"abc"'))
    (tmp_path / "neg.json").write_text(k.replace("FX", "-300"))
    (tmp_path / "k.yaml").write_text("width: 320\nheight: [240\n")
    (tmp_path / "cx.json").write_text(k.replace("FX", "300").replace('"cx": 160', '"cx": 5000'))
    (tmp_path / "wide.json").write_text('{"width": 1280, "height": 720, "fx": 900, "fy": 900, "cx": 640, "cy": 360}')
    (tmp_path / "pics").mkdir()
    cv2.imwrite(str(tmp_path / "pics" / "a.png"), np.zeros((240, 320, 3), np.uint8))
    (tmp_path / "v.mp4").write_bytes(b"")  # never opened: the intrinsics are checked first
    subs = {"{empty}": str(tmp_path / "empty"), "{busy}": str(busy_port), "{badkey}": str(tmp_path / "bad.yaml"),
            "{notckpt}": str(tmp_path / "notckpt.pt"), "{badintr}": str(tmp_path / "k.json"),
            "{intr_abc}": str(tmp_path / "abc.json"), "{intr_neg}": str(tmp_path / "neg.json"),
            "{intr_yaml}": str(tmp_path / "k.yaml"), "{video}": str(tmp_path / "v.mp4"),
            "{intr_cx}": str(tmp_path / "cx.json"), "{intr_wide}": str(tmp_path / "wide.json"),
            "{pic}": str(tmp_path / "pics")}  # fmt: skip
    args = [subs.get(a, a) for a in args]
    message = "".join(subs.get(p, p) for p in re.split(r"(\{\w+\})", message))
    extra = [] if "--port" in args else ["--port", str(free_port()), "--control-port", str(free_port())]
    try:
        frames = [] if "--frames" in args else ["--frames", "1"]
        r = invoke("run", *args, *extra, *frames, env={"DISPLAY": ""})
    finally:
        busy.close(0)
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr
    assert message.lower() in r.stderr.lower(), r.stderr[-1500:]


def test_bad_tracking_value_is_one_line_exit_2(tmp_path):
    r = invoke("run", "--images", str(tmp_path), "--tracking", "sometimes")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --tracking: Input should be 'auto', 'on' or 'off'"]


def test_echo_says_what_it_waits_for_and_times_out_with_a_hint():
    addr = f"tcp://127.0.0.1:{free_port()}"
    r = invoke("echo", "--address", addr, "--topic", "hand.pose", "--timeout", "0.3")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"waiting for hand.pose on {addr}; giving up after 0.3 s without a message (Ctrl-C stops)"
    assert lines[1].startswith(f"error: nothing received from {addr} in 0.3 s: is `streamhand run` running")
    assert len(lines) == 2
    r = invoke("echo", "--address", addr, "--topic", "", "--timeout", "0.1")  # the empty prefix: every topic
    assert r.stderr.startswith(f"waiting for all topics on {addr};"), r.stderr


def test_echo_default_timeout_is_finite():
    from typer.main import get_command

    from streamhand.cli import app

    opts = {p.name: p for p in get_command(app).commands["echo"].params}
    assert opts["timeout"].default == 30.0


def test_info_lists_versions():
    r = invoke("info")
    assert r.returncode == 0
    assert "mediapipe" in r.stdout and "onnxruntime providers" in r.stdout
    assert r.stdout.splitlines()[1].split()[0] == "CPU"
    assert "compiled arithmetic      numba; machine code kept on disk" in r.stdout  # as .ci/setup.sh leaves it


def test_info_says_where_an_installed_package_does_not_import(monkeypatch):
    """pyrealsense2 installed without libusb-1.0 was listed with its version, as if usable."""
    import importlib.metadata as md

    import streamhand.tools.about as about

    real = importlib.import_module

    def refuse(name, *a, **k):
        if name == "pyrealsense2":
            raise ImportError("libusb-1.0.so.0: cannot open shared object file")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", refuse)
    monkeypatch.setattr(md, "version", lambda pkg: "2.59.0")
    assert about._version("pyrealsense2") == "2.59.0 (does not import: libusb-1.0.so.0: cannot open shared object file)"
    assert about._version("numpy") == "2.59.0"  # not an optional one: not imported here


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "7"], "error: --camera '7': not available"),
        (["--video", "{bad}"], "error: cannot read video"),
    ],
)
def test_failures_print_our_one_line_alone(tmp_path, args, message):
    """OpenCV's and FFmpeg's own warnings are not shown (a user would take them for the error)."""
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    args = [str(tmp_path / "bad.mp4") if a == "{bad}" else a for a in args]
    r = cli("run", *args, "--frames", "1", timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr


def _demo_run(*args: str, env: dict | None = None):
    ports = ["--port", str(free_port()), "--control-port", str(free_port())]
    r = cli("run", *args, "--source", "demo", "--no-realtime", *ports, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-1500:]
    return r


# Two `streamhand run` processes on the demo, opposite in every respect checked below (what their stderr must or
# must not show); 40 frames, enough for the live line to be drawn.
@pytest.fixture(scope="module")
def quiet_run():
    """Bound to this machine, no live line (as when piped), --compare-mediapipe."""
    return _demo_run("--frames", "40", "--bind", "127.0.0.1", "--compare-mediapipe", env={"STREAMHAND_LIVE": "0"})


@pytest.fixture(scope="module")
def verbose_run():
    """-v, bound beyond this machine, the live status line as on a terminal, --compare-mediapipe."""
    return _demo_run("-v", "--frames", "40", "--bind", "0.0.0.0", "--compare-mediapipe", env={"STREAMHAND_LIVE": "1"})


@pytest.mark.slow
def test_a_run_shows_no_native_log_lines_unless_verbose(quiet_run, verbose_run):
    from streamhand.quiet import NATIVE_NOISE

    assert not [ln for ln in quiet_run.stderr.splitlines() if NATIVE_NOISE.match(ln)], quiet_run.stderr
    assert "DEBUG streamhand.native: " in verbose_run.stderr  # -v shows them, as debug lines
    assert "DEBUG matplotlib" not in verbose_run.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("run", "warned"), [("verbose_run", True), ("quiet_run", False)], ids=["0.0.0.0", "127.0.0.1"])
def test_binding_beyond_this_machine_warns(request, run, warned):
    r = request.getfixturevalue(run)
    assert ("without authentication" in r.stderr) == warned


@pytest.mark.slow
@pytest.mark.parametrize(("run", "live"), [("verbose_run", True), ("quiet_run", False)], ids=["1", "0"])
def test_live_status_line_on_a_terminal_only(request, run, live):
    r = request.getfixturevalue(run)
    shown = re.search(r"\[#*-*\] \d+/40 frames  [\d.]+ fps  \d+ hands  e2e", r.stderr)  # (\r read as a newline)
    assert bool(shown) == live
    assert "--compare-mediapipe: timing MediaPipe alone on the same 40 frames" in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("done: 40/40 frames")  # the live line is gone


def test_a_paced_run_compared_with_mediapipe_has_no_ratio_of_frame_times(tmp_path):
    """Paced, the run's time per frame is the source's period: its comparison is MediaPipe alone paced, not a ratio."""
    rep = tmp_path / "r.json"
    r = invoke("run", "--source", "demo", "--frames", "12", "--compare-mediapipe", "--report", str(rep), "--port",
               str(free_port()), "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    report = json.loads(rep.read_text())
    assert "ratio_to_mediapipe" not in report and report["mediapipe_alone"]["paced"]["frames"] > 0
    assert "of MediaPipe alone" not in r.stderr
    said = r.stderr.rstrip().splitlines()[-1]
    assert re.search(r", e2e p95 \d+\.\d ms (below|above) MediaPipe alone \(paced\)$", said), said


def test_options_the_demo_cannot_honour_are_said(tmp_path, caplog):
    k = tmp_path / "k.json"
    k.write_text('{"width": 640, "height": 480, "fx": 500, "fy": 500, "cx": 320, "cy": 240}')
    r = invoke("run", "--source", "demo", "--mirror", "--intrinsics", str(k), "--frames", "1", "--no-realtime",
               "--port", str(free_port()), "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    assert "--mirror: no effect on this demo source (the demo renders a true view" in caplog.text
    assert "--intrinsics: no effect on this demo source (the demo gives its own camera)" in caplog.text


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"kind": "video", "video": "v.mp4", "width": 320, "height": 240, "fps": 60},
         ["--width and --height: no effect on this video source (its frames come at their own size)",
          "--fps: no effect on this video source (it is timed by its own frame rate)"]),
        ({"kind": "images", "images": "d", "fps": 5}, []),  # the images' pace and clock
        ({"kind": "video", "video": "v.mp4", "demo_hands": 1, "demo_seed": 3},
         ["--demo-hands and --demo-seed: no effect on this video source (only the demo renders hands)"]),
        ({"kind": "camera", "realtime": False}, ["--no-realtime: no effect on this camera source (a camera delivers "
                                                 "at its own pace)"]),
        ({"kind": "camera", "intrinsics": "k.json", "fov_deg": 70}, ["--fov: no effect on this camera source (the "
                                                                     "camera's intrinsics are given)"]),
        ({"kind": "camera", "width": 1280, "height": 720, "fps": 60, "mirror": True}, []),
        ({"kind": "realsense", "realsense_file": "r.bag", "width": 640, "intrinsics": "k.json"},
         ["--width: no effect on this realsense source (its frames come at their own size)",
          "--intrinsics: no effect on this realsense source (the realsense gives its own camera)"]),
        ({"kind": "realsense", "width": 640, "fps": 30}, []),  # a live camera is set to them
    ],
)  # fmt: skip
def test_settings_a_source_does_not_use_are_said(settings, said):
    from streamhand.capture.factory import unused_settings
    from streamhand.runtime_config import SourceConfig

    assert unused_settings(SourceConfig(**settings)) == said


@pytest.mark.parametrize(
    ("value", "tty", "wanted", "warned"),
    [("1", False, True, False), ("yes", False, True, False), ("ON", False, True, False), ("0", True, False, False),
     ("no", True, False, False), ("", True, True, False), ("maybe", False, False, True), ("maybe", True, True, True)],
)  # fmt: skip
def test_streamhand_live_reads_the_usual_words(monkeypatch, caplog, value, tty, wanted, warned):
    import io

    from streamhand.run.live_line import wanted as live_wanted

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return tty

    monkeypatch.setenv("STREAMHAND_LIVE", value)
    assert live_wanted(Terminal()) is wanted
    assert ("STREAMHAND_LIVE=maybe: give 1" in caplog.text) is warned
