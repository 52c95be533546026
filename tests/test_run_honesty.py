"""What a run and ``bench`` say about themselves: a thread count above the usable cores is warned, frames dropped
are shown on the terminal, the start-up to the first frame is in the report, and bench's figures name the machine
and agree with its percentiles."""

from __future__ import annotations

import json
import logging
import re
import time

import numpy as np
import pytest

from tests.conftest import free_port
from tests.helpers import invoke

DETECT_S = 0.12  # a detector this slow on a paced demo (30 frames/s) drops frames at the hand-off


def _ports() -> list[str]:
    return ["--port", str(free_port()), "--control-port", str(free_port())]


def _one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process may use one core (its affinity), and no thread-count warning was given in it yet."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr("streamhand.infer.select._THREADS_WARNED", set(), raising=False)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


@pytest.mark.slow
def test_model_threads_above_the_usable_cores_is_warned_once(tmp_path, monkeypatch, caplog):
    _one_core(monkeypatch)
    cfg = tmp_path / "threads.yaml"
    cfg.write_text("model:\n  threads: 4\n")
    for _ in range(2):  # a second run in the same process is not told again
        r = invoke("run", "--config", str(cfg), "--source", "demo", "--frames", "2", "--no-realtime", *_ports(),
                   env={"STREAMHAND_LIVE": "0"})  # fmt: skip
        assert r.returncode == 0, r.stderr[-1500:]
    said = _warnings(caplog, "model.threads 4")
    assert said == ["model.threads 4 is more than the 1 CPU core this process may use: the backend's threads spin "
                    "against MediaPipe's for it (about half the frame rate on one core); set model.threads to 1"], said


def test_threads_within_the_usable_cores_are_not_warned(monkeypatch):
    from streamhand.cpu import too_many_threads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert too_many_threads(2) is None and too_many_threads(1, cores=1) is None
    assert "model.threads 3 is more than the 2 CPU cores this process may use" in (too_many_threads(3) or "")
    assert "set --threads to 4 or fewer" in (too_many_threads(8, "--threads", cores=4) or "")


@pytest.fixture(scope="module")
def slow_paced_run(tmp_path_factory):
    """A paced demo run (the live line on) whose detector takes :data:`DETECT_S` a frame: its stderr and report."""
    from streamhand.run.work import DetectStep

    real = DetectStep.__call__

    def slow(self, w):
        time.sleep(DETECT_S)
        return real(self, w)

    report = tmp_path_factory.mktemp("slow") / "r.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DetectStep, "__call__", slow)
        t0 = time.monotonic()
        r = invoke("run", "--source", "demo", "--frames", "30", "--report", str(report), *_ports(),
                   env={"STREAMHAND_LIVE": "1"})  # fmt: skip
        wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-1500:]
    return r, json.loads(report.read_text()), wall


def test_frames_dropped_are_on_the_live_line_and_the_done_line(slow_paced_run):
    r, rep, _ = slow_paced_run
    dropped = sum(rep["drops"].values())
    assert dropped > 0 and rep["frames_processed"] < rep["frames_in"], rep["drops"]
    live = [t for t in re.split(r"[\r\n]", r.stderr) if re.search(r"\d+/30 frames  [\d.]+ fps", t)]
    assert live and any(re.search(r"e2e (\d+ ms|-)  \d+ dropped", t) for t in live), live
    done = r.stderr.rstrip().splitlines()[-1].split("\x1b[K")[-1]  # after the live line, cleared
    assert re.match(rf"done: {rep['frames_processed']}/30 frames, [\d.]+ fps, {dropped} dropped, e2e p50 ", done), done


def test_a_run_without_drops_says_none(tmp_path):
    rep = tmp_path / "r.json"
    r = invoke("run", "--source", "demo", "--frames", "3", "--no-realtime", "--report", str(rep), *_ports(),
               env={"STREAMHAND_LIVE": "0"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    assert not sum(json.loads(rep.read_text())["drops"].values())  # read as fast as it goes: lossless
    assert "dropped" not in r.stderr.rstrip().splitlines()[-1]


def test_the_report_times_the_pipelines_start_to_its_first_frame(slow_paced_run):
    _, rep, wall = slow_paced_run
    first = rep["first_frame_s"]
    assert isinstance(first, float) and DETECT_S <= first < wall, (first, wall)  # the first frame waited once


def test_bench_json_names_the_machine_and_its_rate_is_the_medians(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    from streamhand.cpu import cpu_facts

    _one_core(monkeypatch)
    out = tmp_path / "b.json"
    r = invoke("bench", "--model", str(tiny_checkpoint), "--backends", "onnxruntime", "--modalities", "2d",
               "--batch", "1,2", "--detectors", "", "--iters", "5", "--threads", "3", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    doc = json.loads(out.read_text())
    assert doc["cpu"] == cpu_facts() and doc["cpu"]["cores"] == 1 and doc["threads"] == 3
    assert doc["rows"] and all(x["per_s"] == pytest.approx(x["batch"] * 1e3 / x["p50_ms"]) for x in doc["rows"])
    assert "per s (p50)" in r.stdout
    assert len(_warnings(caplog, "--threads 3 is more than the 1 CPU core this process may use")) == 1


def test_bench_rate_follows_the_median_call_not_a_slow_outlier():
    from streamhand.tools.bench import _row

    row = _row("model", "onnxruntime", "2d", 2, np.array([1.0] * 9 + [1000.0]))  # one call slowed by other work
    assert row.p50_ms == pytest.approx(1.0) and row.per_s == pytest.approx(2000.0)
