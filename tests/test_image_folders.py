"""Image folders as users expect: every still is read, detected and published once (paced or not), each
still is detected on its own (MediaPipe's static image mode) unless ``--tracking on``, and the detection
rate is the share of images with a hand. Real MediaPipe on rendered hands, real ZeroMQ sockets."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamhand.capture.factory import make_source
from streamhand.capture.files import VideoSource
from streamhand.detect import MediaPipeHands, TrackLinker
from streamhand.infer import Lifter, TorchBackend
from streamhand.run.pipeline import Pipeline
from streamhand.runtime_config import RunConfig
from streamhand.stream import protocol
from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from tests.conftest import free_port
from tests.helpers import invoke, rendered_frames

N_HANDS = 6


def _write(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(images):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def stills() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(N_HANDS rendered stills in which MediaPipe finds exactly one hand, N_HANDS hand-free rooms)."""
    from streamhand.synth.render import background

    rgbs, _, _ = rendered_frames(N_HANDS + 6, 320, 240, seed=11)
    rng = np.random.default_rng(5)
    rooms = [np.clip(background(rng, 240, 320, "room"), 0, 255).astype(np.uint8) for _ in range(N_HANDS + 4)]
    with MediaPipeHands(max_hands=2, tracking=False) as det:
        hands = [f for f in rgbs if len(det(f)) == 1][:N_HANDS]
        empty = [f for f in rooms if not det(f)][:N_HANDS]
    assert len(hands) == N_HANDS and len(empty) == N_HANDS, "rendering changed: pick other seeds"
    return hands, empty


def _drain(sub: PoseSubscriber) -> list:
    msgs = []
    try:
        while True:
            msgs.append(sub.recv())
    except TimeoutError:
        pass
    return msgs


def test_paced_image_folder_publishes_every_image_once(tmp_path, stills, tiny_checkpoint):
    """Real-time pacing (no --no-realtime, --fps 20): nothing dropped, one hand.frame per image, each
    still gets its own track id, detection rate 1.0."""
    hands, _ = stills
    cfg = RunConfig()
    cfg.source.kind, cfg.source.images, cfg.source.fps = "images", str(_write(tmp_path / "shots", hands)), 20.0
    assert cfg.source.realtime
    src = make_source(cfg.source)
    src.open()
    port = free_port()
    pub = Publisher("127.0.0.1", port, None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.",), raw=True, timeout=1.0)
    time.sleep(0.3)  # let the subscription reach the publisher
    tracking = cfg.detect.tracking_for(src.stills)
    pipe = Pipeline(cfg, src, MediaPipeHands(2, tracking), Lifter(TorchBackend(tiny_checkpoint, n_samples=2)), pub)
    t0 = time.monotonic()
    try:
        rep = pipe.run()
        elapsed = time.monotonic() - t0
        msgs = _drain(sub)
    finally:
        sub.close()
        pub.close()
        src.close()
    assert pipe.lossless and not tracking and rep["tracking"] is False
    frames = [m.data for m in msgs if m.topic == protocol.TOPIC_FRAME]
    assert [f["frame_id"] for f in frames] == list(range(N_HANDS))
    assert [len(f["hands"]) for f in frames] == [1] * N_HANDS
    assert rep["frames_in"] == rep["frames_processed"] == N_HANDS and rep["drops"] == {}
    assert rep["detection_rate"] == 1.0
    ids = [f["hands"][0]["track_id"] for f in frames]
    assert len(set(ids)) == N_HANDS  # unrelated stills are not linked into one track
    assert elapsed >= (N_HANDS - 1) / 20.0 * 0.8  # still paced


def test_image_folder_cli_detection_rate_is_share_of_images_with_a_hand(tmp_path, stills):
    """The command line without --no-realtime: half of the images show a hand -> every image is published
    and detection_rate is 0.5; images are detected in static mode by default."""
    hands, empty = stills
    mixed = [img for pair in zip(hands, empty) for img in pair]  # hand, none, hand, none, ...
    folder = _write(tmp_path / "mixed", mixed)
    port, cport = free_port(), free_port()
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.frame",), raw=True, timeout=1.0)
    try:
        r = invoke("run", "--images", str(folder), "--port", str(port), "--control-port", str(cport),
                   "--report", str(tmp_path / "r.json"))  # fmt: skip
        msgs = _drain(sub)
    finally:
        sub.close()
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    n = len(mixed)
    assert rep["frames_in"] == rep["frames_processed"] == n and rep["drops"] == {}
    assert rep["detection_rate"] == pytest.approx(0.5)
    assert rep["tracking"] is False
    assert f"done: {n}/{n} frames" in r.stderr and "detection 0.50" in r.stderr
    # hand.frame messages in order, one per image; the subscriber connected before the run bound its port, so the
    # first messages can precede its subscription (ZeroMQ's slow joiner): the report above counts every image, and
    # test_paced_image_folder_publishes_every_image_once receives every message from a publisher bound beforehand
    got, want = [len(m.data["hands"]) for m in msgs], [1, 0] * N_HANDS
    assert len(got) >= N_HANDS and got == want[len(want) - len(got) :], got


def test_one_image_reports_no_frame_rate_rather_than_zero(tmp_path, stills):
    """A rate needs two frames: a one-image run says so (report ``fps`` null), instead of ``0.0 fps``."""
    folder = _write(tmp_path / "one", stills[0][:1])
    r = invoke("run", "--images", str(folder), "--port", str(free_port()), "--control-port", str(free_port()),
               "--report", str(tmp_path / "r.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames_processed"] == 1 and rep["fps"] is None
    assert "done: 1/1 frames, no frame rate (one frame)" in r.stderr and "0.0 fps" not in r.stderr


def test_a_run_that_processes_no_frame_says_why(tmp_path, caplog):
    """A folder of one 8x8 picture: the frame is skipped as too small (not "not RGB"), and the summary says no frame
    was processed instead of "0/0 frames ... nan ms"."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    r = invoke("run", "--images", str(folder), "--no-realtime", "--port", str(free_port()), "--control-port",
               str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "done: no frame processed (0 read, 1 skipped as unreadable or too small: see the log)" in r.stderr
    assert "nan" not in r.stderr
    assert any("a.png: 8x8, under 16 pixels across" in m for m in caplog.messages + r.stderr.splitlines())


@pytest.mark.parametrize(
    ("kind", "option", "expected"),
    [("images", "auto", False), ("images", "on", True), ("images", "off", False), ("video", "auto", True),
     ("video", "off", False)],
)  # fmt: skip
def test_tracking_option_picks_mediapipe_mode(tmp_path, stills, tiny_checkpoint, monkeypatch, kind, option, expected):
    """``streamhand run``'s own code path builds MediaPipe in static image mode for stills by default."""
    import streamhand.detect
    from streamhand.cli import _run

    made: list[bool] = []

    class Recording(MediaPipeHands):
        def __init__(self, max_hands: int = 2, tracking: bool = True, *args, **kwargs):
            made.append(tracking)
            super().__init__(max_hands, tracking, *args, **kwargs)

    monkeypatch.setattr(streamhand.detect, "MediaPipeHands", Recording)
    hands, _ = stills
    cfg = RunConfig(report=str(tmp_path / "r.json"))
    cfg.source.kind = kind
    if kind == "images":
        cfg.source.images = str(_write(tmp_path / "shots", hands[:2]))
    else:
        cfg.source.video = str(tmp_path / "clip.mp4")
        w = cv2.VideoWriter(cfg.source.video, cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (320, 240))
        for f in hands[:2]:
            w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        w.release()
        cfg.source.realtime = False
    cfg.detect.tracking = option
    cfg.model.path, cfg.model.n_samples = str(tiny_checkpoint), 2
    cfg.publish.port, cfg.publish.control_port = free_port(), free_port()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert _run(cfg) == 0
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    rep = json.loads(Path(cfg.report).read_text())
    assert made == [expected]
    assert rep["tracking"] is expected and rep["frames_processed"] == 2


def test_only_stills_and_unpaced_files_hand_off_losslessly_and_unpaced_ones_are_read_ahead(tmp_path, stills):
    """Videos keep latest-wins in real time and are lossless with --no-realtime; stills are always lossless."""
    hands, _ = stills
    folder = _write(tmp_path / "shots", hands[:2])
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (320, 240))
    w.write(cv2.cvtColor(hands[0], cv2.COLOR_RGB2BGR))
    w.release()
    # (kind, paced, lossless, read one frame ahead): what is read as fast as possible is read ahead; paced stills
    # are read when the detector is ready, so none waits in a queue
    for kind, realtime, lossless, ahead in (("images", True, True, False), ("images", False, True, True),
                                            ("video", True, False, False), ("video", False, True, True)):  # fmt: skip
        cfg = RunConfig()
        cfg.source.kind, cfg.source.realtime = kind, realtime
        cfg.source.images, cfg.source.video = str(folder), str(clip)
        src = make_source(cfg.source)
        assert src.stills is (kind == "images") and isinstance(src, VideoSource) is (kind == "video")
        pipe = Pipeline(cfg, src, None, None, None)  # type: ignore[arg-type]
        assert (pipe.lossless, pipe.read_ahead, pipe.capture.read_ahead) == (lossless, ahead, ahead), (kind, realtime)


def test_tracker_without_linking_gives_each_still_its_own_ids():
    a = np.full((21, 2), 100.0) + np.arange(21)[:, None]
    linked, single = TrackLinker(), TrackLinker(link=False)
    assert linked.update([a], ["left"]).ids == linked.update([a + 2], ["left"]).ids == [1]
    first = single.update([a], ["left"])
    second = single.update([a + 2], ["left"])
    assert first.ids == [1] and second.ids == [2] and second.ended == [1]  # the smoother's state is freed
    assert single.update([], []).ended == [2] and single.active == []


def test_tracking_setting_in_yaml_and_defaults(tmp_path):
    from streamhand.configio import load_yaml

    p = tmp_path / "run.yaml"
    p.write_text("detect:\n  tracking: on\n")  # YAML reads a bare on/off as a boolean
    assert load_yaml(RunConfig, p).detect.tracking == "on"
    p.write_text("detect:\n  tracking: off\n")
    assert load_yaml(RunConfig, p).detect.tracking_for(stills=False) is False
    d = RunConfig().detect
    assert d.tracking == "auto" and d.tracking_for(stills=True) is False and d.tracking_for(stills=False) is True
