"""The pipeline in-process with real components: MediaPipe, the torch backend, ZeroMQ sockets."""

from __future__ import annotations

import dataclasses
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from streamhand.capture.base import Frame, FrameSource, SourceLost
from streamhand.capture.demo import DemoSource
from streamhand.detect import MediaPipeHands, TrackLinker
from streamhand.geometry import Intrinsics
from streamhand.infer import Lifter, TorchBackend
from streamhand.run.capture_stage import CaptureStage
from streamhand.run.handoff import Slot
from streamhand.run.pipeline import Pipeline
from streamhand.run.stats import StageStats
from streamhand.run.work import DetectStep, Work
from streamhand.runtime_config import RunConfig
from streamhand.stream import protocol
from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import JOIN_MS, PortInUse, Publisher
from tests.conftest import free_port
from tests.test_sources import FlakySource


def test_slot_latest_wins_and_lossless():
    s = Slot(lossless=False)
    assert s.put(1) is False and s.put(2) is True  # 1 was dropped
    assert s.get() == 2
    s.close()
    assert s.get() is None
    q = Slot(lossless=True)
    q.put(1)
    t = threading.Thread(target=lambda: q.put(2))
    t.start()
    time.sleep(0.2)
    assert t.is_alive()  # blocked until the consumer takes 1
    assert q.get() == 1
    t.join(2)
    assert q.get() == 2


class _Counted(FrameSource):
    """A finite source that counts its reads; every frame stamped at read time."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.reads = n, 0

    def read(self):
        if self.reads >= self.n:
            return None
        self.reads += 1
        rgb = np.zeros((32, 32, 3), np.uint8)
        return Frame(self._next_index(), time.monotonic(), time.time(), rgb, Intrinsics(32, 32, 30, 30, 16, 16), "c")


class _Paced(_Counted):
    """``n`` frames at ``fps`` in real time, as a camera delivers them (``stills``: a paced folder of images)."""

    def __init__(self, n: int, fps: float, stills: bool = False):
        super().__init__(n)
        self.fps, self.stills, self.t0 = fps, stills, None

    def read(self):
        self.t0 = time.monotonic() if self.t0 is None else self.t0
        time.sleep(max(0.0, self.t0 + self.reads / self.fps - time.monotonic()))
        return super().read()


@pytest.mark.parametrize(
    ("detector_s", "fps", "stills", "dropped", "waits"),
    [
        (0.0, 20.0, False, False, False),  # a detector faster than the frames: none dropped, no wait
        (0.06, 40.0, False, True, True),  # slower than the frames: the latest wins, the others are dropped
        (0.06, 40.0, True, False, False),  # a still set is read when the detector is ready: none lost, none waits
    ],
)
def test_mediapipe_alone_paced_times_the_wait_for_the_detector(detector_s, fps, stills, dropped, waits):
    """The reference for a paced run's end-to-end latency: MediaPipe alone read the way the run reads the source,
    timed from each frame's capture to its answer."""
    from streamhand.run.report import mediapipe_alone_paced

    src = _Paced(12, fps, stills)
    got = mediapipe_alone_paced(src, lambda rgb: time.sleep(detector_s), 12)
    assert (got["drops"] > 0) == dropped and got["frames"] + got["drops"] == 12 and src.reads == 12
    assert got["end_to_end_ms_p50"] >= 1000 * detector_s
    assert (got["end_to_end_ms_p95"] > 1000 * detector_s + 20) == waits  # waiting beyond its own time
    assert mediapipe_alone_paced(_Paced(0, fps), lambda rgb: None, 12) == {"frames": 0}


class _SlowToRead(_Counted):
    """``n`` frames, each taking ``read_s`` to read (a large video's decoding)."""

    def __init__(self, n: int, read_s: float):
        super().__init__(n)
        self.read_s = read_s

    def read(self):
        time.sleep(self.read_s)
        return super().read()


@pytest.mark.parametrize(
    ("read_s", "detector_s", "fps_range"),
    [
        (0.06, 0.02, (10, 20)),  # decoding is the slower: MediaPipe alone goes no faster than the frames come
        (0.02, 0.06, (13, 19)),  # the detector is: the next frame is read while it works, not after
    ],
)
def test_mediapipe_alone_reads_one_frame_ahead_as_a_run_does(read_s, detector_s, fps_range):
    """The speed ratio's baseline reads the source as a run read as fast as it goes reads it: one frame ahead on a
    thread of its own, its rate from the first frame's capture to the last answer, so a source slow to read (a 4K
    video) weighs on MediaPipe alone as on the run; its calls are still timed on their own."""
    from streamhand.run.report import mediapipe_alone

    src = _SlowToRead(12, read_s)
    got = mediapipe_alone(src, lambda rgb: time.sleep(detector_s), 12)
    assert got["frames"] == 12 and src.reads == 12
    assert fps_range[0] < got["fps"] < fps_range[1]  # serial: 12.5/s; the detector's calls alone: 50 or 17/s
    assert got["ms_per_frame_p50"] == pytest.approx(1000 * detector_s, abs=15)
    assert mediapipe_alone(_SlowToRead(0, 0.0), lambda rgb: None, 12) == {"frames": 0}


def test_mediapipe_alone_ends_after_the_frame_in_hand_once_told_and_tells_no_one_else():
    """A stop during ``--compare-mediapipe`` ends the timing at once; the stop event is the run's, only read here
    (setting it at the end of the first pass skipped the paced one)."""
    from streamhand.run.report import mediapipe_alone, mediapipe_alone_paced

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    got = mediapipe_alone(_SlowToRead(40, 0.0), lambda rgb: time.sleep(0.05), 40, stop)
    assert 2 <= got["frames"] <= 10
    untouched = threading.Event()
    assert mediapipe_alone(_SlowToRead(3, 0.0), lambda rgb: None, 3, untouched)["frames"] == 3
    assert mediapipe_alone_paced(_Paced(3, 50.0), lambda rgb: None, 3, untouched)["frames"] == 3
    assert not untouched.is_set()


@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_lossless_capture_reads_on_demand_or_one_frame_ahead(read_ahead):
    """On demand: nothing is read until the detector waits for a frame. Read ahead: the next frame is read (and
    waits to be handed on) while the detector still works on the last one; no frame is lost either way."""
    src, slot, stop = _Counted(4), Slot(lossless=True), threading.Event()
    cap = CaptureStage(src, None, stop, StageStats(), slot, read_ahead=read_ahead)
    t = threading.Thread(target=cap.run, args=(slot.put,), daemon=True)
    t.start()
    time.sleep(0.3)  # the detector is busy: nobody takes
    assert src.reads == (2 if read_ahead else 0)  # one in the hand-off, one read and waiting to go in
    got = [slot.get(timeout=2) for _ in range(4)]
    assert slot.get(timeout=0.5) is None  # the source's end (read once a taker waits)
    t.join(2)
    assert [f.index for f in got] == [0, 1, 2, 3] and src.reads == 4 and not t.is_alive()


def test_a_frame_read_ahead_starts_its_clock_when_the_detector_takes_it():
    f = _Counted(1).read()
    old = dataclasses.replace(f, t_capture=f.t_capture - 5.0, t_capture_unix=f.t_capture_unix - 5.0)
    w = Work(old)
    DetectStep(lambda rgb: [], TrackLinker(), None, ("2d",), 2, 0.2, restamp=True)(w)  # type: ignore[arg-type]
    assert time.monotonic() - w.frame.t_capture < 1.0 and time.time() - w.frame.t_capture_unix < 1.0
    assert w.frame.index == old.index and w.frame.rgb is old.rgb
    w = Work(old)
    DetectStep(lambda rgb: [], TrackLinker(), None, ("2d",), 2, 0.2)(w)  # type: ignore[arg-type]
    assert w.frame.t_capture == old.t_capture  # a camera's frame keeps its capture time


def _pipeline(cfg: RunConfig, source, ckpt, publisher=None):
    lifter = Lifter(TorchBackend(ckpt, n_samples=4))
    return Pipeline(cfg, source, MediaPipeHands(max_hands=2), lifter, publisher)


def test_control_socket_commands(tiny_checkpoint):
    port, cport = free_port(), free_port()
    cfg = RunConfig()
    cfg.source.realtime = True
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=True)
    src.open()
    holder = {}
    pub = Publisher("127.0.0.1", port, cport, stats=lambda: holder["p"].snapshot(),
                    config=lambda: cfg.model_dump(mode="json"), on_stop=lambda: holder["p"].stop())  # fmt: skip
    pipe = _pipeline(cfg, src, tiny_checkpoint, pub)
    holder["p"] = pipe
    runner = threading.Thread(target=pipe.run)
    runner.start()
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.connect(f"tcp://127.0.0.1:{cport}")
    try:
        req.send(b"PUB_PORT")
        assert int(req.recv()) == port
        req.send(b"t")
        t_remote = float(req.recv())
        assert abs(t_remote - time.monotonic()) < 1.0  # the same monotonic clock as t_capture
        time.sleep(1.0)
        req.send(b"stats")
        stats = msgpack.unpackb(req.recv())
        assert stats["frames_in"] > 0 and stats["source"] == "demo"
        # a live source's wait for its next frame is not capture latency
        assert stats["latency_ms"]["capture"] <= stats["latency_ms"]["end_to_end"]
        req.send(b"config")
        assert msgpack.unpackb(req.recv())["publish"]["port"] == 5560  # the config object as given
        req.send(b"bogus")
        assert req.recv().startswith(b"error: unknown command")
        req.send(b"stop")
        assert req.recv() == b"ok"
        runner.join(10)
        assert not runner.is_alive()
    finally:
        req.close(0)
        pipe.stop()
        runner.join(5)
        pub.close()


def test_port_in_use_is_a_clear_error():
    port = free_port()
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.PUB)
    s.bind(f"tcp://127.0.0.1:{port}")
    try:
        with pytest.raises(PortInUse, match="--port"):
            Publisher("127.0.0.1", port, free_port())
    finally:
        s.close(0)


def _req(cport: int, timeout_ms: int = 3000) -> zmq.Socket:
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, timeout_ms)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{cport}")
    return req


@pytest.mark.parametrize(
    ("request_parts", "answer"),
    [
        ([b"t", b"extra"], b"error: send one-part requests"),
        ([b"stats", b"", b"x" * 100], b"error: send one-part requests"),
        ([b"\xff\xfe\x00"], b"error: not a UTF-8 command"),
        ([b"rm -rf /" + b"z" * 500], b"error: unknown command 'rm -rf /zzz"),
        ([b"stats"], b"error: 'stats' failed: ZeroDivisionError"),  # a failing callback
        ([b""], b"error: unknown command ''"),
    ],
)
def test_control_socket_survives_malformed_requests(request_parts, answer):
    cport = free_port()
    pub = Publisher("127.0.0.1", free_port(), cport, stats=lambda: {"x": 1 / 0})
    try:
        req = _req(cport)
        req.send_multipart(request_parts)
        reply = req.recv()
        assert reply.startswith(answer), reply
        assert len(reply) < 200
        req.send(b"t")  # still serving
        assert float(req.recv()) > 0
        req.close()
    finally:
        pub.close()


def test_control_socket_drops_oversized_requests_and_keeps_serving():
    from streamhand.stream.publish import MAX_REQUEST_BYTES

    cport = free_port()
    pub = Publisher("127.0.0.1", free_port(), cport)
    try:
        big = _req(cport, timeout_ms=500)
        big.send(b"t" * (MAX_REQUEST_BYTES + 1))
        with pytest.raises(zmq.Again):  # ZeroMQ disconnects the peer: no answer
            big.recv()
        big.close()
        req = _req(cport)
        req.send(b"PUB_PORT")
        assert int(req.recv()) == pub.port
        req.close()
    finally:
        pub.close()


def test_stalled_subscriber_does_not_slow_the_pipeline(tiny_checkpoint):
    port = free_port()
    pub = Publisher("127.0.0.1", port, None, sndhwm=5)
    stalled = zmq.Context.instance().socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(f"tcp://127.0.0.1:{port}")  # connected, never reads
    cfg = RunConfig(frames=40)
    cfg.source.realtime = False
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=False)
    src.open()
    try:
        pipe = _pipeline(cfg, src, tiny_checkpoint, pub)
        t0 = time.monotonic()
        rep = pipe.run()
        assert rep["frames_processed"] == 40
        assert rep["cpu"]["cores"] >= 1 and rep["cpu"]["model"]  # which machine the latencies are from
        assert rep["compiled"] is True  # the per-frame arithmetic ran compiled (numba is a dependency)
        assert time.monotonic() - t0 < 60  # it finished; a blocking send would hang here
        assert pub.sent > 40
    finally:
        stalled.close(0)
        pub.close()


def _run_watching_status(cfg: RunConfig, source, ckpt, field: str, prepare=None) -> tuple[Pipeline, dict, list]:
    """Run a pipeline publishing ``status`` at 20 Hz; returns it, its report and ``field`` of every status seen.
    ``prepare(pipe)`` may swap its parts before the run."""
    cfg.publish.status_hz = 20
    port = free_port()
    pub = Publisher("127.0.0.1", port, None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("status",), raw=True, timeout=0.5)
    time.sleep(0.3)
    pipe = _pipeline(cfg, source, ckpt, pub)
    if prepare is not None:
        prepare(pipe)
    rep = pipe.run()
    seen = []
    try:
        while True:
            seen.append(sub.recv().data[field])
    except TimeoutError:
        pass
    finally:
        sub.close()
        pub.close()
    return pipe, rep, seen


def test_source_lost_and_recovered(tiny_checkpoint):
    from streamhand.geometry import Intrinsics

    img = np.zeros((120, 160, 3), np.uint8)
    src = FlakySource(Frame(0, 0.0, 0.0, img, Intrinsics.from_fov(160, 120, 60), "x"), total=10)
    pipe, rep, states = _run_watching_status(RunConfig(), src, tiny_checkpoint, "source_state")
    assert any(s.startswith("lost:") for s in states)  # status said so while the source was gone
    assert src.reopens == 3
    assert rep["frames_in"] == 10
    assert pipe.stats.counters["source_lost"] == 1
    assert pipe.source_state == "ended"


class ReopensSilently(FrameSource):
    """A live source that, once lost, reopens at every try but gives no frame for three reads (a stream URL whose
    server answers and sends nothing), then frames again."""

    name = "silent"
    live = True

    def __init__(self, frame: Frame, total: int = 8):
        super().__init__()
        self.frame, self.total, self.delivered, self.reopens, self.silent = frame, total, 0, 0, 0

    def read(self):
        if self.delivered >= self.total:
            return None
        if self.delivered == 3 and self.silent < 4:
            self.silent += 1
            raise SourceLost("no frames")
        self.delivered += 1
        return Frame(self._next_index(), time.monotonic(), time.time(), self.frame.rgb, self.frame.intrinsics, "s")

    def reopen(self):
        self.reopens += 1


class FrozenUntilReopened(FrameSource):
    """A live source that repeats one picture (a network camera whose stream changed size under the decoder) until
    it is reopened, and shows another picture after."""

    name = "frozen"
    live = True

    def __init__(self, frame: Frame, total: int):
        super().__init__()
        self.frame, self.total, self.delivered, self.reopens = frame, total, 0, 0

    def read(self):
        if self.delivered >= self.total:
            return None
        time.sleep(1 / 30)
        self.delivered += 1
        rgb = self.frame.rgb if not self.reopens else np.roll(self.frame.rgb, self.delivered, axis=1)
        return Frame(self._next_index(), time.monotonic(), time.time(), rgb, self.frame.intrinsics, "f")

    def reopen(self):
        self.reopens += 1


def test_a_frozen_live_source_is_reopened_once(tiny_checkpoint):
    """A camera repeating its last picture for good (a phone turned while streaming MJPEG) was served as live, the
    same hands published on every frame with new times: it is reopened once when it freezes."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    src = FrozenUntilReopened(Frame(0, 0.0, 0.0, img, Intrinsics.from_fov(160, 120, 60), "f"), total=100)
    _, rep, states = _run_watching_status(RunConfig(), src, tiny_checkpoint, "source_state")
    assert src.reopens == 1, src.reopens
    assert rep["frozen_episodes"] == 1 and states[-1] == "ended"


class PausingSource(FrameSource):
    """A source of ``n`` frames at 30 a second with a pause of ``pause_s`` after the first ``before``."""

    name = "pausing"

    def __init__(self, frame: Frame, n: int, before: int, pause_s: float):
        super().__init__()
        self.frame, self.n, self.before, self.pause_s, self.i = frame, n, before, pause_s, 0

    def read(self):
        if self.i >= self.n:
            return None
        time.sleep(self.pause_s if self.i == self.before else 1 / 30)
        self.i += 1
        return Frame(self._next_index(), time.monotonic(), time.time(), self.frame.rgb, self.frame.intrinsics, "p")


def test_status_fps_is_the_recent_rate_and_the_report_the_runs(tiny_checkpoint):
    """``status``'s fps was the run's average, which moved slowly: a camera lost for seconds still read ~30 fps, and
    back at 30 read 10. It is the last 2 s's rate now (0 in the pause); the report keeps the run's average."""
    img = np.zeros((120, 160, 3), np.uint8)
    src = PausingSource(Frame(0, 0.0, 0.0, img, Intrinsics.from_fov(160, 120, 60), "p"), n=70, before=60,
                        pause_s=3.0)  # fmt: skip
    _, rep, fps = _run_watching_status(RunConfig(), src, tiny_checkpoint, "fps")
    fps = fps[next(i for i, v in enumerate(fps) if v > 0):]  # from the first frame on (0 before it)
    assert min(fps) < 1.0 and max(fps) > 15, fps  # 0 late in the pause; ~30 before it
    assert 10 < rep["fps"] < 20, rep["fps"]  # 70 frames over about 5.3 s


def test_a_source_that_reopens_without_frames_is_not_called_recovered(tiny_checkpoint, caplog):
    """"source recovered" was logged (and the state set to ok) at every reopen, frames or not, and each read that
    found none again counted another loss: one loss, one recovery, said when frames come."""
    img = np.zeros((120, 160, 3), np.uint8)
    src = ReopensSilently(Frame(0, 0.0, 0.0, img, Intrinsics.from_fov(160, 120, 60), "s"))
    with caplog.at_level("DEBUG", logger="streamhand.run.capture_stage"):
        pipe, rep, states = _run_watching_status(RunConfig(), src, tiny_checkpoint, "source_state")
    assert src.reopens == 4 and rep["frames_in"] == 8
    assert pipe.stats.counters["source_lost"] == 1 and rep["source_lost"] == 1
    assert caplog.text.count("source recovered") == 1 and caplog.text.count("source reopened") == 4
    lost = [i for i, s in enumerate(states) if s.startswith("lost:")]
    assert lost and "ok" not in states[lost[0]:lost[-1]]


@pytest.mark.parametrize(("frames", "last"), [(None, "ended"), (3, "stopped")])
def test_the_last_status_says_why_the_stream_ends(tiny_checkpoint, frames, last):
    """A consumer knows the run is over from its last message: a ``status`` with ``source_state`` ``ended`` (the
    source ran out) or ``stopped`` (``--frames``, a ``stop``), not ``ok``."""
    cfg = RunConfig()
    cfg.frames = frames
    pipe, rep, states = _run_watching_status(cfg, _Counted(6), tiny_checkpoint, "source_state")
    assert states[-1] == last and pipe.source_state == last
    assert rep["frames_in"] == (frames or 6)


def test_pipeline_publishes_gap_free_valid_messages(tiny_checkpoint):
    port = free_port()
    pub = Publisher("127.0.0.1", port, None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("",), raw=True, timeout=20)
    time.sleep(0.3)  # let the subscription reach the publisher
    cfg = RunConfig(frames=30)
    cfg.source.realtime = False
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=False)
    src.open()
    pipe = _pipeline(cfg, src, tiny_checkpoint, pub)
    rep = pipe.run()
    msgs = []
    try:
        while True:
            sub.timeout = 1.0
            msgs.append(sub.recv())
    except TimeoutError:
        pass
    finally:
        sub.close()
        pub.close()
    frames = [m for m in msgs if m.topic == protocol.TOPIC_FRAME]
    assert len(frames) == rep["frames_processed"] == 30
    assert [m.data["seq"] for m in frames] == list(range(30))
    assert sub.gaps == 0
    for m in msgs:
        assert protocol.validate(m.topic, m.data) == [], m.topic
    poses = [m for m in msgs if m.topic.startswith("hand.pose.")]
    assert poses and all(m.data["root_source"] == "depth" for m in poses)  # the demo has depth
    statuses = [m.data for m in msgs if m.topic == protocol.TOPIC_STATUS]
    last = statuses[-1]  # the final status, after the last frame: that frame's common fields
    assert last["frame_id"] == frames[-1].data["frame_id"] and last["camera"] == frames[-1].data["camera"]
    assert last["t_capture"] == frames[-1].data["t_capture"]
    assert last["latency_ms"]["capture"] <= last["latency_ms"]["end_to_end"]


class _Wrapped:
    """A stage's component (detector, lifter) with every attribute but its call passed through."""

    def __init__(self, inner, n: int):
        self.inner, self.n, self.calls = inner, n, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _Broken(_Wrapped):
    """A stage's work that raises on its n-th call, slowly, so that the stages before it fill their hand-offs."""

    def __call__(self, *a, **k):
        self.calls += 1
        if self.calls >= self.n:
            time.sleep(0.5)
            raise ValueError("bad intrinsics")
        return self.inner(*a, **k)


@pytest.mark.parametrize("stage", ["detect", "infer"])
@pytest.mark.parametrize("realtime", [False, True])  # lossless hand-offs (files) and latest-wins (live)
def test_a_failed_stage_stops_the_whole_pipeline_promptly(tiny_checkpoint, stage, realtime):
    cfg = RunConfig()
    cfg.source.realtime = realtime
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=realtime)  # looped: endless, as a camera
    src.open()
    pipe = _pipeline(cfg, src, tiny_checkpoint)
    if stage == "detect":
        pipe.detector = _Broken(pipe.detector, 3)
    else:
        pipe.lifter = _Broken(pipe.lifter, 2)
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(pipe.run()), daemon=True)
    t0 = time.monotonic()
    runner.start()
    runner.join(20)
    assert not runner.is_alive(), "the pipeline hung after a stage failed"
    assert time.monotonic() - t0 < 15
    assert any(f"{stage} stage failed: ValueError: bad intrinsics" in e for e in pipe.errors)
    assert out["frames_in"] < 90  # stopped, not run on (the clip loops and no --frames: it would never end)
    assert not [t.name for t in pipe._threads if t.is_alive()]


class _Slow(_Wrapped):
    """A detector that hangs on its n-th call for ``secs`` seconds."""

    def __init__(self, inner, n: int, secs: float):
        super().__init__(inner, n)
        self.secs = secs

    def __call__(self, *a, **k):
        self.calls += 1
        if self.calls == self.n:
            time.sleep(self.secs)
        return self.inner(*a, **k)


def test_watchdog_reports_a_stalled_stage_and_its_recovery(tiny_checkpoint, caplog):
    cfg = RunConfig(frames=12, watchdog_s=0.6)
    cfg.source.realtime = False
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=False)  # the clip the other tests render
    src.open()

    def slow_detector(pipe):
        pipe.detector = _Slow(pipe.detector, 3, 2.0)

    with caplog.at_level("WARNING", logger="streamhand.run.pipeline"):
        _, rep, stalled = _run_watching_status(cfg, src, tiny_checkpoint, "stalled", slow_detector)
    assert any("detect" in s for s in stalled)  # status said so while it lasted
    assert stalled[-1] == {}  # and no more once it ran again
    assert rep["stalls"] == 1 and rep["frames_processed"] == 12
    text = caplog.text
    assert "detect stage stalled" in text and "detect stage running again" in text


class _Sleepy(_Wrapped):
    """A detector that waits ``secs`` seconds (using no CPU) before every answer, as one waiting for a core does."""

    def __init__(self, inner, secs: float):
        super().__init__(inner, 0)
        self.secs = secs

    def __call__(self, *a, **k):
        time.sleep(self.secs)
        return self.inner(*a, **k)


def test_the_report_tells_a_stage_working_from_one_waiting(tiny_checkpoint):
    """``cpu_ms``: each stage's own thread's CPU time per frame, beside its latency; ``cores_busy``: the process's
    and each stage's CPU seconds per second of the run. A detector that waits 40 ms a frame spends it in its
    latency, not in its CPU time."""
    cfg = RunConfig(frames=10)
    cfg.source.realtime = False
    src = DemoSource(width=320, height=240, seconds=0.5, realtime=False)  # the clip the other tests render
    src.open()
    try:
        pipe = _pipeline(cfg, src, tiny_checkpoint)
        pipe.detector = _Sleepy(pipe.detector, 0.04)
        rep = pipe.run()
    finally:
        src.close()
    lat, cpu, busy = rep["latency_ms"], rep["cpu_ms"], rep["cores_busy"]
    assert set(cpu) == {"detect", "infer", "place_publish"} and set(busy) == {"process", *cpu}
    assert all(cpu[s]["n"] == 10 for s in cpu)
    assert lat["detect"]["p50"] >= 40 and cpu["detect"]["p50"] < lat["detect"]["p50"] - 30  # the wait is not work
    for s in ("infer", "place_publish"):
        assert 0 < cpu[s]["p50"] <= lat[s]["p50"] + 0.5 and 0 < cpu[s]["mean"] <= lat[s]["mean"] + 0.5
    assert 0 < busy["detect"] < busy["process"] and all(0 < busy[s] <= busy["process"] for s in cpu)
    assert busy["detect"] < 0.5  # 10 waits of 40 ms: the detector's thread idle most of the run


def test_stage_stats_keep_cpu_time_only_where_a_stage_gives_it():
    stats = StageStats(window=3)
    for i in range(5):
        stats.add("detect", 0.010)
        stats.add("infer", 0.002, cpu_seconds=0.001 * (i + 1))
    assert set(stats.summary_ms()) == {"detect", "infer"}
    assert stats.cpu_ms() == {"infer": {"p50": 4.0, "mean": 4.0, "n": 3}}  # the last window's: 3, 4, 5 ms
    assert stats.cpu_total_s() == pytest.approx({"infer": 0.015})  # every item's, beyond the window


class _OddCamera(FrameSource):
    """A live camera that does what cameras do: a grey frame, a frame at another size, then one frozen image
    for ``frozen_s`` seconds, then moving again."""

    name = "odd"
    live = True

    def __init__(self, frozen_s: float):
        super().__init__()
        from streamhand.geometry import Intrinsics

        self.k = Intrinsics.from_fov(160, 120, 60)
        self.frozen_s, self.t_frozen = frozen_s, None
        self.step = 0

    def read(self):
        time.sleep(0.02)
        self.step += 1
        rng = np.random.default_rng(self.step)
        img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        if self.step == 2:
            img = img[..., 0]  # grey
        elif self.step == 3:
            img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # the camera changed resolution
        elif self.step > 4:
            self.t_frozen = self.t_frozen or time.monotonic()
            if time.monotonic() - self.t_frozen < self.frozen_s:
                img = np.full((120, 160, 3), 77, np.uint8)  # the same image again and again
            elif time.monotonic() - self.t_frozen > self.frozen_s + 0.5:
                return None
        return Frame(self._next_index(), time.monotonic(), time.time(), img, self.k, "odd")


def test_a_camera_that_misbehaves_is_reported_and_the_run_goes_on(tiny_checkpoint):
    _, rep, states = _run_watching_status(RunConfig(), _OddCamera(frozen_s=2.6), tiny_checkpoint, "source_state")
    assert rep["errors"] == []
    assert rep["corrupt_frames"] == 1 and rep["resized_frames"] == 1
    assert rep["frozen_episodes"] == 1
    assert any(s.startswith("frozen: the same image for") for s in states)
    assert "ok" in states[states.index(next(s for s in states if s.startswith("frozen"))) :]  # moving again
    assert 0 < rep["frames_processed"] <= rep["frames_in"]  # live: the newest frames (the grey one is not counted in)


def test_recordings_are_smoothed_on_their_own_clock(tiny_checkpoint):
    """The demo read as fast as it goes: the motion filter sees the clip's frame times (index / fps), not how
    long this machine took, so a recording gives the same poses on any machine."""
    cfg = RunConfig(frames=12)
    cfg.source.realtime = False
    src = DemoSource(width=320, height=240, seconds=0.5, fps=30.0, realtime=False)
    src.open()
    pipe = _pipeline(cfg, src, tiny_checkpoint)
    seen = []
    inner = pipe.emitter.place.smoother.__call__
    pipe.emitter.place.smoother = lambda tid, x, t: (seen.append(t), inner(tid, x, t))[1]
    pipe.run()
    assert seen and all(abs(t * 30.0 - round(t * 30.0)) < 1e-9 and t < 1.0 for t in seen)


def test_a_subscriber_waiting_for_the_port_gets_the_first_message():
    """A subscriber started before the run (ZeroMQ retrying the refused port every 100 ms) receives a run's first
    poses even when they are published the moment the port is bound (a single image, models already loaded)."""
    for _ in range(5):
        port = free_port()
        sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.pose",), raw=True, timeout=2.0)
        time.sleep(0.15)  # refused once: the subscriber is between retries
        pub = Publisher("127.0.0.1", port, None)
        t0 = time.monotonic()
        pub.publish("hand.pose.right", {"frame_id": 0, "joints_cam": [[0.0, 0.0, 0.5]] * 21})
        waited = time.monotonic() - t0
        pub.publish("hand.pose.right", {"frame_id": 1, "joints_cam": [[0.0, 0.0, 0.5]] * 21})
        assert time.monotonic() - t0 - waited < 0.05  # only the first message waits
        pub.close()
        try:
            assert sub.recv().data["frame_id"] == 0
        finally:
            sub.close()
        assert waited <= JOIN_MS / 1000.0 + 0.05


def test_what_is_published_just_before_close_reaches_a_connected_subscriber():
    """The last poses of a run (a run of one image: its only ones) are not dropped when the publisher closes right
    after sending them; with no subscriber, closing still returns at once."""
    for _ in range(3):
        port = free_port()
        sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("hand.pose",), raw=True, timeout=1.0)
        pub = Publisher("127.0.0.1", port, None)
        time.sleep(0.3)  # the subscriber is connected
        for k in range(50):
            pub.publish("hand.pose.right", {"frame_id": k, "joints_cam": [[0.0, 0.0, 0.5]] * 21})
        pub.close()
        got = []
        try:
            while True:
                got.append(sub.recv().data["frame_id"])
        except TimeoutError:
            pass
        finally:
            sub.close()
        assert got == list(range(50))
    alone = Publisher("127.0.0.1", free_port(), None)
    alone.publish("hand.pose.right", {"frame_id": 0})
    t0 = time.monotonic()
    alone.close()
    assert time.monotonic() - t0 < 0.2
