"""About a minute of the soak: the whole pipeline on the demo in real time with a fast and a stalling subscriber.
Threads and file descriptors stay flat after warm-up, the fast subscriber misses nothing, the stalled one
catches up, memory does not climb."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from streamhand.tools.soak import summarise

SOAK_TIMEOUT_S = 300  # a minute of soak plus model/detector start-up and teardown; under pytest-timeout's 600 s


def _soak_in_own_process(tmp_path, minutes: float) -> dict:
    """``streamhand bench --soak MINUTES --json FILE`` in a fresh interpreter: the RSS slope, threads and fds then
    describe the soak alone, not whatever earlier tests left in this pytest process. It samples every 3 s for one
    minute (as ``soak(1.0, sample_s=3.0)``) and picks its ports free at run time."""
    out = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "streamhand.cli", "bench", "--soak", str(minutes), "--json", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SOAK_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed the child
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        pytest.fail(f"soak child did not finish within {SOAK_TIMEOUT_S} s (killed): {' '.join(cmd)}\n"
                    f"stderr tail:\n{err[-3000:]}")  # fmt: skip
    # exit 1 with the figures written means the pipeline reported errors: the assertions below show them
    if proc.returncode not in (0, 1) or not out.exists():
        pytest.fail(f"soak child exited {proc.returncode} without figures: {' '.join(cmd)}\n"
                    f"stderr tail:\n{proc.stderr[-3000:]}")  # fmt: skip
    return json.loads(out.read_text())


@pytest.mark.slow
def test_one_minute_soak(tmp_path):
    res = _soak_in_own_process(tmp_path, 1.0)
    assert res["errors"] == []
    assert res["frames"] > 300  # the real-time demo: up to 30 frames/s; 5/s still shows it ran throughout, loaded
    assert len(res["threads"]) == 1 and len(res["fds"]) == 1, res  # flat after warm-up
    assert res["fast"]["received"] >= res["frames"] - 5 and res["fast"]["gaps"] == 0
    assert res["stalled"]["stalls"] >= 5 and res["stalled"]["received_after_last_stall"] > 0
    assert math.isfinite(res["rss_slope_mb_per_10min"]) and res["rss_slope_mb_per_10min"] < 20


def test_summary_slope_and_warm_up():
    class S:
        received, gaps, stalls, after_stall = 10, 0, 2, 3

    # 100 MB of warm-up growth in the first 20 s, then 0.5 MB per 10 minutes
    samples = [{"t_s": t, "rss_mb": 500 + (100 * t / 20 if t < 20 else 100 + 0.5 * (t - 20) / 600), "threads": 9,
                "fds": 21, "frames": t * 30, "fast_gaps": 0} for t in range(0, 600, 5)]  # fmt: skip
    res = summarise(samples, S(), S(), [], 10.0)
    assert res["rss_slope_mb_per_10min"] == pytest.approx(0.5, abs=0.01)
    assert res["threads"] == [9] and res["fds"] == [21]
