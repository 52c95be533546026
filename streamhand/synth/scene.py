"""Procedural indoor scenes around a synthetic hand: what a webcam or depth camera sees behind and in front of it.

:func:`scene_background` draws a room as float32 RGB (0-255) with an aligned depth map in metres: walls (paint,
wallpaper, wood panelling, tiles, brick, plaster) lit by soft gradients and lamps, a corner now and then, floor,
ceiling, a desk plane in perspective, doors, bright overexposed windows (blinds, curtains), shelves with books,
cabinets, posters, monitors and desk clutter (keyboard, paper, mugs, bottles, plants, lamps, boxes), and now and
then people: a head and shoulders at 0.5-1.2 m, or bare and sleeved arms crossing the view. Skin-coloured things
that are not hands (faces, necks, arms, cardboard, pale wood, peach walls) are there on purpose. This module owns
the layouts (a room, a desk seen from above, a near wall) and where things go in them (:func:`build`); the camera
is pitched down by a random angle. Everything comes from the caller's generator: a seed gives the same scene.

The parts: :mod:`~streamhand.synth.scene_paint` (colour tables, random draws, textures),
:mod:`~streamhand.synth.scene_canvas` (the camera and z-tested drawing), :mod:`~streamhand.synth.scene_things`
(furniture and objects), :mod:`~streamhand.synth.scene_people` (faces, bodies, arms). :func:`add_occluder` (an
object in front of part of a rendered hand) lives in :mod:`~streamhand.synth.occluders` and is imported from here
too, as are the colour tables.

Speed on one core (``cv2.setNumThreads(1)``, numpy 1.26, OpenCV 4.11; process CPU time, mean over 300 and 120
scenes of all layouts): about 165-175 backgrounds/s at 256x256 (fx 300) and 50-55/s at 640x480 (fx 600).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamhand.synth.occluders import add_occluder
from streamhand.synth.scene_canvas import Scene
from streamhand.synth.scene_paint import (
    F32,
    HAIR_COLOURS,
    SKIN_TONES,
    WOOD_COLOURS,
    Draws,
    col3,
    desk_texture,
    floor_texture,
    wall_colour,
    wall_texture,
)
from streamhand.synth.scene_people import draw_arm, draw_person
from streamhand.synth.scene_things import DOWN, flat_on_desk, object_on, wall_item

__all__ = [
    "HAIR_COLOURS",
    "LAYOUTS",
    "SKIN_TONES",
    "WOOD_COLOURS",
    "Scene",
    "add_occluder",
    "build",
    "draw_arm",
    "draw_person",
    "scene_background",
]


LAYOUTS = ("room", "desk", "wall")


def scene_background(rng: np.random.Generator, h: int, w: int, fx: float) -> tuple[np.ndarray, np.ndarray]:
    """A random indoor scene seen by a pinhole camera with focal length ``fx`` pixels (principal point at the
    image centre): float32 RGB 0-255 (H, W, 3) and float32 depth in metres (H, W), within 0.5-4 m.

    Layouts: a room (far wall 1.8-3.7 m, doors, windows, furniture, often a person), a desk seen from above
    (camera pitched 15-55 degrees down, clutter, monitors) or a near wall (0.7-1.6 m, posters)."""
    r = Draws(rng)
    layout = r.pick(list(LAYOUTS), [0.5, 0.3, 0.2])
    pitch = {"room": r.u(-5, 15), "desk": r.u(15, 55), "wall": r.u(-5, 10)}[layout]
    sc = Scene(rng, h, w, fx, math.radians(pitch))
    build(sc, layout)
    return sc.finish()


def build(sc: Scene, layout: str, person: float | None = None) -> dict:
    """Draw a scene of ``layout`` (room, desk or wall) into ``sc``; returns what was placed, for tests:
    ``wall_dist``, ``desk`` (height below the camera, far edge, left and right extent), ``person`` (head u, v,
    height px, depth)."""
    r = sc.r
    h, w, fx = sc.h, sc.w, sc.fx
    info: dict = {"layout": layout}
    drop = math.cos(sc.pitch) * (h / 2) / fx + math.sin(sc.pitch)  # world y per metre of depth, bottom-centre ray
    # walls, floor, ceiling --------------------------------------------------------------------------------
    dist = {"room": r.u(1.8, 3.7), "desk": r.u(1.2, 3.5), "wall": r.u(0.7, 1.6)}[layout]
    floor_y, ceil_y = max(r.u(0.9, 1.4), 0.55 * drop), -r.u(1.0, 1.7)
    corners = [sc.ray(u, v) for u in (0, w - 1) for v in (0, h - 1)]
    yaw = float(np.clip(sc.rng.normal(0, 0.25), -0.6, 0.6))
    for _ in range(2):
        n1 = np.array([math.sin(yaw), 0.0, math.cos(yaw)])
        if min(float(n1 @ d) for d in corners) > 0.15:
            break
        yaw = 0.0  # a very wide view: face the wall squarely, or corner rays would miss it
    e1 = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    # keep the wall within 4 m where the image corners see it (rather than the floor or ceiling)
    far = 0.0
    for d in corners:
        t = dist / max(float(n1 @ d), 1e-3)  # the rays have camera z = 1: t is the depth
        if ceil_y < d[1] * t < floor_y:
            far = max(far, t)
    if far > 3.9:
        dist = max(0.6, dist * 3.9 / far)
    p0 = n1 * dist
    info["wall_dist"] = dist
    base = wall_colour(r)
    tex, tex_m = wall_texture(r, base)
    sc.plane(p0, e1, DOWN, colour=base, tex=tex, tex_m=tex_m, res=0.35)
    if layout != "wall" and r.chance(0.35):  # a corner: a second wall at right angles
        uc = r.u(0.1, 0.9) * w
        pc = sc.ray_plane(uc, sc.cy, p0, n1)
        if pc is not None and abs(float(e1 @ pc)) > 0.9:  # the side wall at least 0.9 m to the side
            base2 = base * F32(r.u(0.7, 0.95)) if r.chance(0.8) else wall_colour(r)
            tex2, tex_m2 = wall_texture(r, base2) if r.chance(0.3) else (None, (1.0, 1.0))
            sc.plane(pc, n1 if uc < sc.cx else -n1, DOWN, colour=base2, tex=tex2, tex_m=tex_m2, res=0.35)
            info["corner"] = uc
    ex, ez = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    # who is there, and the desk in front of them (drawn before the floor, which it mostly hides)
    p_person = {"room": 0.4, "desk": 0.12, "wall": 0.2}[layout] if person is None else person
    zh = r.u(0.58, min(1.2, dist - 0.25)) if dist > 0.85 and r.chance(p_person) else None  # nose 7 cm nearer
    desk = None
    if layout == "desk" or (layout == "room" and r.chance(0.4)):
        desk_y = max(r.u(0.25, 0.6), 0.54 * drop)
        zfar = r.u(0.6, max(0.65, min(1.6, dist - 0.05))) if layout == "desk" else r.u(0.45, 0.9)
        if zh is not None:
            zfar = min(zfar, zh - 0.12)  # the person sits beyond the desk
        if zfar > 0.4:
            xl, xr = r.u(0.4, 1.6), r.u(0.4, 1.6)
            # the near edge: under the bottom of the image (or as near as the camera allows), at most 25 cm out
            below = sc.pitch + math.atan((h / 2) / fx)
            near = min(0.25, desk_y / math.tan(below) - 0.1) if below < math.radians(89) else -1.0
            near = max(near, (0.1 - desk_y * math.sin(sc.pitch)) / math.cos(sc.pitch))
            sc.plane(np.array([0.0, desk_y, 0.0]), ex, ez, tex=lambda: desk_texture(r), extent=(-xl, xr, near, zfar),
                     res=0.5)  # fmt: skip
            sc.add_light(r.u(0, w), h, 0.5 * w, r.u(0.0, 0.3))
            info["desk"] = desk = (desk_y, zfar, xl, xr)
    sc.plane(np.array([0.0, floor_y, 0.0]), ex, ez, tex=lambda: floor_texture(r), res=0.4)
    if sc.pitch < math.atan((h / 2) / fx):  # the top of the view looks up: the ceiling may show
        sc.plane(np.array([0.0, ceil_y, 0.0]), ex, ez, colour=r.hsv((0, 0.05), (0.8, 0.97)))
    # illumination: gradients and lamps
    gh, gw = sc.light.shape
    gx = (np.arange(gw, dtype=F32) * F32(2 / (gw - 1)) - F32(1))[None, :]
    gy = (np.arange(gh, dtype=F32) * F32(2 / (gh - 1)) - F32(1))[:, None]
    sc.light *= F32(r.u(0.75, 1.1)) * (F32(1) + F32(r.u(-0.3, 0.3)) * gx + F32(r.u(-0.25, 0.1)) * gy)
    for _ in range(r.i(0, 3)):
        sc.add_light(r.u(0, w), r.u(-0.3, 0.6) * h, r.u(0.15, 0.5) * w, r.u(0.1, 0.4))
    # things on the back wall and the floor ----------------------------------------------------------------
    used: list[tuple[float, float]] = []
    kinds = ["door", "window", "poster", "shelf", "cabinet"]
    pk = [0.18, 0.22, 0.32, 0.16, 0.12] if layout != "wall" else [0.05, 0.1, 0.7, 0.1, 0.05]
    for _ in range({"room": r.i(1, 4), "desk": r.i(0, 3), "wall": r.i(0, 3)}[layout]):
        wall_item(sc, (p0, e1, n1), floor_y, r.pick(kinds, pk), used)
    if layout == "room":
        for _ in range(r.i(0, 3)):
            pt = sc.unproject(r.u(0, w), sc.cy, r.u(1.2, max(1.3, dist - 0.2)))
            pt[1] = floor_y
            object_on(sc, pt, r.pick(["plant", "box", "lamp"]))
    # people -----------------------------------------------------------------------------------------------
    if zh is not None:
        if r.chance(0.4):  # a chair back behind them
            zc = zh + 0.25
            cx_ = r.u(0.1, 0.9) * w
            lay = sc.layer(cx_ - 0.25 * fx / zc, r.u(0.1, 0.5) * h, cx_ + 0.25 * fx / zc, h)
            if lay is not None:
                cv2.rectangle(lay.rgb, (0, 0), (lay.x1, lay.y1), col3(np.full(3, r.u(15, 60))), -1)
                lay.z[:] = F32(zc)
                sc.put(lay)
        info["person"] = (*draw_person(sc, zh), zh)
        if dist - zh < 1.2:  # its soft shadow on a near wall
            sc.add_light(info["person"][0] + r.u(-0.3, 0.3) * w, info["person"][1] + 0.3 * h, 0.25 * w, -r.u(0.05, 0.2))
    if r.chance(0.15 if layout != "wall" else 0.08):
        draw_arm(sc, r.u(0.56, min(1.3, dist - 0.1)))
        info["arm"] = True
    # things on the desk -----------------------------------------------------------------------------------
    if desk is not None:
        desk_y, zfar, xl, xr = desk
        objs = ["monitor", "mug", "bottle", "plant", "lamp", "books", "box", "keyboard", "paper", "notebook", "phone"]
        po = [0.12, 0.14, 0.08, 0.08, 0.06, 0.08, 0.04, 0.12, 0.12, 0.08, 0.08]
        for _ in range(r.i(2, 6) if layout == "desk" else r.i(0, 3)):
            kind = r.pick(objs, po)
            lo = 0.55 if kind != "monitor" else max(0.55, zfar - 0.35)
            if zfar - 0.05 < lo:
                continue
            zz = r.u(lo, zfar - 0.05)
            pt = sc.unproject(r.u(0, w), sc.cy, 1.0)
            pt = pt / max(pt[2], 1e-3) * zz
            if not -xl < pt[0] < xr:
                continue
            pt[1] = desk_y
            if kind in ("keyboard", "paper", "notebook", "phone"):
                flat_on_desk(sc, desk_y, float(pt[0]), float(pt[2]), kind)
            else:
                object_on(sc, pt, kind)
    return info
