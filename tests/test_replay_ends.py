"""How `record` and `replay` end: what reaches a slow subscriber, what a killed recorder leaves, the closing status,
and the lines they end with. Real sockets, the real ``mcap`` library, the real commands."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from streamhand.stream.publish import Publisher
from streamhand.stream.recording import McapRecorder, check_recording, messages, replay
from tests.conftest import free_port
from tests.helpers import ROOT, invoke


def _big(path: Path, n: int, size: int = 2000) -> None:
    """A recording of ``n`` messages of about ``size`` bytes, all at one instant (``--speed max`` or not: at once)."""
    rec, t0 = McapRecorder(path, source="test"), time.time_ns()
    for i in range(n):
        rec.write("hand.frame", msgpack.packb({"topic": "hand.frame", "seq": i, "pad": b"x" * size}), i, t0)
    rec.close()


def _sub(port: int, rcvhwm: int | None = None) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def test_replay_at_max_speed_waits_for_a_slow_subscriber_to_take_the_end(tmp_path):
    """A subscriber busy for a moment as a big replay ended lost its end (the socket closed 0.7 s after the last send,
    what was still queued for it dropped) while `replay` said it replayed them all."""
    n, path, port = 20_000, tmp_path / "big.mcap", free_port()
    _big(path, n)
    sock, got, done = _sub(port), [], threading.Event()

    def read() -> None:  # busy 1.5 s after the first message (the queues fill and the replay ends), then reads on
        if sock.poll(20_000):
            got.append(msgpack.unpackb(sock.recv_multipart()[1])["seq"])
            time.sleep(1.5)
            while len(got) < n and sock.poll(3000):
                got.append(msgpack.unpackb(sock.recv_multipart()[1])["seq"])
        done.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        r = invoke("replay", str(path), "--port", str(port), "--control-port", str(free_port()), "--speed", "max",
                   "--delay", "0.5")  # fmt: skip
        done.wait(30)
    finally:
        t.join(5)
        sock.close(0)
    assert r.returncode == 0, r.stderr
    assert f"replayed {n} messages" in r.stderr and "may not all have reached" not in r.stderr, r.stderr
    assert got == list(range(n)), (len(got), got[-3:])


def _replay_to_a_subscriber_that_never_reads(tmp_path) -> tuple:
    """``replay --speed max`` of 10 000 messages of 4 kB (40 MB: more than the system's socket buffers hold) to a
    subscriber that never reads: what the command did, and how long it took (s)."""
    path, port = tmp_path / "big.mcap", free_port()
    _big(path, 10_000, size=4000)
    sock = _sub(port, rcvhwm=10)
    try:
        t0 = time.monotonic()
        r = invoke("replay", str(path), "--port", str(port), "--control-port", str(free_port()), "--speed", "max",
                   "--delay", "0.5")  # fmt: skip
        return r, time.monotonic() - t0
    finally:
        sock.close(0)


@pytest.mark.slow
def test_replay_says_so_where_a_subscriber_never_took_the_end(tmp_path, monkeypatch):
    """A subscriber that never reads holds the replay's end no longer than its bound, and the last line says so."""
    from streamhand import cli_record

    monkeypatch.setattr(cli_record, "REPLAY_FLUSH_S", 1.0)
    r, took = _replay_to_a_subscriber_that_never_reads(tmp_path)
    assert r.returncode == 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("replayed 10000 messages; a subscriber had not taken the last of them 1 s after"), last
    assert took < 10, took


def _publish_numbered(port: int, stop: threading.Event, step: int = 1, camera: str | None = None,
                      times: dict[int, float] | None = None) -> threading.Thread:  # fmt: skip
    """Publish log messages every 20 ms until ``stop``, their ``seq`` going up by ``step`` (``times``: seq -> when)."""
    pub = Publisher(port=port, control_port=None)

    def loop() -> None:
        seq = 0
        try:
            while not stop.is_set():
                msg = {"topic": "log.info", "schema": 1, "seq": seq, "level": "info", "message": "m", "logger": "t",
                       "t_publish": time.monotonic()}  # fmt: skip
                if camera is not None:
                    msg["camera"] = {"id": camera}
                pub.send_raw("log.info", msgpack.packb(msg))
                if times is not None:
                    times[seq] = time.monotonic()
                seq += step
                time.sleep(0.02)
        finally:
            pub.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_record_says_how_many_it_missed_by_the_gaps_in_seq(tmp_path):
    """`record` wrote what arrived and said nothing of what did not (a publisher drops for a slow subscriber
    without telling): its last line counts the gaps in each topic's and camera's seq."""
    port, stop = free_port(), threading.Event()
    t = _publish_numbered(port, stop, step=3, camera="cam1")  # every message after the first: 2 missed before it
    try:
        r = invoke("record", str(tmp_path / "r.mcap"), "--address", f"tcp://127.0.0.1:{port}", "--count", "5",
                   "--timeout", "20")  # fmt: skip
    finally:
        stop.set()
        t.join(5)
    assert r.returncode == 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.endswith("(5 messages); 8 missed on the way (gaps in seq: 8 of log.info (camera cam1))"), last


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_record_leaves_a_part_file_that_replays_to_about_a_second_before(tmp_path):
    """A `record` killed outright kept nothing (a 256 KB chunk held in memory, ~12 s of a stream), and `replay`
    refused a file cut short. Now a chunk goes to the file at least every second, and the part file plays."""
    port, out, stop, times = free_port(), tmp_path / "r.mcap", threading.Event(), {}
    proc = subprocess.Popen([sys.executable, "-m", "streamhand.cli", "record", str(out), "--address",
                             f"tcp://127.0.0.1:{port}", "--timeout", "0"], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    t = _publish_numbered(port, stop, times=times)
    try:
        deadline = time.monotonic() + 30  # the recorder is running once its part file is there, then 2 s more
        while not list(tmp_path.glob(".r.*.part.mcap")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.communicate(timeout=30)
    finally:
        stop.set()
        t.join(5)
        if proc.poll() is None:
            proc.kill()
    part = next(tmp_path.glob(".r.*.part.mcap"))
    info = check_recording(part)
    seqs = [msgpack.unpackb(p)["seq"] for _, p, _ in messages(part)]
    assert info.cut_short and info.messages == len(seqs) > 0 and not out.exists()
    assert killed - times[seqs[-1]] < 2.0, killed - times[seqs[-1]]  # ~1 s lost, not the whole recording

    r = invoke("replay", str(part), "--port", str(free_port()), "--control-port", str(free_port()), "--speed", "max",
               "--delay", "0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert [line for line in lines if "cut short" in line] == [
        f"warning: {part} was cut short after {len(seqs)} messages (its recorder did not finish it: killed, or the "
        "disk full); replaying those"]  # fmt: skip
    assert lines[-1].startswith(f"replayed {len(seqs)} messages"), lines


def _run_recording(path: Path) -> None:
    """A run's recording cut from its start: a status before the first frame (frame_id -1, counts 0, sizes 0, its own
    times), then 3 frames of camera c with 2 hands each, no later status."""
    rec, t0 = McapRecorder(path, source="test"), time.time_ns()
    zero = {"id": "c", "width": 0, "height": 0, "fx": 0.0, "fy": 0.0, "cx": 0.0, "cy": 0.0}
    cam = {"id": "c", "width": 640, "height": 480, "fx": 600.0, "fy": 600.0, "cx": 320.0, "cy": 240.0}
    status = {"topic": "status", "schema": 1, "seq": 0, "t_publish": 100.0, "frame_id": -1, "t_capture": 100.0,
              "t_capture_unix": 1e9, "camera": zero, "uptime_s": 2.0, "source": "demo", "source_state": "ok",
              "frames_in": 0, "frames_processed": 0, "fps": 0.0, "drops": {}, "corrupt_frames": 0,
              "hands_published": 0, "latency_ms": {}, "backend": "b", "backend_reason": "", "detector": "d",
              "stalled": {}}  # fmt: skip
    rec.write("status", msgpack.packb(status), 0, t0)
    for f in range(3):
        common = {"frame_id": 10 + f, "t_capture": 100.5 + f, "t_capture_unix": 1e9 + 0.5 + f, "camera": cam}
        for h, side in enumerate(("left", "right")):
            rec.write(f"hand.pose.{side}", msgpack.packb({"topic": f"hand.pose.{side}", "seq": f, **common,
                                                          "t_publish": 100.6 + f + h / 100}), f, t0 + f)  # fmt: skip
        rec.write("hand.frame", msgpack.packb({"topic": "hand.frame", "seq": f, **common, "hands": [{}, {}],
                                               "t_publish": 100.7 + f}), f, t0 + f)  # fmt: skip
    rec.close()


@pytest.mark.parametrize(("stop_after", "state", "frames", "frame_id"), [(None, "ended", 3, 12), (5, "stopped", 1, 11)])
def test_the_closing_status_is_brought_up_to_the_last_message_sent(tmp_path, stop_after, state, frames, frame_id):
    """The status a replay added at the end was a copy of the last recorded one: on a recording cut from a run's
    start, frame_id -1, counts 0, the camera's sizes 0, and times going backwards."""
    _run_recording(tmp_path / "r.mcap")
    out: list[tuple[str, dict]] = []
    replay(tmp_path / "r.mcap", lambda t, p: out.append((t, msgpack.unpackb(p))), None,
           stop=lambda: stop_after is not None and len(out) >= stop_after)  # fmt: skip
    topic, closing = out[-1]
    last = out[-2][1]  # the last message sent before it
    assert topic == "status" and closing["source_state"] == state and closing["seq"] == 1
    assert (closing["frame_id"], closing["t_capture"], closing["t_capture_unix"], closing["camera"]) == (
        last["frame_id"], last["t_capture"], last["t_capture_unix"], last["camera"])  # fmt: skip
    assert closing["frame_id"] == frame_id and closing["camera"]["width"] == 640
    assert closing["t_publish"] == max(m["t_publish"] for _, m in out[:-1])
    assert closing["uptime_s"] == pytest.approx(2.0 + closing["t_publish"] - 100.0)
    hands = sum(t.startswith("hand.pose.") for t, _ in out[:-1])
    assert (closing["frames_processed"], closing["hands_published"]) == (frames, hands)
    assert closing["frames_in"] == closing["frames_processed"]
    assert (closing["fps"], closing["drops"], closing["backend"]) == (0.0, {}, "b")  # as the last status said


def _control(port: int, ask: list[bytes], answers: list, until: threading.Event) -> threading.Thread:
    """Ask the control socket at ``port`` each of ``ask`` in turn (each once answered), keeping the answers."""
    def loop() -> None:
        req = zmq.Context.instance().socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 200)
        req.connect(f"tcp://127.0.0.1:{port}")
        try:
            for cmd in ask:
                while not until.is_set():
                    try:
                        req.send(cmd)
                        answers.append(req.recv())
                        break
                    except zmq.Again:  # not bound yet: a new socket, asked again
                        req.close(0)
                        req = zmq.Context.instance().socket(zmq.REQ)
                        req.setsockopt(zmq.LINGER, 0)
                        req.setsockopt(zmq.RCVTIMEO, 200)
                        req.connect(f"tcp://127.0.0.1:{port}")
                time.sleep(0.4)
        finally:
            req.close(0)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_a_replay_stopped_during_its_delay_says_so(tmp_path):
    """`stop` on the control socket during --delay ended the replay without its closing line."""
    _big(tmp_path / "a.mcap", 3, size=10)
    control, answers, until = free_port(), [], threading.Event()
    t = _control(control, [b"stop"], answers, until)
    try:
        r = invoke("replay", str(tmp_path / "a.mcap"), "--port", str(free_port()), "--control-port", str(control),
                   "--delay", "30")  # fmt: skip
    finally:
        until.set()
        t.join(5)
    assert r.returncode == 0 and answers == [b"ok"], r.stderr
    assert r.stderr.strip().splitlines()[-1] == "replayed 0 messages (stopped before the first)", r.stderr


def test_a_looping_replays_stats_say_which_pass(tmp_path):
    """`stats` said {'messages': 198, 'of': 50} on a loop: now the pass, the messages of it, and all sent."""
    rec, t0 = McapRecorder(tmp_path / "a.mcap"), time.time_ns()
    for i in range(5):  # 5 messages over 0.2 s: a pass every 0.2 s
        rec.write("hand.frame", msgpack.packb({"topic": "hand.frame", "seq": i}), i, t0 + i * 50_000_000)
    rec.close()
    control, answers, until = free_port(), [], threading.Event()
    t = _control(control, [b"stats", b"stats", b"stop"], answers, until)  # 0.4 s apart: past the first pass
    try:
        r = invoke("replay", str(tmp_path / "a.mcap"), "--port", str(free_port()), "--control-port", str(control),
                   "--delay", "0", "--loop")  # fmt: skip
    finally:
        until.set()
        t.join(5)
    assert r.returncode == 0 and answers[-1] == b"ok", r.stderr
    stats = msgpack.unpackb(answers[1])
    assert set(stats) == {"messages", "of", "pass", "sent"} and stats["of"] == 5 and stats["pass"] >= 2, stats
    assert 1 <= stats["messages"] <= 5 and stats["sent"] == (stats["pass"] - 1) * 5 + stats["messages"], stats
    assert " passes through its 5" in r.stderr.strip().splitlines()[-1], r.stderr


def test_a_record_with_nothing_to_keep_leaves_no_folder_it_made(tmp_path):
    """`record nodir/x.mcap` stopped with nothing received wrote no file, but left the folder it made for it."""
    r = invoke("record", str(tmp_path / "nodir" / "x.mcap"), "--address", f"tcp://127.0.0.1:{free_port()}",
               "--duration", "0.3")  # fmt: skip
    assert r.returncode == 0 and "no recording was written" in r.stderr, r.stderr
    assert not (tmp_path / "nodir").exists()


def test_a_replay_bound_beyond_this_machine_warns_as_run_does(tmp_path, caplog):
    """`replay --bind 0.0.0.0` opened the stream and its control socket (whose stop ends it) to the network unsaid."""
    _big(tmp_path / "a.mcap", 2, size=10)
    r = invoke("replay", str(tmp_path / "a.mcap"), "--bind", "0.0.0.0", "--port", str(free_port()), "--control-port",
               str(free_port()), "--delay", "0", "--speed", "max")  # fmt: skip
    assert r.returncode == 0, r.stderr
    said = caplog.text + r.stderr
    assert "--bind 0.0.0.0: the stream and the control socket (whose `stop` ends this replay) are open to every " \
           "machine that can reach this one, without authentication" in said, said


@pytest.mark.slow
def test_a_stop_during_the_wait_for_the_end_is_not_called_delivered(tmp_path, monkeypatch):
    """Ctrl-C (here SIGTERM) while the replay waits for a subscriber to take its end cut the wait short, and the last
    line said plainly "replayed N messages", as if all had gone."""
    import os
    import signal

    from streamhand import cli_record

    real = cli_record._close_waiting

    def stopped_while_waiting(*a):
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return real(*a)

    monkeypatch.setattr(cli_record, "_close_waiting", stopped_while_waiting)
    r, took = _replay_to_a_subscriber_that_never_reads(tmp_path)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("replayed 10000 messages; stopped while its subscribers were still taking the last"), last
    assert took < 9, took
