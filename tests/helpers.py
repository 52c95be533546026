"""Test helpers: running the CLI, rendering small frames, a tiny checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "streamhand.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=str(ROOT))  # fmt: skip


def rendered_frames(n: int, width: int = 320, height: int = 240, seed: int = 0, occluders: float | None = None):
    """(rgb list, depth list in metres, hands samples) of hands facing the camera; ``occluders``: the chance of an
    object in front of a hand (None: the renderer's default)."""
    from streamhand.synth.render import RenderConfig, render
    from streamhand.synth.sampler import SamplerConfig, sample_hands

    rng = np.random.default_rng(seed)
    cfg = SamplerConfig(width=width, height=height, facing_fraction=1.0, max_tilt_deg=25, max_roll_deg=30,
                        depth_range=(0.3, 0.5), in_frame_margin=0.06 * width)  # fmt: skip
    hs = sample_hands(rng, n, cfg)
    rgbs, depths = [], []
    for i in range(n):
        rc = RenderConfig() if occluders is None else RenderConfig(occluders=occluders)
        r = render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], rc, left=[bool(hs.left[i])])
        rgbs.append(r.rgb)
        depths.append(r.depth.astype(np.float32) / 1000.0)
    return rgbs, depths, hs
