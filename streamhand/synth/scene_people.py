"""People in the scenes: a head and shoulders facing the camera (skin tones from very light to very dark,
hair, eyes, brows, nose, mouth, beard, glasses, clothing), and bare or sleeved arms crossing the view, each drawn at
its own depth and z-tested.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamhand.synth.scene_canvas import Scene
from streamhand.synth.scene_paint import F32, HAIR_COLOURS, SKIN_TONES, copy, gray3, shaded


def draw_person(sc: Scene, zh: float, hx: float | None = None, hy: float | None = None) -> tuple[float, float, float]:
    """Head and shoulders of a person facing the camera, head centre at pixel (hx, hy) and depth ``zh`` (the
    face's outline; the nose is about 7 cm nearer). Returns (hx, hy, head height in pixels)."""
    r = sc.r
    s = sc.fx / zh  # pixels per metre
    hx = r.u(-0.05, 1.05) * sc.w if hx is None else hx
    hy = r.u(0.1, 0.6) * sc.h if hy is None else hy
    hh = r.u(0.21, 0.245) * s
    hw = hh * r.u(0.62, 0.72)
    sw = r.u(0.36, 0.48) * s  # shoulder width
    lay = sc.layer(hx - sw * 0.62, hy - hh * 0.7, hx + sw * 0.62, sc.h)
    if lay is None:
        return hx, hy, hh
    skin = np.minimum(SKIN_TONES[r.i(0, len(SKIN_TONES))] * np.array([r.u(0.9, 1.08), r.u(0.88, 1.05),
                                                                      r.u(0.86, 1.05)], F32), 255)  # fmt: skip
    x = r.random()
    if x < 0.3:
        cloth = np.full(3, r.pick([22.0, 35.0, 60.0, 110.0, 170.0, 230.0]) * r.u(0.9, 1.1), F32)
    elif x < 0.45:
        cloth = r.hsv((0.4, 0.8), (0.2, 0.55), (100, 125))
    else:
        cloth = r.hsv((0.15, 0.85), (0.2, 0.9))
    hair = HAIR_COLOURS[r.i(0, len(HAIR_COLOURS))] * F32(r.u(0.85, 1.15))
    bald = r.chance(0.08)
    long_hair = (not bald) and r.chance(0.35)
    yaw = r.u(-0.35, 0.35)
    tilt = r.u(-8, 8)
    zt = zh + 0.05
    y_sh = hy + hh * 0.5 + 0.09 * s  # shoulder line
    if long_hair:
        lay.ellipse(hx, hy + hh * 0.25, hw * 0.62, hh * r.u(0.65, 0.95), hair * 0.8, zh + 0.09, angle=tilt)
    # torso: rounded shoulders and a body down past the bottom of the image, shaded like a cylinder
    lay.ellipse(hx, y_sh + 0.05 * s, sw / 2, 0.09 * s, cloth, zt)
    lay.poly([[hx - sw / 2, y_sh + 0.05 * s], [hx + sw / 2, y_sh + 0.05 * s], [hx + sw * 0.47, sc.h + 5],
              [hx - sw * 0.47, sc.h + 5]], cloth, zt)  # fmt: skip
    if r.chance(0.7):  # arms hanging at the sides
        for sgn in (-1, 1):
            lay.line((hx + sgn * sw * 0.36, y_sh + 0.12 * s), (hx + sgn * sw * 0.4, sc.h + 5), cloth * 0.7, None,
                     max(1, 0.006 * s))  # fmt: skip
    xs, ys = lay.grid()
    tx = np.clip(np.abs(xs - F32(hx)) / F32(sw / 2), 0, 1)
    down = np.clip((ys - F32(y_sh)) / F32(0.5 * s), 0, 1)
    shade = (F32(0.72) + F32(0.3) * np.sqrt(1 - tx * tx)) * (1 - F32(0.15) * down)
    shade = np.where(lay.z == F32(zt), shade, F32(1))
    cv2.multiply(lay.rgb, gray3(shade), dst=lay.rgb)
    # neckline
    neck_w = r.u(0.1, 0.125) * s
    x = r.random()
    if x < 0.35:  # V-neck: a skin triangle
        lay.poly([[hx - neck_w * 0.9, y_sh], [hx + neck_w * 0.9, y_sh], [hx, y_sh + r.u(0.06, 0.15) * s]], skin * 0.85,
                 zh + 0.045)  # fmt: skip
    elif x < 0.6:  # a shirt collar
        cc = np.minimum(r.hsv((0, 0.6), (0.3, 0.95)) if r.chance(0.4) else cloth * 1.15, 255)
        for sgn in (-1, 1):
            lay.poly([[hx, y_sh + 0.06 * s], [hx + sgn * neck_w * 0.75, y_sh - 0.03 * s],
                      [hx + sgn * neck_w * 1.1, y_sh + 0.03 * s]], cc, zh + 0.04)  # fmt: skip
    # neck, ears
    lay.rect(hx - neck_w / 2, hy + hh * 0.2, hx + neck_w / 2, y_sh + 0.02 * s, skin * 0.8, zh + 0.04)
    lay.ellipse(hx, y_sh + 0.015 * s, neck_w * 0.55, 0.025 * s, skin * 0.75, zh + 0.045, a0=0, a1=180)
    for sgn in (-1, 1):
        lay.ellipse(hx + sgn * hw * (0.5 - 0.06 * sgn * yaw), hy + 0.02 * hh, 0.1 * hw, 0.14 * hh, skin * 0.85,
                    zh + 0.04)  # fmt: skip
    # the head: an egg of skin, darker toward its outline and on the side away from the light, hair on top
    fx_off = yaw * hw * 0.35  # features shift with a turned head
    bx0, by0 = max(round(hx - hw * 0.62) - lay.x0, 0), max(round(hy - hh * 0.62) - lay.y0, 0)
    bx1 = min(round(hx + hw * 0.62) - lay.x0 + 1, lay.rgb.shape[1])
    by1 = min(round(hy + hh * 0.62) - lay.y0 + 1, lay.rgb.shape[0])
    if bx1 > bx0 and by1 > by0:
        ox, oy = lay.x0 + bx0, lay.y0 + by0
        head = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        cv2.ellipse(head, (round(hx - ox), round(hy - 0.05 * hh - oy)), (round(hw / 2), round(hh * 0.45)), tilt, 0, 360,
                    1, -1)  # fmt: skip
        cv2.ellipse(head, (round(hx - ox), round(hy + 0.12 * hh - oy)), (round(hw * 0.43), round(hh * 0.38)), tilt, 0,
                    360, 1, -1)  # fmt: skip
        xs_h = np.arange(ox, ox + bx1 - bx0, dtype=F32)[None, :]
        ys_h = np.arange(oy, oy + by1 - by0, dtype=F32)[:, None]
        ex = (xs_h - F32(hx + fx_off * 0.5)) / F32(hw / 2) * np.ones_like(ys_h)
        ey = (ys_h - F32(hy)) / F32(hh / 2)
        r2 = np.minimum(ex * ex + ey * ey, 1)
        bump = np.sqrt(1 - r2)
        shade = (F32(0.78) + F32(0.27) * bump) * (1 + F32(r.u(-0.07, 0.07)) * ex)
        hm = head.view(bool)
        sub, zsub = lay.rgb[by0:by1, bx0:bx1], lay.z[by0:by1, bx0:bx1]
        copy(sub, shaded(skin, shade), hm)
        copy(zsub, F32(zh) - F32(0.07) * bump, hm)
        if not bald:  # a hair cap above a hairline that drops toward the temples
            cap = np.zeros_like(head)
            cv2.ellipse(cap, (round(hx - ox), round(hy - 0.1 * hh - oy)), (round(hw * 0.54), round(hh * 0.46)), tilt,
                        0, 360, 1, -1)  # fmt: skip
            hairline = F32(hy - r.u(0.18, 0.3) * hh) + F32(0.35 * hh) * np.abs(ex) ** 4
            cm = cap.view(bool) & (ys_h < hairline)
            copy(sub, shaded(hair, F32(0.8) + F32(0.25) * (1 - np.clip(np.abs(ex), 0, 1))), cm)
            copy(zsub, np.full(cm.shape, F32(zh - 0.03)), cm & ~hm)
    # features, skipped when too small to see
    ey_, ex_c, sp = hy + 0.02 * hh, hx + fx_off, 0.031 * s
    if sp >= 2:
        brow = hair * 0.8 if not bald else skin * 0.5
        iris = r.pick([(70.0, 45.0, 30.0), (40.0, 28.0, 20.0), (90.0, 120.0, 150.0), (90.0, 110.0, 70.0)],
                      [0.6, 0.15, 0.15, 0.1])  # fmt: skip
        for sgn in (-1, 1):
            x = ex_c + sgn * sp
            lay.ellipse(x, ey_, 0.018 * s, 0.01 * s, skin * 0.8, None)  # the socket's shadow
            lay.ellipse(x, ey_ - 0.02 * s, 0.018 * s, 0.006 * s, brow, None, a0=200, a1=340,
                        thickness=max(1, round(0.004 * s)))  # fmt: skip
            if sp >= 5:
                lay.ellipse(x, ey_, 0.014 * s, 0.006 * s, (215.0, 205.0, 195.0), None)
                lay.ellipse(x + yaw * 0.004 * s, ey_, 0.0055 * s, 0.0055 * s, iris, None)
                lay.ellipse(x + yaw * 0.004 * s, ey_, 0.0025 * s, 0.0025 * s, (15.0, 12.0, 12.0), None)
                lay.ellipse(x, ey_ - 0.001 * s, 0.015 * s, 0.007 * s, skin * 0.4, None, a0=190, a1=350,
                            thickness=max(1, round(0.002 * s)))  # fmt: skip
            else:
                lay.ellipse(x, ey_, 0.01 * s, 0.004 * s, skin * 0.35, None)
        ny = ey_ + 0.045 * s  # nose: a shadow down one side, nostrils, a lighter tip
        lay.line((ex_c + 0.006 * s, ey_ + 0.01 * s), (ex_c + 0.009 * s, ny - 0.006 * s), skin * 0.82, None,
                 max(1, 0.004 * s))  # fmt: skip
        lay.ellipse(ex_c, ny - 0.004 * s, 0.011 * s, 0.008 * s, np.minimum(skin * 1.05, 255), None)
        for sgn in (-1, 1):
            lay.ellipse(ex_c + sgn * 0.007 * s, ny, 0.004 * s, 0.0022 * s, skin * 0.45, None)
        my = ey_ + 0.075 * s
        if (not long_hair) and r.chance(0.15):  # beard and moustache
            lay.ellipse(ex_c, my + 0.01 * s, hw * 0.38, 0.045 * s, hair * 0.9, None, a0=0, a1=180)
            lay.ellipse(ex_c, my - 0.008 * s, 0.026 * s, 0.007 * s, hair * 0.9, None)
        lip = skin * np.array([0.82, 0.58, 0.6], F32)
        if r.chance(0.15):  # open mouth
            lay.ellipse(ex_c, my, 0.024 * s, 0.01 * s, (40.0, 20.0, 22.0), None)
            lay.ellipse(ex_c, my - 0.006 * s, 0.016 * s, 0.004 * s, (220.0, 215.0, 205.0), None)
        else:
            lay.ellipse(ex_c, my, 0.025 * s, 0.007 * s, lip, None)
        lay.line((ex_c - 0.024 * s, my), (ex_c + 0.024 * s, my), lip * 0.55, None, max(1, 0.002 * s))
        if r.chance(0.2):  # glasses
            gc = r.hsv((0, 0.5), (0.05, 0.6))
            t = max(1, round(0.0025 * s))
            for sgn in (-1, 1):
                lay.ellipse(ex_c + sgn * sp, ey_, 0.022 * s, 0.016 * s, gc, None, thickness=t)
            lay.line((ex_c - sp + 0.022 * s, ey_), (ex_c + sp - 0.022 * s, ey_), gc, None, t)
    sc.put(lay)
    return hx, hy, hh


def draw_arm(sc: Scene, z: float) -> None:
    """A bare or sleeved arm crossing the view: the elbow inside the image, the wrist beyond its edge."""
    r = sc.r
    s = sc.fx / z
    ex, ey = r.u(0.1, 0.9) * sc.w, r.u(0.2, 1.0) * sc.h
    far = 3.0 * max(sc.h, sc.w)
    a1 = r.u(0, 2 * math.pi)
    a2 = a1 + math.pi + r.u(-1.4, 1.4)  # the upper arm, bent at the elbow
    skin = np.minimum(SKIN_TONES[r.i(0, len(SKIN_TONES))] * F32(r.u(0.9, 1.08)), 255)
    sleeve = r.hsv((0.0, 0.8), (0.1, 0.9))
    cover = r.pick([0.0, 0.0, 1e3, r.u(0.03, 0.15)])  # how far down the forearm the sleeve reaches (metres)
    for i, ang in enumerate((a1, a2)):  # drawn straight into the scene, pixel by pixel, z-tested
        rad = (r.u(0.032, 0.042) if i == 0 else r.u(0.042, 0.055)) * s
        dx, dy = math.cos(ang), math.sin(ang)
        m = np.zeros((sc.h, sc.w), np.uint8)
        cv2.line(m, (round(ex), round(ey)), (round(ex + far * dx), round(ey + far * dy)), 1, max(1, round(2 * rad)))
        yy, xx = np.nonzero(m)
        if yy.size == 0:
            continue
        fx_, fy_ = xx.astype(F32) - F32(ex), yy.astype(F32) - F32(ey)
        perp = np.abs(fx_ * F32(dy) - fy_ * F32(dx))
        t = np.sqrt(np.clip(1 - (perp / F32(rad)) ** 2, 0, 1))
        along = fx_ * F32(dx) + fy_ * F32(dy)
        iz = np.reciprocal(F32(z) + F32(r.u(-0.15, 0.15) / s) * along - F32(rad / s) * t)
        win = iz > sc.iz[yy, xx]
        yy, xx, iz, t, along = yy[win], xx[win], iz[win], t[win], along[win]
        sleeved = along < F32(cover * s) if i == 0 else np.full(t.shape, cover > 0)
        sc.rgb[yy, xx] = np.where(sleeved[:, None], sleeve[None], skin[None]) * (F32(0.62) + F32(0.42) * t)[:, None]
        sc.iz[yy, xx] = iz
