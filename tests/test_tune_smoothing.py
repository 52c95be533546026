"""Choosing the One Euro filter's settings (train/tune_smoothing.py): the replay scores a filter as a run report
would, the pick's rules (table), and the command end to end on a short rendered clip through the real pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamhand.runtime_config import SmoothConfig
from tests.helpers import placed_hand, train_cli
from train.tune_smoothing import NO_LAG_MS, Recording, Setting, pick, record_clip, replay, search

SQUARE = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]] * 5 + [[50.0, 50.0]])


def _recording(n: int = 60, noise: float = 0.004, seed: int = 0, end_at: int | None = None) -> Recording:
    """One hand whose joints move on a slow arc, published with white noise; its track ends at ``end_at`` and a
    new one goes on."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.03, (21, 3)) + np.array([0, 0, 0.5])
    rec = Recording(seed)
    track = 1
    for i in range(n):
        if i == end_at:
            rec.events.append(("end", track))
            track = 2
        truth_cam = base + np.array([0.05 * np.sin(i / 10), 0.02 * i / n, 0])
        pub = truth_cam + rng.normal(0, noise, (21, 3))
        truth = {"joints_2d": [SQUARE], "joints_cam": [truth_cam]}
        rec.events.append(("frame", i, i / 30.0, truth, [placed_hand(SQUARE, pub - pub[0], pub, track_id=track)]))
    return rec


@pytest.mark.slow
def test_the_replay_scores_as_a_smoothed_run_of_the_same_clip_does():
    """Record a clip unsmoothed, replay a filter on it; then run the clip through the pipeline with that filter:
    the run report's figures are the replay's."""
    from streamhand.app import build_run
    from streamhand.runtime_config import RunConfig, SourceConfig

    rec = record_clip(1, frames=15)
    got = replay(rec, 2.0, 20.0, 1.0)
    source = SourceConfig(kind="demo", realtime=False, demo_seed=1, demo_seconds=0.5)
    cfg = RunConfig(source=source, smooth=SmoothConfig(min_cutoff=2.0, beta=20.0, d_cutoff=1.0), frames=15)
    with build_run(cfg, publish=False) as run:
        want = run.run()
    assert want["truth_hands"] > 15  # the first hand in every frame, the second in the last few
    for k in ("epe_mean_mm", "jitter_mm", "lag_ms"):
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-9)
    assert got["jitter_mm"] != pytest.approx(replay(rec, 8.0, 200.0, 4.0)["jitter_mm"])  # the filter matters


def test_an_ended_track_starts_its_filter_again():
    """After an end the track's next frame is published as it came (a new One Euro passes its first value)."""
    rec = _recording(end_at=30)
    rec.events = [e if e[0] == "end" else (*e[:4], [h._replace(track_id=1) for h in e[4]]) for e in rec.events]
    smoothed = replay(rec, 0.5, 0.0, 1.0)
    unended = Recording(rec.seed, [e for e in rec.events if e[0] != "end"])
    assert smoothed["epe_mean_mm"] != pytest.approx(replay(unended, 0.5, 0.0, 1.0)["epe_mean_mm"], rel=1e-6)


def test_smoothing_white_noise_lowers_its_jitter_and_an_open_filter_changes_nothing():
    rec = _recording()
    none, settings = search([rec], {"min_cutoff": (1.0, 1e9), "beta": (0.0,), "d_cutoff": (1.0,)})
    smooth, wide_open = settings
    assert smooth.jitter_mm < 0.5 * none["jitter_mm"]  # 1 Hz at 30 fps: white noise mostly gone
    assert wide_open.jitter_mm == pytest.approx(none["jitter_mm"], rel=1e-6)
    assert wide_open.epe_mm == pytest.approx(none["epe_mm"], rel=1e-6)


def _s(epe: float, jitter: float, lag: float, mc: float = 1.0) -> Setting:
    return Setting(mc, 10.0, 1.0, epe, jitter, lag)


@pytest.mark.parametrize(
    ("settings", "slack", "chosen"),
    [
        # the least jitter among those within the slack of the least error, lagging ones left out
        ([_s(10.0, 8.0, 0, 1), _s(10.04, 7.0, 0, 2), _s(10.2, 5.0, 0, 3), _s(9.0, 4.0, 33, 4)], 0.05, 2),
        ([_s(10.0, 8.0, 0, 1), _s(10.04, 7.0, 0, 2), _s(10.2, 5.0, 0, 3)], 0.5, 3),
        ([_s(10.0, 8.0, 0, 1), _s(10.04, 7.0, 0, 2)], 0.0, 1),
        ([_s(10.0, 8.0, NO_LAG_MS, 1), _s(10.0, 7.0, NO_LAG_MS + 0.1, 2)], 0.05, 1),  # a lag at the line is none
        ([_s(10.0, 8.0, 0, 1), _s(10.0, 8.0, 0, 2)], 0.05, 1),  # ties: the first
        ([_s(float("nan"), 1.0, 0, 1), _s(12.0, 9.0, 0, 2)], 0.05, 2),  # no figure is no candidate
        ([_s(10.0, 8.0, 20, 1)], 0.05, None),  # every one lags
        ([], 0.05, None),
    ],
)
def test_pick(settings, slack, chosen):
    got = pick(settings, slack)
    assert (got.min_cutoff if got else None) == chosen


@pytest.mark.slow
def test_the_command_on_a_short_clip_through_the_pipeline(tmp_path):
    out = tmp_path / "tune.json"
    r = train_cli("tune-smoothing", "--seeds", "1", "--frames", "15", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["hands_scored"] >= 12  # the clip's two hands, found in most frames
    assert len(rep["settings"]) == 192 and rep["chosen"] is not None
    assert rep["current"]["min_cutoff"] == SmoothConfig().min_cutoff
    assert rep["chosen"]["lag_ms"] <= NO_LAG_MS
    assert rep["chosen"]["epe_mm"] <= min(s["epe_mm"] for s in rep["settings"] if s["lag_ms"] <= NO_LAG_MS) + 0.05
    assert "use: --smooth-min-cutoff" in r.stdout and "unsmoothed" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "1,x"], "--seeds '1,x': a comma list of whole numbers"),
        (["--seeds", "-1"], "--seeds '-1': a comma list of whole numbers 1 or more"),
        (["--seeds", "0,1"], "0 is the demo itself"),
        (["--frames", "5"], "--frames"),
        (["--model", "no-such-model"], "no-such-model"),
    ],
)
def test_bad_input_is_one_line(args, message):
    r = train_cli("tune-smoothing", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
