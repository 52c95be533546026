import numpy as np

from streamhand.synth.hand import reference_pose
from streamhand.viewer import draw_overlay, draw_skeleton_3d
from tests.helpers import cli


def test_overlay_and_3d_view_draw_something():
    j = reference_pose() @ np.diag([1.0, -1.0, -1.0]).T + np.array([0, 0, 0.5])
    uv = j[:, :2] / j[:, 2:] * 500 + np.array([320, 240])
    img = draw_overlay(np.zeros((480, 640, 3), np.uint8), [("left", uv, 0.01)], "30 fps")
    assert img.shape == (480, 640, 3) and img.any()
    v = draw_skeleton_3d([("right", j)], size=300)
    assert v.shape == (300, 300, 3) and (v > 60).any()
    assert draw_skeleton_3d([], size=100).shape == (100, 100, 3)


def test_view_without_display_is_a_clear_error():
    r = cli("view", timeout=60, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert r.returncode == 2 and "no display" in r.stderr and "Traceback" not in r.stderr
