"""About a minute of the soak: the whole pipeline on the demo in real time with a fast and a stalling subscriber.
Threads and file descriptors stay flat after warm-up, the fast subscriber misses nothing, the stalled one
catches up, memory does not climb."""

from __future__ import annotations

import math

import pytest

from streamhand.soak import soak, summarise


@pytest.mark.slow
def test_one_minute_soak():
    res = soak(1.0, sample_s=3.0)
    assert res["errors"] == []
    assert res["frames"] > 600  # about 30 frames/s of the real-time demo, allowing for a busy machine
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
