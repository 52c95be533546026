import numpy as np
import pytest

from streamhand.synth.hand import reference_pose
from streamhand.viz.viewer import draw_overlay, draw_skeleton_3d
from tests.helpers import cli, invoke


def test_overlay_and_3d_view_draw_something():
    j = reference_pose() @ np.diag([1.0, -1.0, -1.0]).T + np.array([0, 0, 0.5])
    uv = j[:, :2] / j[:, 2:] * 500 + np.array([320, 240])
    img = draw_overlay(np.zeros((480, 640, 3), np.uint8), [("left", uv, 0.01)], "30 fps")
    assert img.shape == (480, 640, 3) and img.any()
    v = draw_skeleton_3d([("right", j)], size=300)
    assert v.shape == (300, 300, 3) and (v > 60).any()
    assert draw_skeleton_3d([], size=100).shape == (100, 100, 3)


def test_overlay_follows_the_image_size_and_marks_low_confidence():
    """Lines, dots and text in proportion to the image (a 1920-pixel frame drawn like a 640-pixel one, scaled), and a
    hand the run flags drawn thin and labelled."""
    j = reference_pose() @ np.diag([1.0, -1.0, -1.0]).T + np.array([0, 0, 0.5])
    uv = j[:, :2] / j[:, 2:] * 500 + np.array([320, 240])
    small = draw_overlay(np.zeros((480, 640, 3), np.uint8), [("right", uv, 0.01)], "30 fps") > 0
    big = draw_overlay(np.zeros((1440, 1920, 3), np.uint8), [("right", uv * 3, 0.01)], "30 fps") > 0
    assert 0.5 < big.any(-1).sum() / (9 * small.any(-1).sum()) < 1.5  # about the same share drawn (fixed sizes: 0.3)
    flagged = draw_overlay(np.zeros((480, 640, 3), np.uint8), [("right", uv, 0.01, True)]) > 0
    plain = draw_overlay(np.zeros((480, 640, 3), np.uint8), [("right", uv, 0.01, False)]) > 0
    assert (flagged != plain).any() and flagged.any(-1).sum() != plain.any(-1).sum()


def _unused_display() -> str:
    """A display number no X server on this machine holds (a developer's Xvfb may be on :99)."""
    from pathlib import Path

    n = next(n for n in range(147, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists()
             and not Path(f"/tmp/.X{n}-lock").exists())  # fmt: skip
    return f":{n}"


@pytest.mark.parametrize(
    ("args", "display", "message"),
    [
        (["view"], "", "error: no display available (DISPLAY is not set); use 'streamhand echo'"),
        (["view"], "UNUSED", "error: no usable display (could not connect to display UNUSED); use 'streamhand echo'"),
        (["run", "--show", "--frames", "1"], "UNUSED", "error: no usable display (could not connect to display "
                                                       "UNUSED); run without --show"),
    ],
)  # fmt: skip
def test_no_display_or_a_stale_one_is_one_line_exit_2(args, display, message):
    """A stale DISPLAY made OpenCV's Qt abort the process (exit 134); now a probe finds out first. (A stale display
    is tried in a process of its own: a regression would abort it, not the tests.)"""
    if display == "UNUSED":
        display = _unused_display()
        message = message.replace("UNUSED", display)
    env = {"DISPLAY": display, "WAYLAND_DISPLAY": ""}
    r = cli(*args, timeout=90, env=env) if display else invoke(*args, env=env)
    assert r.returncode == 2, r.stderr[-800:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr
