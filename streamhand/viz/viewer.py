"""Drawing: a 2D overlay on frames and a 3D skeleton view (pure functions returning images), and the
OpenCV windows used by ``streamhand run --show`` and ``streamhand view``."""

from __future__ import annotations

import math
import os
import time
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


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple) -> None:
    """``text`` with a dark outline, readable on skin and on any background."""
    width = max(1, round(2 * scale))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3 * width, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width, cv2.LINE_AA)


def draw_overlay(bgr: np.ndarray, hands: list[tuple], text: str = "", copy: bool = True) -> np.ndarray:
    """Draw (handedness, joints_2d (21, 2), mean joint_std m[, low_confidence]) skeletons and a status line onto
    ``bgr`` (a copy of it; ``copy=False``: into it), their lines, dots and text in proportion to the image (a 640-pixel
    image: 2-pixel lines). A hand the run flags as of low confidence is drawn thin, its label saying so."""
    img = bgr.copy() if copy else bgr
    k = max(img.shape[:2]) / 640.0
    line, dot, scale = max(1, round(2 * k)), max(1, round(3 * k)), min(max(0.5 * k, 0.25), 2.0)
    for handed, uv, std, *flag in hands:
        low = bool(flag and flag[0])
        c = COLORS.get(handed, (0, 255, 0))
        p = np.round(uv).astype(int)
        for a, b in _line_pairs():
            cv2.line(img, tuple(p[a]), tuple(p[b]), c, max(1, line // 2) if low else line, cv2.LINE_AA)
        for q in p:
            cv2.circle(img, tuple(q), dot, (160, 160, 160) if low else (255, 255, 255), -1, cv2.LINE_AA)
        label = f"{handed} +-{1000 * std:.0f}mm" + (" low confidence" if low else "")
        at = p[0] + np.round(np.array([5, 15]) * max(k, 0.5)).astype(int)
        _text(img, label, (int(at[0]), int(at[1])), scale, c)
    if text:
        _text(img, text, (8, round(20 * max(k, 0.6))), scale * 1.1, (255, 255, 255))
    return img


def overlay_image(frame: Any, poses: list, text: str = "") -> np.ndarray:
    """A processed frame (BGR) with its placed hands (:class:`~streamhand.run.place_step.PlacedHand`) drawn on it: what
    ``run --show`` shows and ``run --save-video`` writes."""
    hands = [(p.detection.handedness, p.detection.landmarks_px, float(np.mean(p.joint_std)),
              bool(getattr(p, "low_confidence", False))) for p in poses]  # fmt: skip
    return draw_overlay(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), hands, text, copy=False)  # a new image already


def _closed(name: str) -> bool:
    """Whether the window was closed by its close button (OpenCV would open it again at the next ``imshow``)."""
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True


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
        """Draw a frame; False once the window is closed (``q``, Esc or its close button)."""
        cv2.imshow(self.name, overlay_image(frame, poses, f"{fps:.1f} fps  {lat.get('total', 0):.1f} ms"))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27) and not _closed(self.name)

    def close(self) -> None:
        cv2.destroyWindow(self.name)


#: seconds without a frame after which ``streamhand view`` says the stream has stopped and shows no hand
STALE_S = 2.0
#: the widest window ``streamhand view`` opens (a larger camera is drawn scaled down)
MAX_VIEW_WIDTH = 1600


def view_stream(sub: Any, where: str = "") -> None:
    """``streamhand view``'s window: the newest frame's hands, their 2D landmarks beside their 3D skeleton (``a``/``d``
    turn the view; ``q``, Esc or the close button close it), and a line that says when nothing has come yet or for
    :data:`STALE_S` seconds. ``sub``: a :class:`~streamhand.stream.client.PoseSubscriber`; each redraw takes its
    newest whole frame (:meth:`~streamhand.stream.client.PoseSubscriber.latest`), so a fast stream is never drawn
    late. ``where``: the stream's address, for the waiting line."""
    name, yaw = "streamhand view", 30.0
    hands: list = []
    cam = {"width": 640, "height": 480}
    last: float | None = None
    try:
        while True:
            got = sub.latest(wait=0.03)
            now = time.monotonic()
            if got is not None:
                hands, last = got, now
                cam = hands[0].camera if hands else cam  # the size stays while no hand is in view
            if last is None:
                note = f"waiting for the stream{f' at {where}' if where else ''}"
            elif now - last > STALE_S:
                note, hands = f"nothing for {now - last:.0f} s: the run has stopped or paused", []
            else:
                note = "2D landmarks"
            canvas = np.zeros((int(cam["height"]), int(cam["width"]), 3), np.uint8)
            left = draw_overlay(canvas, [(h.handedness, h.joints_2d, float(np.mean(h.joint_std)), h.low_confidence)
                                         for h in hands], note)  # fmt: skip
            right = draw_skeleton_3d([(h.handedness, h.joints_cam) for h in hands], size=canvas.shape[0], yaw_deg=yaw)
            img = np.concatenate([left, right], axis=1)
            if img.shape[1] > MAX_VIEW_WIDTH:
                img = cv2.resize(img, (MAX_VIEW_WIDTH, round(img.shape[0] * MAX_VIEW_WIDTH / img.shape[1])))
            cv2.imshow(name, img)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27) or _closed(name):
                break
            if key in (ord("a"), ord("d")):
                yaw += 10 if key == ord("d") else -10
    finally:
        cv2.destroyAllWindows()
