"""Furniture and objects in the scenes: things on the back wall (doors, windows with blinds and curtains,
posters, shelves of books, cabinets), things standing on a surface (monitors, mugs, bottles, plants, lamps, books,
cardboard boxes) and things lying flat on the desk (keyboards, paper, notebooks, phones).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamhand.synth.scene_canvas import Scene
from streamhand.synth.scene_paint import F32, col3, full, gray3, shaded, tex_wood, text_lines

DOWN = np.array([0.0, 1.0, 0.0])


def wall_item(sc: Scene, wall, floor_y: float, kind: str, used: list[tuple[float, float]]) -> None:
    """A door, window, poster, shelf or cabinet on the back wall (``wall`` = point, along, normal)."""
    r = sc.r
    p0, e1, n = wall
    hit = sc.ray_plane(r.u(-0.1, 1.1) * sc.w, sc.cy, p0, n)
    if hit is None:
        return
    s_c = float((hit - p0) @ e1)
    z_wall = max(sc.cam_z(hit), 0.3)
    ppm = min(0.7 * sc.fx / z_wall, 128.0)  # texels per metre, near the screen's resolution

    def claim(width: float, pad: float = 0.0) -> tuple[float, float] | None:
        """The span of an item ``width`` wide centred on the hit, kept free by ``pad`` on either side; None (and
        nothing claimed) where another item's span overlaps it."""
        a, b = s_c - width / 2, s_c + width / 2
        if not all(b + pad < u0 or a - pad > u1 for u0, u1 in used):
            return None
        used.append((a - pad, b + pad))
        return a, b

    def tex_size(wm: float, hm: float) -> tuple[int, int]:
        f = min(1.0, 256 / max(wm * ppm, hm * ppm, 1))
        return max(4, round(hm * ppm * f)), max(4, round(wm * ppm * f))

    if kind == "door":
        wm, hm = r.u(0.78, 0.92), r.u(1.98, 2.1)
        span = claim(wm, 0.1)
        if span is None:
            return
        a, b = span
        top = floor_y - hm
        casing = r.hsv((0, 0.08), (0.75, 0.97))
        th, tw = tex_size(wm, hm)
        if r.chance(0.12):  # open: a dim room beyond
            tex = full(th, tw, r.hsv((0, 0.3), (0.08, 0.3)))
            for _ in range(3):
                x = r.i(0, tw)
                cv2.rectangle(tex, (x, r.i(th // 3, th)), (x + tw // 3, th), col3(r.hsv((0, 0.4), (0.05, 0.35))), -1)
        else:
            x = r.random()
            if x < 0.4:
                tex = tex_wood(r, th, tw, 1)
            else:
                tex = full(th, tw, casing if x < 0.8 else r.hsv((0.05, 0.5), (0.3, 0.85)))
            npan = r.pick([0, 2, 4, 6])
            if npan:
                cols, rows = (1, 2) if npan == 2 else (2, npan // 2)
                mx, my = tw // 7, th // 14
                pw, ph = (tw - mx * (cols + 1)) // cols, (th - my * (rows + 1)) // rows
                for i in range(cols):
                    for j in range(rows):
                        xa, ya = mx + i * (pw + mx), my + j * (ph + my)
                        cv2.rectangle(tex, (xa, ya), (xa + pw, ya + ph), col3(tex[ya, xa] * 0.8), max(1, tw // 40))
            hx = round(tw * (0.86 if r.chance(0.5) else 0.14))
            cv2.circle(tex, (hx, th // 2), max(1, tw // 22), (r.u(60, 200),) * 3, -1)
        bx, by = max(1, round(0.07 * tw / wm)), max(1, round(0.07 * th / hm))  # the casing around it
        tex = cv2.copyMakeBorder(tex, by, 0, bx, bx, cv2.BORDER_CONSTANT, value=col3(casing))
        sc.plane(p0, e1, DOWN, tex=tex, extent=(a - 0.07, b + 0.07, top - 0.07, floor_y), zbias=0.02)
    elif kind == "window":
        wm, hm = r.u(0.5, 1.8), r.u(0.8, 1.5)
        span = claim(wm, 0.15)
        if span is None:
            return
        a, b = span
        bottom = floor_y - r.u(0.75, 1.0)
        top = bottom - hm
        th, tw = tex_size(wm, hm)
        sky = np.array([r.u(200, 245), r.u(215, 250), 255], F32)
        tex = shaded(sky, (F32(0.85) + np.arange(th, dtype=F32)[:, None] * F32(0.2 / th)) * np.ones((1, tw), F32))
        for _ in range(r.i(0, 5)):  # trees and buildings outside, bright
            c = col3(r.hsv((0.1, 0.4), (0.6, 0.9), (30, 110)))
            x, y = r.i(0, tw), r.i(th // 3, th)
            if r.chance(0.5):
                cv2.ellipse(tex, (x, y), (int(tw * r.u(0.1, 0.3)), int(th * r.u(0.1, 0.3))), 0, 0, 360, c, -1)
            else:
                cv2.rectangle(tex, (x, y), (x + int(tw * r.u(0.1, 0.4)), th), c, -1)
        frame = r.hsv((0, 0.1), (0.75, 0.97)) if r.chance(0.7) else r.hsv((0, 0.3), (0.1, 0.5))
        bar = max(1, round(0.03 * ppm))
        if r.chance(0.7):
            cv2.line(tex, (tw // 2, 0), (tw // 2, th), col3(frame * 0.9), bar)
        if r.chance(0.5):
            y = int(th * r.u(0.3, 0.5))
            cv2.line(tex, (0, y), (tw, y), col3(frame * 0.9), bar)
        blinds = r.chance(0.3)
        if blinds:  # slats, partly pulled down
            down_to = int(th * r.u(0.3, 1.0))
            sl = r.hsv((0, 0.2), (0.6, 0.95))
            pitch = max(2, round(0.05 * ppm))
            cv2.rectangle(tex, (0, 0), (tw, down_to), col3(sl), -1)
            for y in range(0, down_to, pitch):
                cv2.line(tex, (0, y), (tw, y), col3(sl * 0.75), 1)
        fb = max(1, round(0.05 * tw / wm))
        tex = cv2.copyMakeBorder(tex, fb, fb, fb, fb, cv2.BORDER_CONSTANT, value=col3(frame))
        sc.plane(p0, e1, DOWN, tex=tex, extent=(a - 0.05, b + 0.05, top - 0.05, bottom + 0.05), zbias=0.008,
                 emissive=r.u(1.0, 1.2) if blinds else r.u(1.3, 1.8))  # fmt: skip
        mid = sc.project((p0 + s_c * e1 + (top + bottom) / 2 * DOWN)[None])[0][0]
        sc.add_light(mid[0], mid[1], wm * sc.fx / z_wall, r.u(0.2, 0.6))
        if r.chance(0.35):  # curtains at the sides
            folds = F32(0.8) + F32(0.2) * np.sin(np.linspace(0, 2 * np.pi * r.i(3, 7), 32, dtype=F32))
            ct = shaded(r.hsv((0.05, 0.7), (0.2, 0.9)) if r.chance(0.7) else np.full(3, r.u(150, 240)),
                         np.ones((8, 1), F32) * folds[None, :])  # fmt: skip
            cw = r.u(0.2, 0.45)
            for s in (a - cw + 0.1, b - 0.1):
                sc.plane(p0, e1, DOWN, tex=ct, extent=(s, s + cw, top - 0.15, bottom + 0.3), zbias=0.06)
    elif kind == "poster":
        wm = r.u(0.25, 1.0)
        hm = wm * r.u(0.6, 1.5)
        top = r.u(-0.5, 0.4) - hm / 2
        th, tw = tex_size(wm, hm)
        x = r.random()
        if x < 0.35:  # abstract
            tex = full(th, tw, r.hsv((0, 0.6), (0.2, 0.95)))
            for _ in range(r.i(2, 8)):
                c = col3(r.hsv((0.2, 0.9), (0.2, 0.95)))
                cx, cy = r.i(0, tw), r.i(0, th)
                rr = r.i(2, max(3, min(tw, th) // 2))
                if r.chance(0.5):
                    cv2.circle(tex, (cx, cy), rr, c, -1)
                else:
                    cv2.rectangle(tex, (cx, cy), (cx + rr, cy + 2 * rr), c, -1)
        elif x < 0.65:  # landscape photo
            g = (F32(1) - np.arange(th, dtype=F32)[:, None] * F32(0.3 / th)) * np.ones((1, tw), F32)
            tex = shaded(r.hsv((0.2, 0.6), (0.6, 0.95), (95, 120)), g)
            hor = int(th * r.u(0.4, 0.7))
            pts = [[0, th], [0, hor]] + [[int(xx), int(hor - r.u(0, 0.3) * th)] for xx in np.linspace(0, tw, 6)]
            pts += [[tw, hor], [tw, th]]
            cv2.fillPoly(tex, [np.array(pts, np.int32)], col3(r.hsv((0.2, 0.7), (0.2, 0.6), (20, 100))))
        else:  # text / chart
            tex = full(th, tw, r.hsv((0, 0.1), (0.8, 0.97)))
            cv2.rectangle(tex, (tw // 10, th // 12), (tw - tw // 10, th // 4), col3(r.hsv((0.3, 0.9))), -1)
            text_lines(tex, r, tw // 10, th // 4, tw - tw // 10, th - th // 12, (40.0, 40.0, 45.0), max(2, th // 25))
        if r.chance(0.7):
            cv2.rectangle(tex, (0, 0), (tw - 1, th - 1), col3(r.hsv((0, 0.5), (0.05, 0.9))), max(1, round(0.02 * ppm)))
        sc.plane(p0, e1, DOWN, tex=tex, extent=(s_c - wm / 2, s_c + wm / 2, top, top + hm), zbias=0.015)
    elif kind in ("shelf", "cabinet"):
        wm = r.u(0.5, 1.3)
        hm = r.u(1.2, 2.1) if kind == "shelf" else r.u(0.6, 1.0)
        span = claim(wm)
        if span is None:
            return
        a, b = span
        depth_m = min(r.u(0.25, 0.45), z_wall - 0.6)  # its front stays beyond 0.6 m
        if depth_m < 0.15:
            return
        th, tw = tex_size(wm, hm)
        tex = tex_wood(r, th, tw, 1) if r.chance(0.5) else full(th, tw, r.hsv((0, 0.1), (0.1, 0.95)))
        mid = tex[th // 2, tw // 2].copy()
        if kind == "shelf":
            bt = max(1, round(0.025 * ppm))
            rows = np.linspace(0, th, r.i(2, 6) + 1).astype(int)
            for i in range(len(rows) - 1):
                ya, yb = rows[i] + bt, rows[i + 1] - bt
                cv2.rectangle(tex, (bt, ya), (tw - bt, yb), col3(mid * 0.45), -1)
                x = bt + r.i(0, max(1, tw // 6))
                while x < tw - bt - 2 and r.chance(0.93):
                    bwid = max(1, round(r.u(0.02, 0.06) * ppm))
                    bh = int((yb - ya) * r.u(0.55, 0.95))
                    c = r.hsv((0.1, 0.8), (0.15, 0.9))
                    if r.chance(0.1):  # a box or a plant among the books
                        bwid *= 4
                        c = r.hsv((0.3, 0.7), (0.2, 0.6), (10, 85))
                    cv2.rectangle(tex, (x, yb - bh), (min(x + bwid, tw - bt), yb), col3(c), -1)
                    cv2.line(tex, (x, yb - bh), (x, yb), col3(c * 0.6), 1)
                    x += bwid + (r.i(0, 3 * bwid) if r.chance(0.15) else 0)
        else:
            rows = np.linspace(0, th, r.i(2, 5) + 1).astype(int)
            for i in range(len(rows) - 1):
                cv2.rectangle(tex, (1, rows[i] + 1), (tw - 2, rows[i + 1] - 1), col3(mid * 0.7), max(1, tw // 60))
                cv2.circle(tex, (tw // 2, (rows[i] + rows[i + 1]) // 2), max(1, tw // 30), col3(mid * 0.6), -1)
        front = p0 - n * depth_m
        sc.plane(front, e1, DOWN, tex=tex, extent=(a, b, floor_y - hm, floor_y))
        if kind == "cabinet" and r.chance(0.5):  # something on top
            object_on(sc, front + ((a + b) / 2 + r.u(-0.2, 0.2)) * e1 + (floor_y - hm) * DOWN + n * 0.12,
                       r.pick(["plant", "lamp", "books", "box"]))  # fmt: skip


def object_on(sc: Scene, base_world: np.ndarray, kind: str) -> None:
    """A camera-facing object standing on a surface at world point ``base_world``: monitor, mug, bottle, plant,
    lamp, books or box."""
    r = sc.r
    z = sc.cam_z(base_world)
    if z < 0.3:
        return
    px, _ = sc.project(base_world[None])
    bx, by = float(px[0, 0]), float(px[0, 1])
    s = sc.fx / z  # pixels per metre
    if kind == "monitor":
        wm, hm, lift = r.u(0.45, 0.75), r.u(0.28, 0.42), r.u(0.06, 0.14)
        lay = sc.layer(bx - wm / 2 * s - 2, by - (hm + lift) * s - 2, bx + wm / 2 * s + 2, by + 2)
        if lay is None:
            return
        dark = np.full(3, r.u(15, 45), F32)
        lay.rect(bx - 0.04 * s, by - lift * s - 1, bx + 0.04 * s, by, dark * 1.3, z + 0.08)
        lay.ellipse(bx, by, 0.1 * s, 0.015 * s, dark * 1.3, z + 0.06)
        top = by - (hm + lift) * s
        lay.rect(bx - wm / 2 * s, top, bx + wm / 2 * s, by - lift * s, dark, z)
        b = 0.012 * s
        sx0, sy0, sx1, sy1 = bx - wm / 2 * s + b, top + b, bx + wm / 2 * s - b, by - lift * s - 2.5 * b
        on = r.chance(0.65)
        if on:
            lay.rect(sx0, sy0, sx1, sy1, r.hsv((0, 0.5), (0.5, 1.0)), None)
            for _ in range(r.i(1, 4)):  # windows of an app
                ax0, ay0 = r.u(sx0, sx1), r.u(sy0, sy1)
                ax1 = min(sx1, ax0 + r.u(0.2, 0.7) * (sx1 - sx0))
                ay1 = min(sy1, ay0 + r.u(0.3, 0.8) * (sy1 - sy0))
                lay.rect(ax0, ay0, ax1, ay1, r.hsv((0, 0.2), (0.2, 1.0)), None)
                lay.rect(ax0, ay0, ax1, ay0 + max(2, 0.02 * s), r.hsv((0, 0.6), (0.2, 0.9)), None)
                text_lines(
                    lay.rgb,
                    r,
                    round(ax0 - lay.x0) + 2,
                    round(ay0 - lay.y0) + 3,
                    round(ax1 - lay.x0) - 2,
                    round(ay1 - lay.y0) - 2,
                    col3(r.hsv((0, 0.3), (0.0, 0.5))),
                    max(3, round(0.012 * s)),
                )
        else:
            lay.rect(sx0, sy0, sx1, sy1, dark * 0.6, None)
        won = sc.put(lay)
        if on and won is not None:
            xs, ys = lay.grid()
            scr = won & (lay.z == F32(z)) & (ys >= sy0) & (ys <= sy1) & (xs >= sx0) & (xs <= sx1)
            sc.emit(lay, scr, r.u(1.0, 1.25))
        return
    if kind == "plant":
        pot_h, pot_w = r.u(0.08, 0.35), r.u(0.08, 0.3)
        spread = pot_w * r.u(1.2, 3.0)
        top = by - pot_h * s
        lay = sc.layer(bx - spread * s, top - spread * 1.4 * s, bx + spread * s, by + 1)
        if lay is None:
            return
        leaf = r.hsv((0.35, 0.8), (0.2, 0.55), (35, 75))
        stem = max(1, round(0.004 * s))
        for _ in range(r.i(7, 20)):
            ang = r.u(-math.pi, 0)
            rr = r.u(0.3, 1.0) * spread * s
            lx, ly = bx + math.cos(ang) * rr * 0.8, top + math.sin(ang) * rr * 0.9
            c = leaf * F32(r.u(0.6, 1.3))
            lay.line((bx, top), (lx, ly), c * 0.7, z + 0.02, stem)
            lay.ellipse(lx, ly, r.u(0.03, 0.09) * s, r.u(0.01, 0.03) * s, c, z + r.u(0, 0.1), angle=math.degrees(ang))
        pc = r.hsv((0, 0.6), (0.2, 0.9))
        lay.poly([[bx - pot_w / 2 * s, top], [bx + pot_w / 2 * s, top], [bx + pot_w * 0.38 * s, by],
                  [bx - pot_w * 0.38 * s, by]], pc, z)  # fmt: skip
        lay.rect(bx - pot_w * 0.53 * s, top - 0.01 * s, bx + pot_w * 0.53 * s, top + 0.012 * s, pc * 0.85, z)
        sc.put(lay)
        return
    if kind == "lamp":
        hm, shade_w = r.u(0.3, 0.6), r.u(0.15, 0.35)
        lay = sc.layer(bx - shade_w * s, by - hm * s - 2, bx + shade_w * s, by + 2)
        if lay is None:
            return
        c = r.hsv((0, 0.5), (0.1, 0.9))
        lay.ellipse(bx, by, 0.07 * s, 0.015 * s, c * 0.8, z)
        lay.line((bx, by), (bx, by - hm * 0.7 * s), c * 0.8, z, max(1, 0.012 * s))
        top, low = by - hm * s, by - hm * 0.6 * s
        zs = z - 0.02
        lay.poly([[bx - shade_w * 0.3 * s, top], [bx + shade_w * 0.3 * s, top], [bx + shade_w / 2 * s, low],
                  [bx - shade_w / 2 * s, low]], r.hsv((0, 0.4), (0.6, 0.98)), zs)  # fmt: skip
        won = sc.put(lay)
        if won is not None and r.chance(0.5):  # switched on: a glowing shade and a pool of light
            sc.emit(lay, won & (lay.z == F32(zs)), r.u(1.3, 1.8))
            sc.add_light(bx, low, 0.6 * s, r.u(0.2, 0.5))
        return
    if kind == "box":
        wm, hm = r.u(0.2, 0.5), r.u(0.15, 0.45)
        lay = sc.layer(bx - wm / 2 * s, by - hm * s, bx + wm / 2 * s, by + 1)
        if lay is None:
            return
        c = np.array([r.u(170, 215), r.u(130, 165), r.u(85, 115)], F32)  # cardboard
        if r.chance(0.3):
            c = r.hsv((0.0, 0.7), (0.2, 0.95))
        lay.rect(bx - wm / 2 * s, by - hm * s, bx + wm / 2 * s, by, c, z)
        lay.rect(bx - wm / 2 * s, by - hm * s, bx + wm / 2 * s, by - hm * 0.9 * s, c * 0.85, z)
        lay.line((bx, by - hm * s), (bx, by - hm * 0.7 * s), c * 0.8, None, max(1, 0.03 * s))
        sc.put(lay)
        return
    if kind == "books":
        lay = sc.layer(bx - 0.2 * s, by - 0.25 * s, bx + 0.2 * s, by + 1)
        if lay is None:
            return
        y = by
        for _ in range(r.i(1, 6)):
            bh, bw, off = r.u(0.015, 0.05) * s, r.u(0.15, 0.3) * s, r.u(-0.03, 0.03) * s
            lay.rect(bx - bw / 2 + off, y - bh, bx + bw / 2 + off, y, r.hsv((0.1, 0.8), (0.15, 0.9)), z)
            lay.line((bx - bw / 2 + off, y - bh / 2), (bx + bw / 2 + off - 2, y - bh / 2), (235.0, 230.0, 220.0), None,
                     max(1, bh / 3))  # fmt: skip
            y -= bh
        sc.put(lay)
        return
    # mug or bottle: cylinders with a soft side-to-side shading and a highlight
    rm, hm = (r.u(0.035, 0.05), r.u(0.08, 0.12)) if kind == "mug" else (r.u(0.03, 0.045), r.u(0.18, 0.3))
    rad = rm * s
    lay = sc.layer(bx - rad * 1.8, by - hm * s - rad * 0.4, bx + rad * 1.8, by + rad * 0.4)
    if lay is None:
        return
    c = r.hsv((0.0, 0.85), (0.2, 0.97))
    top = by - hm * s
    if kind == "mug":
        lay.ellipse(bx + rad * 1.05, by - hm * 0.5 * s, rad * 0.45, hm * 0.3 * s, c * 0.85, z + rm,
                    thickness=max(1, round(rad / 5)))  # fmt: skip
        lay.rect(bx - rad, top, bx + rad, by, c, z)
        lay.ellipse(bx, by, rad, rad * 0.3, c, z)
        lay.ellipse(bx, top, rad, rad * 0.3, c * 0.9, z)
        lay.ellipse(bx, top, rad * 0.85, rad * 0.22, c * 0.35, z)
    else:
        neck = top + hm * 0.3 * s
        lay.rect(bx - rad, neck, bx + rad, by, c, z)
        lay.ellipse(bx, by, rad, rad * 0.3, c, z)
        lay.poly([[bx - rad, neck], [bx - rad * 0.4, top + hm * 0.1 * s], [bx + rad * 0.4, top + hm * 0.1 * s],
                  [bx + rad, neck]], c, z)  # fmt: skip
        lay.rect(bx - rad * 0.4, top, bx + rad * 0.4, top + hm * 0.1 * s, r.hsv((0, 0.8), (0.1, 0.9)), z)
        if r.chance(0.6):
            lay.rect(bx - rad, by - hm * 0.55 * s, bx + rad, by - hm * 0.25 * s, r.hsv((0, 0.9), (0.3, 1)), z)
    xs, _ = lay.grid()
    t = np.clip(np.abs(xs - F32(bx)) / F32(max(rad, 1)), 0, 1)
    hl = np.exp(-(((xs - F32(bx - 0.35 * rad)) / F32(max(rad * 0.15, 0.7))) ** 2))
    shade = (F32(0.6) + F32(0.45) * np.sqrt(1 - t * t) + F32(0.25) * hl) * np.ones((lay.z.shape[0], 1), F32)
    cv2.multiply(lay.rgb, gray3(shade), dst=lay.rgb)
    sc.put(lay)


def flat_on_desk(sc: Scene, desk_y: float, x: float, zw: float, kind: str) -> None:
    """A keyboard, sheet of paper, notebook or phone lying on the desk at world (x, desk_y, zw)."""
    r = sc.r
    ang = float(np.clip(r.rng.normal(0, 0.25), -0.8, 0.8))
    e1 = np.array([math.cos(ang), 0.0, math.sin(ang)])
    e2 = np.array([-math.sin(ang), 0.0, math.cos(ang)])
    p0 = np.array([x, desk_y - 0.002, zw])
    ppm = min(0.8 * sc.fx / max(sc.cam_z(p0), 0.3), 160.0)
    if kind == "keyboard":
        wm, dm = r.u(0.35, 0.45), r.u(0.12, 0.16)
        tw, th = max(8, round(wm * ppm)), max(4, round(dm * ppm))
        body = np.full(3, r.pick([25.0, 45.0, 200.0, 225.0]), F32)
        tex = full(th, tw, body * 0.7 if body[0] > 100 else body * 1.8 + 10)  # the keys, then gaps between them
        gap = max(1, round(0.004 * ppm))
        for i in range(16):
            cv2.line(tex, (round(i * tw / 15), 0), (round(i * tw / 15), th), col3(body), gap)
        for j in range(6):
            cv2.line(tex, (0, round(j * th / 5)), (tw, round(j * th / 5)), col3(body), gap)
    elif kind == "phone":
        wm, dm = r.u(0.07, 0.08), r.u(0.14, 0.16)
        tw, th = max(4, round(wm * ppm)), max(8, round(dm * ppm))
        tex = full(th, tw, np.full(3, r.u(10, 40)))
        if r.chance(0.4):
            screen = col3(r.hsv((0, 0.6), (0.4, 1)))
            cv2.rectangle(tex, (tw // 14, th // 12), (tw - tw // 14, th - th // 12), screen, -1)
    else:
        wm, dm = (0.21, 0.297) if kind == "paper" else (r.u(0.15, 0.25), r.u(0.2, 0.3))
        tw, th = max(4, round(wm * ppm)), max(4, round(dm * ppm))
        base = np.full(3, r.u(225, 250), F32) if kind == "paper" else r.hsv((0, 0.8), (0.2, 0.9))
        tex = full(th, tw, base)
        if kind == "paper":
            text_lines(tex, r, tw // 8, th // 10, tw - tw // 8, th - th // 10, (60.0, 60.0, 70.0), max(2, th // 35))
    sc.plane(p0, e1, e2, tex=tex, extent=(-wm / 2, wm / 2, -dm / 2, dm / 2), zbias=0.002)
