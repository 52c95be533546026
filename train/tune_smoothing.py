"""Choosing the One Euro filter's settings on rendered clips other than the demo's.

Each tuning clip is the demo's script drawn with another seed (hands of other shapes in another scene, the same
light and camera; one steady recording, as a camera gives one). It runs once, unsmoothed, through the whole pipeline
as ``streamhand run`` runs the demo (tracking, placement with depth, the error model); the published hands are
recorded. The filter is then replayed on the recording over a grid of settings, and each setting is scored exactly
as a run report scores the demo (:class:`streamhand.run.truth_score.TruthScore`: wrist-relative error, jitter, lag).
The pick: among the settings with no measurable lag, those within ``slack_mm`` of the least error, and of those the
least jitter.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from streamhand.place.smoothing import TrackSmoother
from streamhand.run.truth_score import TruthScore

log = logging.getLogger(__name__)

#: the settings searched: One Euro's cutoff at rest (Hz), its rise per m/s of joint speed (Hz), the speed's cutoff
GRID: dict[str, tuple[float, ...]] = {
    "min_cutoff": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    "beta": (5.0, 10.0, 20.0, 40.0, 60.0, 100.0, 150.0, 200.0),
    "d_cutoff": (1.0, 2.0, 4.0),
}
#: a lag at or below this (ms) counts as none (the lag estimate reads exactly 0 when no shift fits better)
NO_LAG_MS = 1.0


@dataclass
class Recording:
    """One clip's run, unsmoothed: in order, ``("end", track_id)`` where a track ended and ``("frame", index, t,
    truth, hands)`` for every frame with truth (``hands``: the published :class:`PlacedHand` tuples)."""

    seed: int
    events: list[tuple] = field(default_factory=list)


@dataclass
class Setting:
    min_cutoff: float
    beta: float
    d_cutoff: float
    epe_mm: float  #: mean over the clips of each clip's ``epe_mean_mm``
    jitter_mm: float  #: the same of ``jitter_mm``
    lag_ms: float  #: the largest of the clips' ``lag_ms``


def record_clip(seed: int, frames: int = 120, model: str = "default", hands: int = 2) -> Recording:
    """Run the demo's script drawn with ``seed`` through the pipeline, unsmoothed, for ``frames`` frames (the clip is
    ``frames`` long, so nothing loops), recording what is published."""
    from streamhand.app import build_run
    from streamhand.runtime_config import ModelSettings, RunConfig, SmoothConfig, SourceConfig

    source = SourceConfig(kind="demo", realtime=False, demo_seed=seed, demo_hands=hands, demo_seconds=frames / 30.0)
    cfg = RunConfig(source=source, model=ModelSettings(path=model), smooth=SmoothConfig(enabled=False), frames=frames)
    rec = Recording(seed)
    with build_run(cfg, publish=False) as run:
        em = run.pipeline.emitter
        place_end = em.place.end

        def on_end(track_id: int) -> None:
            rec.events.append(("end", track_id))
            place_end(track_id)

        def on_frame(f: Any, poses: list, _lat: dict) -> None:
            if f.truth is not None:
                rec.events.append(("frame", int(f.index), f.t_capture if f.t_media is None else f.t_media, f.truth,
                                   list(poses)))  # fmt: skip

        em.place.end = on_end
        em.frame_hooks.append(on_frame)
        run.run()
    return rec


def replay(rec: Recording, min_cutoff: float, beta: float, d_cutoff: float, enabled: bool = True) -> dict:
    """The run report's truth figures had the run published ``rec``'s hands through this filter (``enabled=False``:
    as recorded, unsmoothed)."""
    smoother = TrackSmoother(min_cutoff, beta, enabled, d_cutoff)
    score = TruthScore()
    for e in rec.events:
        if e[0] == "end":
            smoother.end(e[1])
            score.end(e[1])
            continue
        _, index, t, truth, hands = e
        out = []
        for h in hands:
            cam = smoother(h.track_id, h.joints_cam, t)
            out.append(h._replace(joints_cam=cam, joints_rel=cam - cam[0]))
        score.add(truth, out, index, t)
    return score.report()


def _mean_figures(reps: Sequence[dict]) -> tuple[float, float, float]:
    epe = float(np.mean([r.get("epe_mean_mm", np.nan) for r in reps]))
    jitter = float(np.mean([r.get("jitter_mm", np.nan) for r in reps]))
    lag = float(np.max([r.get("lag_ms", np.nan) for r in reps]))
    return epe, jitter, lag


def search(recs: Sequence[Recording], grid: dict[str, Iterable[float]] | None = None) -> tuple[dict, list[Setting]]:
    """The unsmoothed figures and every setting of ``grid`` (default :data:`GRID`) replayed on ``recs``."""
    g = GRID if grid is None else grid
    epe, jitter, lag = _mean_figures([replay(r, 1.0, 0.0, 1.0, enabled=False) for r in recs])
    none = {"epe_mm": epe, "jitter_mm": jitter, "lag_ms": lag}
    out = []
    for mc, beta, dc in itertools.product(g["min_cutoff"], g["beta"], g["d_cutoff"]):
        out.append(Setting(mc, beta, dc, *_mean_figures([replay(r, mc, beta, dc) for r in recs])))
    return none, out


def pick(settings: Sequence[Setting], slack_mm: float = 0.05) -> Setting | None:
    """Of the settings with no measurable lag, those within ``slack_mm`` of the least error; of those the least
    jitter (None if every setting lags)."""
    calm = [s for s in settings if s.lag_ms <= NO_LAG_MS and np.isfinite(s.epe_mm)]
    if not calm:
        return None
    best = min(s.epe_mm for s in calm)
    return min((s for s in calm if s.epe_mm <= best + slack_mm), key=lambda s: (s.jitter_mm, s.epe_mm))


def tune(seeds: Sequence[int], frames: int = 120, model: str = "default", slack_mm: float = 0.05,
         current: tuple[float, float, float] | None = None, grid: dict | None = None) -> dict:  # fmt: skip
    """Record each seed's clip, search the grid, pick; the figures as JSON-ready data (``current``: the settings in
    use, scored beside the pick)."""
    recs = []
    for s in seeds:
        log.info("recording the demo's script drawn with seed %d (%d frames)", s, frames)
        recs.append(record_clip(s, frames, model))
    none, settings = search(recs, grid)
    chosen = pick(settings, slack_mm)
    rep: dict = {"seeds": list(seeds), "frames": frames, "model": model, "slack_mm": slack_mm,
                 "hands_scored": sum(len(e[4]) for r in recs for e in r.events if e[0] == "frame"),
                 "unsmoothed": none, "chosen": asdict(chosen) if chosen else None,
                 "settings": [asdict(s) for s in settings]}  # fmt: skip
    if current is not None:
        rep["current"] = asdict(Setting(*current, *_mean_figures([replay(r, *current) for r in recs])))
    return rep


def report_lines(rep: dict, top: int = 8) -> list[str]:
    """The search as text: unsmoothed, the settings in use, the pick, and the best settings without lag."""
    def row(name: str, d: dict) -> str:
        head = f"{d['min_cutoff']:g} / {d['beta']:g} / {d['d_cutoff']:g}" if "min_cutoff" in d else "-"
        return f"  {name:<12} {head:<16} {d['epe_mm']:7.2f} {d['jitter_mm']:9.2f} {d['lag_ms']:7.1f}"

    lines = [f"One Euro on the demo's script drawn with seeds {', '.join(map(str, rep['seeds']))} "
             f"({rep['frames']} frames each, {rep['hands_scored']} hands, model {rep['model']}), "
             f"{len(rep['settings'])} settings",
             f"  {'':<12} {'cutoff/beta/d':<16} {'EPE mm':>7} {'jitter mm':>9} {'lag ms':>7}",
             row("unsmoothed", rep["unsmoothed"])]  # fmt: skip
    if "current" in rep:
        lines.append(row("in use", rep["current"]))
    if rep["chosen"] is None:
        lines.append("  every setting lags: none chosen")
        return lines
    lines.append(row("chosen", rep["chosen"]))
    calm = sorted((s for s in rep["settings"] if s["lag_ms"] <= NO_LAG_MS), key=lambda s: s["epe_mm"])[:top]
    lines.append(f"  the {len(calm)} most accurate without lag (chosen: least jitter within "
                 f"{rep['slack_mm']:g} mm of the best):")  # fmt: skip
    lines += [row("", s) for s in calm]
    c = rep["chosen"]
    lines.append(f"  use: --smooth-min-cutoff {c['min_cutoff']:g} --smooth-beta {c['beta']:g} "
                 f"--smooth-d-cutoff {c['d_cutoff']:g}")  # fmt: skip
    return lines
