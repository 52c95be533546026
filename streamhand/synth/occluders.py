"""Occluders in front of a rendered hand: :func:`add_occluder` draws an object (pen, mug, phone, ball, or the
edge of a sheet of paper or cloth) in front of part of the hand, z-tested against the frame's depth, and clears the
hand's mask under it.

Speed on one core (``cv2.setNumThreads(1)``, numpy 1.26, OpenCV 4.11; process CPU time): about 1.5 ms for a
64x100-pixel hand box and 7 ms for a 160x190 one.
"""

from __future__ import annotations

import math

import numpy as np

from streamhand.synth.scene_canvas import Layer
from streamhand.synth.scene_paint import F32, Draws, copy, full, shaded


def add_occluder(
    rng: np.random.Generator,
    rgb: np.ndarray,
    depth_m: np.ndarray,
    mask: np.ndarray,
    hand_box: tuple[int, int, int, int],
    hand_depth_m: float,
    probability: float = 0.3,
    max_cover: float = 0.3,
) -> bool:
    """Now and then (``probability``) draw an object in front of part of the hand, in place: a pen or stick, a
    mug, a phone, a ball, or the edge of a sheet of paper or cloth.

    ``rgb`` float32 (H, W, 3) 0-255, ``depth_m`` float32 (H, W) metres (0 or inf: nothing), ``mask`` uint8 (H, W)
    with 0 = background, i + 1 = hand i. ``hand_box`` (x0, y0, x1, y1) pixels, ``hand_depth_m`` the hand's
    typical (e.g. median) depth. The object lies 1-15 cm in front of ``hand_depth_m`` and is z-tested, so parts
    of the hand nearer still stay in front (an object held in the fingers). It covers at most ``max_cover`` of
    the hand box and some of the hand; the mask is set to 0 where it is drawn. Returns whether one was drawn.
    """
    r = Draws(rng)
    if rng.random() >= probability:
        return False
    h, w = mask.shape
    x0, y0, x1, y1 = (round(float(v)) for v in hand_box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return False
    size = max(x1 - x0, y1 - y0)
    ppm = size / 0.19  # a hand's box spans about 19 cm
    kind = r.pick(["pen", "mug", "phone", "ball", "paper", "cloth"], [0.26, 0.16, 0.16, 0.14, 0.14, 0.14])
    z_obj = max(float(hand_depth_m) - r.u(0.01, 0.15), 0.05)
    mx = int(0.6 * size)
    rx0, ry0, rx1, ry1 = max(0, x0 - mx), max(0, y0 - mx), min(w, x1 + mx), min(h, y1 + mx)
    hand = mask[ry0:ry1, rx0:rx1] > 0
    bsl = np.s_[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0]
    n_hand = int(hand[bsl].sum())
    scale = 1.0
    for _ in range(8):
        lay = Layer(rx0, ry0, rx1, ry1)
        _draw_occluder(r, lay, kind, r.u(x0, x1), r.u(y0, y1), ppm * scale, z_obj, (x0, y0, x1, y1))
        drawn = np.isfinite(lay.z)
        cover = float(drawn[bsl].mean())
        if cover <= max_cover and (n_hand == 0 or (drawn[bsl] & hand[bsl]).sum() >= max(1.0, 0.03 * n_hand)):
            break
        if cover > max_cover:
            scale *= 0.75
    else:
        return False
    zr = depth_m[ry0:ry1, rx0:rx1]
    m = drawn & ((lay.z < zr) | ~(zr > 0))
    if not m.any():
        return False
    copy(rgb[ry0:ry1, rx0:rx1], lay.rgb.astype(rgb.dtype, copy=False), m)
    copy(zr, lay.z.astype(zr.dtype), m)
    mask[ry0:ry1, rx0:rx1][m] = 0
    return True


def _draw_occluder(r: Draws, lay: Layer, kind: str, cx: float, cy: float, ppm: float, z: float, box) -> None:
    """One occluder into ``lay``: colour where drawn, depth there (inf elsewhere)."""
    xs, ys = lay.grid()
    ones = np.ones_like(ys)
    if kind == "pen":
        length = r.u(0.12, 0.3) * ppm
        rad = max(0.8, (r.u(0.004, 0.008) if r.chance(0.8) else r.u(0.01, 0.02)) * ppm)
        a = r.u(0, math.pi)
        dx, dy = F32(math.cos(a)), F32(math.sin(a))
        col = r.hsv((0.0, 0.9), (0.1, 0.95)) if r.chance(0.7) else np.array([200.0, 160, 60], F32)
        along = (xs - F32(cx)) * dx + (ys - F32(cy)) * dy
        perp = (xs - F32(cx)) * dy - (ys - F32(cy)) * dx
        inside = (np.abs(along) < F32(length / 2)) & (np.abs(perp) < F32(rad))
        t = np.sqrt(np.clip(1 - (perp / F32(rad)) ** 2, 0, 1))
        glint = np.exp(-(((perp + F32(0.4 * rad)) / F32(max(0.25 * rad, 0.5))) ** 2))
        shade = F32(0.55) + F32(0.5) * t + F32(0.3) * glint
        shade = np.where(along > F32(length / 2 - 1.5 * rad), shade * F32(0.3), shade)  # a darker tip
        colour = shaded(col, shade)
        zz = F32(z) - F32(rad / ppm) * t
    elif kind == "ball":
        rad = r.u(0.02, 0.045) * ppm
        d2 = ((xs - F32(cx)) ** 2 + (ys - F32(cy)) ** 2) / F32(rad * rad)
        inside = d2 < 1
        t = np.sqrt(np.clip(1 - d2, 0, 1))
        col = r.hsv((0.4, 0.95), (0.4, 1.0)) if r.chance(0.8) else np.array([200.0, 220, 60], F32)
        lx, ly = (xs - F32(cx - 0.35 * rad)) / F32(rad), (ys - F32(cy - 0.35 * rad)) / F32(rad)
        colour = shaded(col, F32(0.45) + F32(0.55) * t + F32(0.35) * np.exp(-(lx * lx + ly * ly) * F32(6)))
        zz = F32(z) - F32(rad / ppm) * t
    elif kind in ("mug", "phone"):
        if kind == "mug":
            rw, rh = r.u(0.035, 0.045) * ppm, r.u(0.045, 0.06) * ppm
            col = r.hsv((0.0, 0.8), (0.3, 0.97))
        else:
            rw, rh = r.u(0.035, 0.04) * ppm, r.u(0.07, 0.08) * ppm
            col = np.full(3, r.u(10, 50) if r.chance(0.7) else r.u(150, 220), F32)
        a = math.radians(r.u(-40, 40))
        ca, sa = F32(math.cos(a)), F32(math.sin(a))
        lu = (xs - F32(cx)) * ca + (ys - F32(cy)) * sa
        lv = -(xs - F32(cx)) * sa + (ys - F32(cy)) * ca
        corner = F32(0.15 * rw) if kind == "phone" else F32(0.02 * rw)
        qu, qv = np.maximum(np.abs(lu) - (F32(rw) - corner), 0), np.maximum(np.abs(lv) - (F32(rh) - corner), 0)
        inside = (np.abs(lu) < F32(rw)) & (np.abs(lv) < F32(rh)) & (qu * qu + qv * qv <= corner * corner + F32(1e-6))
        if kind == "mug":
            handle = (np.abs(np.hypot(lu - F32(rw), lv) - F32(0.55 * rw)) < F32(0.15 * rw + 0.5)) & (lu > F32(rw))
            inside |= handle
            t = np.sqrt(np.clip(1 - (lu / F32(rw)) ** 2, 0, 1))
            colour = shaded(col, F32(0.6) + F32(0.45) * t)
            zz = F32(z) - F32(rw / ppm) * t
        else:
            colour = full(*lu.shape, col)
            zz = np.full(lu.shape, F32(z))
            if r.chance(0.5):  # a lit screen
                scr = (np.abs(lu) < F32(0.88 * rw)) & (np.abs(lv) < F32(0.85 * rh))
                copy(colour, full(*lu.shape, r.hsv((0, 0.6), (0.5, 1.0))), scr)
    else:  # the edge of a sheet of paper or cloth reaching in from one side of the box
        x0, y0, x1, y1 = box
        side = r.i(0, 4)
        slope = F32(math.tan(r.u(-0.5, 0.5)))
        reach = F32(r.u(0.1, 0.45) * (x1 - x0 if side < 2 else y1 - y0))
        if side == 0:
            inside = xs < F32(x0) + reach + slope * (ys - F32(cy))
        elif side == 1:
            inside = xs > F32(x1) - reach + slope * (ys - F32(cy))
        elif side == 2:
            inside = ys < F32(y0) + reach + slope * (xs - F32(cx))
        else:
            inside = ys > F32(y1) - reach + slope * (xs - F32(cx))
        if kind == "paper":
            shade = (F32(1) - F32(0.08) * (xs - F32(x0)) / F32(max(1, x1 - x0))) * ones
            colour = shaded(np.full(3, r.u(215, 250), F32), shade)
        else:
            f = r.u(0.08, 0.3) * 2 * math.pi / max(ppm * 0.01, 1e-3)
            a = r.u(0, math.pi)
            shade = F32(0.8) + F32(0.2) * np.sin(F32(f * math.cos(a)) * xs + F32(f * math.sin(a)) * ys)
            colour = shaded(r.hsv((0.05, 0.8), (0.15, 0.9)), shade)
        zz = np.full(inside.shape, F32(z))
    inside = np.ascontiguousarray(np.broadcast_to(inside, lay.z.shape))
    copy(lay.rgb, np.ascontiguousarray(np.broadcast_to(colour, lay.rgb.shape)), inside)
    copy(lay.z, np.ascontiguousarray(np.broadcast_to(zz, lay.z.shape), dtype=F32), inside)
