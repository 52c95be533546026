"""Drawing: a 2D overlay on frames and a 3D skeleton view (pure functions returning images), and the
OpenCV windows used by ``streamhand run --show`` and ``streamhand view``."""

from __future__ import annotations

import math
import os
from typing import Any

import cv2
import numpy as np

from streamhand.skeleton import BONES, PALM_LINES
from streamhand.viz import HAND_RGB

COLORS = {hand: rgb[::-1] for hand, rgb in HAND_RGB.items()}  # BGR


class DisplayError(RuntimeError):
    pass


def _line_pairs():
    return list(BONES) + list(PALM_LINES)


def draw_overlay(bgr: np.ndarray, hands: list[tuple[str, np.ndarray, float]], text: str = "") -> np.ndarray:
    """Draw (handedness, joints_2d (21, 2), mean joint_std m) skeletons and a status line onto ``bgr``."""
    img = bgr.copy()
    for handed, uv, std in hands:
        c = COLORS.get(handed, (0, 255, 0))
        p = np.round(uv).astype(int)
        for a, b in _line_pairs():
            cv2.line(img, tuple(p[a]), tuple(p[b]), c, 2, cv2.LINE_AA)
        for q in p:
            cv2.circle(img, tuple(q), 3, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.putText(img, f"{handed} +-{1000 * std:.0f}mm", tuple(p[0] + [5, 15]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 1)
    if text:
        cv2.putText(img, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def overlay_image(frame: Any, poses: list, text: str = "") -> np.ndarray:
    """A processed frame (BGR) with its placed hands (:class:`~streamhand.run.place_step.PlacedHand`) drawn on it: what
    ``run --show`` shows and ``run --save-video`` writes."""
    hands = [(p.detection.handedness, p.detection.landmarks_px, float(np.mean(p.joint_std))) for p in poses]
    return draw_overlay(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), hands, text)


def draw_skeleton_3d(hands: list[tuple[str, np.ndarray]], size: int = 480, yaw_deg: float = 30.0,
                     pitch_deg: float = 15.0, extent_m: float = 0.5) -> np.ndarray:  # fmt: skip
    """Render (handedness, joints_cam (21, 3)) hands from a virtual camera orbiting the scene centre."""
    img = np.full((size, size, 3), 30, np.uint8)
    if not hands:
        cv2.putText(img, "no hands", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200, 200, 200), 1)
        return img
    centre = np.mean([j.mean(0) for _, j in hands], axis=0)
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    r = rx @ ry
    s = size / extent_m
    # floor grid for depth cues
    for g in np.linspace(-extent_m / 2, extent_m / 2, 6):
        for a, b in (
            ((g, 0.15, -extent_m / 2), (g, 0.15, extent_m / 2)),
            ((-extent_m / 2, 0.15, g), (extent_m / 2, 0.15, g)),
        ):
            pa, pb = (r @ np.array(a)) * s + size / 2, (r @ np.array(b)) * s + size / 2
            cv2.line(img, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), (60, 60, 60), 1)
    for handed, j in hands:
        q = ((j - centre) @ r.T) * s + size / 2
        c = COLORS.get(handed, (0, 255, 0))
        for a, b in _line_pairs():
            cv2.line(img, (int(q[a, 0]), int(q[a, 1])), (int(q[b, 0]), int(q[b, 1])), c, 2, cv2.LINE_AA)
    return img


_PROBE = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


_NO_SHOW = "run without --show (--no-show where a --config file sets show), or use 'streamhand echo'"


def _require_display(hint: str = _NO_SHOW) -> None:
    """Raise :class:`DisplayError` (one line, with ``hint``) unless a window can really be opened.

    OpenCV's Qt backend aborts the whole process when the display cannot be reached (a stale ``DISPLAY``), so
    a child process tries first."""
    import subprocess
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DisplayError(f"no display available (DISPLAY is not set); {hint}")
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise DisplayError(f"the display does not answer (DISPLAY={os.environ.get('DISPLAY', '')}); {hint}") from None
    if r.returncode != 0:
        why = next((ln for ln in r.stderr.splitlines() if "could not connect" in ln or "cannot" in ln.lower()), "")
        why = why.split(": ", 1)[-1].strip() if why else f"a window could not be opened (exit {r.returncode})"
        raise DisplayError(f"no usable display ({why}); {hint}")


class PreviewWindow:
    """The ``run --show`` window: the frame with the overlay, fps and latency. ``q`` or Esc closes it."""

    def __init__(self, name: str = "streamhand"):
        _require_display()
        self.name = name

    def show(self, frame, poses, lat: dict, fps: float = 0.0) -> bool:
        cv2.imshow(self.name, overlay_image(frame, poses, f"{fps:.1f} fps  {lat.get('total', 0):.1f} ms"))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.name)


def view_stream(sub: Any) -> None:
    """``streamhand view``'s window: the latest pose of each live track, its 2D landmarks beside its 3D skeleton
    (``a``/``d`` turn the view, ``q`` or Esc closes it). ``sub``: a raw
    :class:`~streamhand.stream.client.PoseSubscriber` with a short timeout, so the window stays responsive between
    messages."""
    latest: dict[int, dict] = {}
    yaw = 30.0
    try:
        while True:
            try:
                m = sub.recv()
                if m.topic == "hand.frame":
                    live = {h["track_id"] for h in m.data["hands"]}
                    latest = {k: v for k, v in latest.items() if k in live}
                else:
                    latest[m.data["track_id"]] = m.data
            except TimeoutError:
                pass
            cam = next(iter(latest.values()))["camera"] if latest else {"width": 640, "height": 480}
            canvas = np.zeros((cam["height"], cam["width"], 3), np.uint8)
            hands2 = [(d["handedness"], np.asarray(d["joints_2d"]), float(np.mean(d["joint_std"])))
                      for d in latest.values()]  # fmt: skip
            hands3 = [(d["handedness"], np.asarray(d["joints_cam"])) for d in latest.values()]
            left = draw_overlay(canvas, hands2, "2D landmarks")
            right = draw_skeleton_3d(hands3, size=cam["height"], yaw_deg=yaw)
            cv2.imshow("streamhand view", np.concatenate([left, right], axis=1))
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if key in (ord("a"), ord("d")):
                yaw += 10 if key == ord("d") else -10
    finally:
        cv2.destroyAllWindows()
