"""Recording the stream to MCAP and replaying it: real sockets, the real ``mcap`` library, the real commands."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from streamhand.stream import protocol
from streamhand.stream.client import PoseSubscriber
from streamhand.stream.publish import Publisher
from streamhand.stream.recording import (
    McapRecorder,
    RecordingError,
    check_recording,
    messages,
    parse_speed,
    replay,
)
from tests.conftest import free_port
from tests.helpers import ROOT, cli, hold_open, invoke


def _write(path: Path, n: int = 10, span_s: float = 0.5) -> list[tuple[str, bytes]]:
    """A recording of ``n`` small messages over ``span_s`` seconds, on two topics; the (topic, payload) sent."""
    rec, sent = McapRecorder(path, source="test"), []
    t0 = time.time_ns()
    for i in range(n):
        topic = "hand.frame" if i % 2 else "hand.pose.left"
        payload = msgpack.packb({"topic": topic, "seq": i // 2, "frame_id": i})
        rec.write(topic, payload, i // 2, t0 + int(i * span_s / max(n - 1, 1) * 1e9))
        sent.append((topic, payload))
    rec.close()
    return sent


def test_a_recording_reads_back_with_the_mcap_library(tmp_path):
    from mcap.reader import make_reader

    sent = _write(tmp_path / "a.mcap")
    with open(tmp_path / "a.mcap", "rb") as f:
        r = make_reader(f)
        assert r.get_header().profile == "streamhand"
        got = [(ch.topic, m.data, ch.message_encoding, s.encoding) for s, ch, m in r.iter_messages()]
    assert [(t, p) for t, p, *_ in got] == sent
    assert {e for *_, e, _ in got} == {"msgpack"} and {s for *_, s in got} == {"jsonschema"}
    info = check_recording(tmp_path / "a.mcap")
    assert info.messages == 10 and info.topics == {"hand.frame": 5, "hand.pose.left": 5} and info.source == "test"
    assert not list(tmp_path.glob(".a.*.part.mcap"))


def _foreign(path: Path, message: bool = False) -> None:
    """Another program's MCAP file (profile ``ros2``); with ``message``, one message on a ``cdr`` channel."""
    from mcap.writer import Writer

    with open(path, "wb") as f:
        w = Writer(f)
        w.start(profile="ros2", library="x")
        if message:
            sid = w.register_schema("std_msgs/String", "ros2msg", b"string data")
            cid = w.register_channel("/chatter", "cdr", sid)
            w.add_message(cid, log_time=1, data=b"\x00\x01\x00\x00\x03\x00\x00\x00hi\x00", publish_time=1)
        w.finish()


def _damaged(p: Path) -> bytes:
    """A recording whose first chunk's bytes were overwritten (not cut short: they are there, and wrong)."""
    data = bytearray(_bytes_of_recording(p))
    data[1000:1200] = b"\xff" * 200
    return bytes(data)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("not a recording at all, just text " * 20), "not an MCAP file .it does not start as"),
        (lambda p: p.write_bytes(b""), "an empty file .0 bytes., not a recording"),
        (lambda p: p.write_bytes(_damaged(p)), "damaged after 0 messages"),
        (lambda p: p.write_bytes(_bytes_of_recording(p)[:3000]), "cut short before its first message"),
        (lambda p: p.write_bytes(b"\x89MCAP0\r\n"), "truncated before its first record"),
        (lambda p: p.mkdir(), "a folder, not a recording"),
        (_foreign, "not a streamhand recording .profile 'ros2'."),
        # a message of another program's: said by the profile, not as a channel that is not ours
        (lambda p: _foreign(p, message=True), "not a streamhand recording .profile 'ros2'."),
    ],
)
def test_files_that_cannot_be_replayed_say_why_in_one_line(tmp_path, make, says):
    p = tmp_path / "bad.mcap"
    make(p)
    with pytest.raises(RecordingError, match=says) as e:
        check_recording(p)
    assert "\n" not in str(e.value)
    r = invoke("replay", str(p), "--port", str(free_port()), "--control-port", str(free_port()))
    assert r.returncode == 2 and re.search(says, r.stderr) and r.stderr.count("\n") == 1, r.stderr


def _bytes_of_recording(p: Path) -> bytes:
    good = p.with_name("good.mcap")
    _write(good, n=400)
    return good.read_bytes()


@pytest.mark.parametrize(("text", "value"), [("1", 1.0), ("4", 4.0), ("0.5", 0.5), ("max", None), ("MAX", None)])
def test_speed(text, value):
    assert parse_speed(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "fast", "", "inf", "nan", "1e-300", "1e300"])
def test_bad_speed(text):
    with pytest.raises(ValueError, match="--speed"):
        parse_speed(text)


@pytest.mark.parametrize(("speed", "low", "high"), [(1.0, 0.45, 0.9), (4.0, 0.1, 0.35), (None, 0.0, 0.1)])
def test_replay_keeps_the_recorded_pace(tmp_path, speed, low, high):
    sent = _write(tmp_path / "a.mcap", n=11, span_s=0.5)
    out: list[tuple[str, bytes]] = []
    t0 = time.monotonic()
    assert replay(tmp_path / "a.mcap", lambda t, p: out.append((t, p)), speed) == 11
    assert low <= time.monotonic() - t0 <= high and out == sent


def test_replay_loops_until_stopped(tmp_path):
    _write(tmp_path / "a.mcap", n=4, span_s=0.0)
    out: list = []
    assert replay(tmp_path / "a.mcap", lambda t, p: out.append(t), None, loop=True, stop=lambda: len(out) >= 10) == 10


def _with_status(path: Path, states: list[str], cameras: tuple[str, ...] = ("0",)) -> None:
    rec = McapRecorder(path, source="test")
    t0 = time.time_ns()
    for i, state in enumerate(states):
        for cam in cameras:
            status = {"topic": "status", "seq": i, "source_state": state, "camera": {"id": cam}}
            rec.write("status", msgpack.packb(status), i, t0 + i * 1000)
            rec.write("hand.frame", msgpack.packb({"topic": "hand.frame", "seq": i, "camera": {"id": cam}}), i,
                      t0 + i * 1000 + 1)  # fmt: skip
    rec.close()


@pytest.mark.parametrize(
    ("states", "stop_after", "ends"),
    [
        (["ok", "ok"], None, ["ended"]),  # a recording cut from a longer run: the replay says it ends
        (["ok", "ok"], 2, ["stopped"]),  # stopped midway
        (["ok", "stopped"], None, []),  # the recorded run's own end: said once, not twice
        (["ok", "lost: camera unplugged"], None, []),
        ([], None, []),  # nothing to copy (a recording of poses alone)
    ],
)
def test_a_replayed_stream_ends_with_a_status_saying_so(tmp_path, states, stop_after, ends):
    """A consumer waiting for the run's last message (a status saying ended or stopped) saw a replay end without it."""
    _with_status(tmp_path / "s.mcap", states, cameras=("a", "b"))
    out: list[tuple[str, dict]] = []
    replay(tmp_path / "s.mcap", lambda t, p: out.append((t, msgpack.unpackb(p))), None,
           stop=lambda: stop_after is not None and len(out) >= stop_after)  # fmt: skip
    extra = out[2 * 2 * len(states) if stop_after is None else stop_after :]
    assert [m["source_state"] for _, m in extra] == ends * 2 if stop_after is None else ends * (1 if ends else 0)
    for _, m in extra:  # each camera's own status, the next seq
        assert m["camera"]["id"] in ("a", "b") and m["seq"] == (len(states) if stop_after is None else 1)


def test_record_keeps_what_it_received_on_sigterm(tmp_path):
    port, out = free_port(), tmp_path / "r.mcap"
    pub = Publisher(port=port, control_port=None)
    proc = subprocess.Popen([sys.executable, "-m", "streamhand.cli", "record", str(out), "--address",
                             f"tcp://127.0.0.1:{port}", "--timeout", "0"], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("",), raw=True, timeout=0.05)
        deadline = time.monotonic() + 30  # the recorder has connected when a second subscriber could too
        n = 0
        while time.monotonic() < deadline and n < 50:
            pub.publish(protocol.TOPIC_LOG + ".info", {"level": "info", "msg": f"m{n}"})
            n += 1
            time.sleep(0.05 if n < 20 else 0.01)
        sub.close()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    info = check_recording(out)
    assert info.messages > 0 and f"recorded {info.messages} messages" in err
    seqs = [msgpack.unpackb(p)["seq"] for _, p, _ in messages(out)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every message after the first, in order


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["record", "{tmp}/out.json"], "give a name ending in .mcap"),
        (["record", "{tmp}"], "give a name ending in .mcap"),
        (["record", "{tmp}/file.txt/out.mcap"], "is a file, not a folder"),
        (["record", "{tmp}/out.mcap", "--address", "nonsense"], "not a ZeroMQ endpoint"),
        (["record", "{tmp}/out.mcap", "--address", "tcp://127.0.0.1:99999"], "port 99999 is out of range"),
        (["echo", "--address", "tcp://127.0.0.1:0"], "port 0 is out of range"),
        (["replay", "{tmp}/missing.mcap"], "no such file"),
        (["replay", "{tmp}/good.mcap", "--speed", "zero"], "--speed"),
        (["replay", "{tmp}/good.mcap", "--port", "6100", "--control-port", "6100"], "must differ"),
        # a wait no clock can hold: one line, not OverflowError
        (["echo", "--timeout", "inf"], "'--timeout': inf is not a number of seconds from 0 to 1000000"),
        (["echo", "--timeout", "nan"], "'--timeout': nan is not a number of seconds from 0 to 1000000"),
        (["echo", "--timeout", "soon"], "'--timeout': 'soon' is not a number"),
        (["echo", "--address", "tcp://127.0.0.1:6101", "--control", "tcp://127.0.0.1:6102"], "give one of them"),
        (["record", "{tmp}/out.mcap", "--address", "tcp://127.0.0.1:6101", "--control", "tcp://127.0.0.1:6102"],
         "give one of them"),
        (["record", "{tmp}/out.mcap", "--timeout", "1e300"], "'--timeout'"),
        (["record", "{tmp}/out.mcap", "--duration", "1e300"], "'--duration'"),
        (["replay", "{tmp}/good.mcap", "--delay", "inf"], "'--delay': inf is not a number of seconds from 0 to 3600"),
        (["replay", "{tmp}/good.mcap", "--delay", "nan"], "'--delay': nan is not"),
        (["record", "{tmp}/out.mcap", "--duration", "nan"], "'--duration': nan is not"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, says):
    (tmp_path / "file.txt").write_text("x")
    _write(tmp_path / "good.mcap", n=2)
    r = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2 and says in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_record_that_receives_nothing_writes_nothing(tmp_path):
    """Nothing published where it listens: exit 1 with one line (after the line that said it was recording), no
    file at the name and no part file, and a recording already there is left as it was."""
    out, kept = tmp_path / "empty.mcap", tmp_path / "kept.mcap"
    _write(kept, n=2)
    before = kept.read_bytes()
    for path in (out, kept):
        r = invoke("record", str(path), "--address", f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.3")
        assert r.returncode == 1 and "no recording was written" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 2, r.stderr
    assert not out.exists() and kept.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.mcap"]


def test_a_record_stopped_with_nothing_received_keeps_the_file_there(tmp_path):
    """--duration (or Ctrl-C) with nothing received used to replace a recording with an empty one. A stop as asked
    with nothing to keep is no failure (exit 0: no hand in view is a result), but nothing is written."""
    kept = tmp_path / "kept.mcap"
    _write(kept, n=2)
    before = kept.read_bytes()
    r = invoke("record", str(kept), "--address", f"tcp://127.0.0.1:{free_port()}", "--topic", "hand.pose",
               "--duration", "0.3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "on hand.pose before it stopped (0.3 s), so no recording was written" in r.stderr, r.stderr
    assert kept.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["kept.mcap"]


def test_record_asks_the_control_socket_as_long_as_its_timeout(tmp_path):
    t0 = time.monotonic()
    r = invoke("record", str(tmp_path / "x.mcap"), "--control", f"tcp://127.0.0.1:{free_port()}", "--timeout", "1")
    took = time.monotonic() - t0
    assert r.returncode == 1 and "no answer from the control socket" in r.stderr and "in 1 s" in r.stderr, r.stderr
    assert "--timeout 0 waits for ever" in r.stderr and took >= 1.0
    assert not list(tmp_path.iterdir())


def test_replays_t_is_the_clock_of_the_replayed_t_capture(tmp_path):
    """A replay's `t` answered its own clock, hundreds of seconds off the t_capture it replays."""
    path, port, control = tmp_path / "t.mcap", free_port(), free_port()
    rec, t0 = McapRecorder(path, source="test"), time.time_ns()
    for i in range(60):  # a recorded run whose monotonic clock stood at 1000 s: t_capture_unix - t_capture fixed
        unix = t0 / 1e9 + i / 30
        payload = msgpack.packb({"topic": "hand.frame", "seq": i, "frame_id": i, "t_capture": 1000.0 + i / 30,
                                 "t_capture_unix": unix, "hands": []})  # fmt: skip
        rec.write("hand.frame", payload, i, int(unix * 1e9))
    rec.close()
    proc = subprocess.Popen([sys.executable, "-m", "streamhand.cli", "replay", str(path), "--port", str(port),
                             "--control-port", str(control), "--delay", "0.3", "--loop"], cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, 10000)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{control}")
    try:
        got = None
        for _ in range(100):
            req.send(b"t")
            answer = req.recv().decode()
            if not answer.startswith("error"):
                got = float(answer)
                break
            assert answer == "error: no message sent yet, so no clock"
            time.sleep(0.05)
        assert got is not None and 1000.0 <= got <= 1000.0 + 2.5, got  # within the recording's 2 s, looping
        req.send(b"stop")
        assert req.recv() == b"ok"
        assert proc.wait(10) == 0
    finally:
        req.close(0)
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_replay_on_a_busy_port_is_one_line(tmp_path):
    _write(tmp_path / "good.mcap", n=2)
    busy = zmq.Context.instance().socket(zmq.PUB)
    port = busy.bind_to_random_port("tcp://127.0.0.1")
    try:
        r = invoke("replay", str(tmp_path / "good.mcap"), "--port", str(port), "--control-port", str(free_port()))
    finally:
        busy.close(0)
    assert r.returncode == 2 and "in use" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def _subscribe(address: str, out: list, stop: threading.Event) -> threading.Thread:
    """A plain pyzmq subscriber: every [topic, payload] as it arrives."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(address)

    def loop() -> None:
        try:
            while not stop.is_set():
                if sock.poll(50):
                    out.append(tuple(sock.recv_multipart()))
        finally:
            sock.close(0)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


@pytest.mark.slow
def test_a_demo_run_recorded_and_replayed_byte_for_byte(tmp_path):
    port, rec_path = free_port(), tmp_path / "demo.mcap"
    recorder = subprocess.Popen([sys.executable, "-m", "streamhand.cli", "record", str(rec_path), "--address",
                                 f"tcp://127.0.0.1:{port}", "--topic", "hand.", "--timeout", "120"], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1.0)
        r = cli("run", "--source", "demo", "--frames", "60", "--no-realtime", "--port", str(port),
                "--control-port", str(free_port()))  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        time.sleep(1.0)
        recorder.send_signal(signal.SIGINT)  # as Ctrl-C
        _, err = recorder.communicate(timeout=60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert recorder.returncode == 0, err
    info = check_recording(rec_path)
    poses = sum(n for t, n in info.topics.items() if t.startswith("hand.pose."))
    assert poses >= 60 and info.topics["hand.frame"] == 60
    recorded = [(t.encode(), p) for t, p, _ in messages(rec_path)]
    for _topic, payload in recorded:  # what was recorded is what was published: our maps, valid
        m = msgpack.unpackb(payload, raw=False)
        assert protocol.validate(m["topic"], m) == []

    got: list = []
    stop = threading.Event()
    play_port = free_port()
    t = _subscribe(f"tcp://127.0.0.1:{play_port}", got, stop)
    try:
        r = invoke("replay", str(rec_path), "--port", str(play_port), "--control-port", str(free_port()),
                   "--speed", "max", "--delay", "1")  # fmt: skip
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 10
        while len(got) < len(recorded) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(5)
    assert got == recorded  # byte for byte, same count, same order


def test_the_stream_recorded_in_process(tmp_path):
    """PoseSubscriber hands the recorder the payload as it arrived."""
    port = free_port()
    pub = Publisher(port=port, control_port=None)
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=("",), raw=True, timeout=5)
    rec = McapRecorder(tmp_path / "x.mcap")
    try:
        time.sleep(0.3)
        for i in range(5):
            pub.publish("log.info", {"level": "info", "msg": str(i)})
        for _ in range(5):
            m = sub.recv()
            rec.write(m.topic, m.payload, m.data["seq"])
    finally:
        sub.close()
        pub.close()
        rec.close()
    got = [msgpack.unpackb(p)["msg"] for _, p, _ in messages(tmp_path / "x.mcap")]
    assert got == ["0", "1", "2", "3", "4"]
    assert io.BytesIO((tmp_path / "x.mcap").read_bytes()).read(8).startswith(b"\x89MCAP")


def test_record_that_cannot_take_its_name_says_where_it_stays(tmp_path, monkeypatch):
    """A recording made to its end whose name cannot be taken (held open by another program, as on Windows) was
    renamed with a bare ``os.replace``: a traceback. Now one line saying where it stays, and exit 1."""

    hold_open(monkeypatch, "held.mcap")
    port, out = free_port(), tmp_path / "held.mcap"
    pub, done = Publisher(port=port, control_port=None), threading.Event()

    def publish() -> None:
        n = 0
        while not done.is_set():
            pub.publish(protocol.TOPIC_LOG + ".info", {"level": "info", "msg": f"m{n}"})
            n += 1
            time.sleep(0.02)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        r = invoke("record", str(out), "--address", f"tcp://127.0.0.1:{port}", "--count", "5", "--timeout", "20")
    finally:
        done.set()
        t.join()
        pub.close()
    part = next(tmp_path.glob(".held.*.part.mcap"))
    assert r.returncode == 1, r.stderr[-1500:]
    assert r.stderr.strip().splitlines()[-1] == (f"error: OUT {out}: could not be written (Permission denied); what "
                                                 f"was saved is in {part}")  # fmt: skip
    assert check_recording(part).messages == 5 and not out.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a file-size limit (RLIMIT_FSIZE) stands in for a full disk")
def test_record_on_a_full_disk_says_where_what_was_recorded_stays(tmp_path):
    """A disk that fills while recording (here a file-size limit, which fails a write the same way) ended `record`
    with a traceback; now one line naming where the messages recorded stay, and exit 1."""
    import resource

    port, out = free_port(), tmp_path / "full.mcap"
    pub, done = Publisher(port=port, control_port=None), threading.Event()

    def publish() -> None:
        while not done.is_set():
            pub.publish(protocol.TOPIC_LOG + ".info", {"level": "info", "msg": os.urandom(1500).hex()})
            time.sleep(0.002)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, hard))  # this process's files only, put back below
    try:
        r = invoke("record", str(out), "--address", f"tcp://127.0.0.1:{port}", "--count", "5000", "--timeout", "20")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        done.set()
        t.join()
        pub.close()
    part = next(tmp_path.glob(".full.*.part.mcap"))
    assert r.returncode == 1, r.stderr[-1500:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: OUT {out}: could not be written (File too large); the ") and last.endswith(
        f"messages recorded are in {part}, its end cut short"), last
    assert not out.exists() and part.stat().st_size == 300_000
