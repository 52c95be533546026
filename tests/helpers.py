"""Test helpers: running the CLI (as a process, or in this process), rendering small frames."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "streamhand.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=str(ROOT))  # fmt: skip


@dataclass
class Ran:
    """What a command did: exit code, stdout and stderr apart (as from a process)."""

    returncode: int
    stdout: str
    stderr: str


def cli_runner():
    """typer's CliRunner with stderr kept apart from stdout: click 8.2 and later do so always, click 8.1 (which
    typer releases before 0.29 may run on) only when asked."""
    import inspect

    from typer.testing import CliRunner

    mix = "mix_stderr" in inspect.signature(CliRunner.__init__).parameters
    return CliRunner(mix_stderr=False) if mix else CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None, app=None) -> Ran:
    """``streamhand ARGS`` (or another typer ``app``, e.g. ``train.__main__.app``) in this process, through
    typer's CliRunner, from the repository root: no interpreter and no torch/MediaPipe import to pay for. An
    exception that escapes the command is appended to stderr as its traceback, as the process would print it.
    What a command may change for the whole process is put back afterwards: the environment (``quiet.configure``
    sets native log levels), the working directory, the stop signals' handlers (``run``, ``proxy`` and others
    install theirs), the root logger's handlers and level (``logging.basicConfig``), the levels of the loggers that
    ``quiet`` turns down, and torch's and NumPy's global random state and torch's thread count (training seeds)."""
    import logging
    import signal
    import traceback

    if app is None:
        from streamhand.cli import app
    saved_env, cwd = dict(os.environ), os.getcwd()
    from streamhand.stop_signals import STOP_SIGNALS

    handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("matplotlib", "PIL", "absl", "streamhand")}
    np_state = np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = (torch.random.get_rng_state(), torch.get_num_threads()) if torch is not None else None
    try:
        os.chdir(ROOT)
        r = cli_runner().invoke(app, list(args), env=env)
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for s, h in handlers.items():
            signal.signal(s, h)
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
        np.random.set_state(np_state)
        if torch_state is not None:
            torch.random.set_rng_state(torch_state[0])
            torch.set_num_threads(torch_state[1])
    err = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "".join(traceback.format_exception(r.exception))
    return Ran(r.exit_code, r.stdout, err)


def train_cli(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``python -m train ARGS`` in this process (see :func:`invoke`)."""
    from train.__main__ import app

    return invoke(*args, env=env, app=app)


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


def placed_hand(landmarks_px, joints_rel, joints_cam=None, track_id: int = 1, left: bool = False,
                joint_std=None, quality: float = 0.01):  # fmt: skip
    """A published hand as the pipeline's place step gives it (:class:`streamhand.run.place_step.PlacedHand`)."""
    from streamhand.detect import Detection
    from streamhand.run.place_step import PlacedHand

    det = Detection(np.asarray(landmarks_px, float), np.zeros(21), np.zeros((21, 3)), "left" if left else "right",
                    0.9, 0.9)  # fmt: skip
    rel = np.asarray(joints_rel, float)
    cam = rel if joints_cam is None else np.asarray(joints_cam, float)
    std = np.full(21, 0.01) if joint_std is None else np.asarray(joint_std, float)
    return PlacedHand(det, track_id, cam, rel, std, "estimate", quality, None)


def hold_open(monkeypatch, *names: str) -> None:
    """Files whose names end with one of ``names`` cannot take their name (``os.replace`` onto them fails), as on
    Windows where another program holds them open (Excel and a .csv)."""
    real = os.replace

    def held_open(src, dst):
        if str(dst).endswith(names):
            raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(os, "replace", held_open)


def drain(sub) -> list:
    """What has come to the subscriber ``sub`` until it waits its timeout for more."""
    got = []
    try:
        while True:
            got.append(sub.recv())
    except TimeoutError:
        return got
