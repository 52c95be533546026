"""Renderer: posed hands -> RGB image, aligned depth (uint16 millimetres) and a hand mask.

Hands are built from ray-cast solids (capsules for phalanges, knuckles, thenar pad, wrist and a
forearm stub; an ellipsoid for the palm) drawn with a z-buffer: each surface hit gives depth and a
normal for Lambert + specular shading in a skin tone. Backgrounds (mostly muted indoor
scenes: a wall, furniture, doors and windows; some saturated clutter), lighting, blur, image noise and depth
sensor noise/holes are randomised from the caller's generator, so a seed gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamhand.geometry import Intrinsics
from streamhand.skeleton import FINGER_CHAINS, MIDDLE_MCP, WRIST
from streamhand.synth.hand import SEGMENT_RADII

SKIN_TONES = np.array(
    [[255, 224, 196], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [92, 59, 37],
     [232, 190, 172], [250, 210, 180], [210, 160, 130]], dtype=np.float32
)  # fmt: skip


#: bump when rendered images change, so caches built from renders (MediaPipe labels) are rebuilt
RENDER_VERSION = 3  # 3: anthropometric bone lengths, thumb opposition, more gestures
# An adult hand at scale 1: 10 cm across the palm at its widest (thenar to hypothenar), 7.8 cm across the
# knuckles, a 6 cm wrist. Narrower palms and wrists made MediaPipe miss backs of hands and fists.
PALM_WIDTH_PAD = 0.022  # metres added to each side of the palm beyond the index/pinky MCPs
PALM_HALF_THICKNESS = 0.0155
FOREARM_RADIUS = 0.030


@dataclass
class RenderConfig:
    background: str = "random"  # random (room or clutter) | room | clutter | plain | none (black)
    blur: bool = True
    image_noise: bool = True
    depth_noise: bool = True
    depth_holes: bool = True
    forearm: bool = True
    forearm_length_m: float = 0.25
    background_depth_m: tuple[float, float] = (1.0, 3.0)
    #: this image's pixels per pixel of the sensor whose holes are simulated (a crop drawn directly at low
    #: resolution: crop side / box side), so holes and edge dropouts keep their size on the hand
    hole_scale: float = 1.0


@dataclass
class Rendered:
    rgb: np.ndarray  # (H, W, 3) uint8, RGB order
    depth: np.ndarray  # (H, W) uint16 millimetres, 0 = no data
    mask: np.ndarray  # (H, W) uint8: 0 background, i+1 for hand i


SKIN, NAIL = 1, 2  # materials


def hand_primitives(
    joints: np.ndarray, scale: float = 1.0, forearm: bool = True, forearm_length: float = 0.075, left: bool = False
) -> tuple[list[tuple], np.ndarray]:
    """Shapes approximating a hand's surface (camera frame, metres) and the palm's outward normal.

    ``("capsule", material, a, b, r)`` for phalanges, knuckles, thenar pad and forearm;
    ``("ellipsoid", material, c, axes, radii)`` for the palm and the nails (axes: rotation columns).
    """
    j = np.asarray(joints, dtype=np.float64)
    w, idx, mid, pky = j[WRIST], j[5], j[MIDDLE_MCP], j[17]
    mcp_mean = (j[5] + j[9] + j[13] + j[17]) / 4
    y = mcp_mean - w
    ly = np.linalg.norm(y)
    y = y / max(ly, 1e-6)
    x = idx - pky
    x = x - np.dot(x, y) * y
    lx = np.linalg.norm(x)
    x = x / max(lx, 1e-6)
    z = np.cross(x, y)
    sgn = -1.0 if left else 1.0
    palm_normal = sgn * z
    prims: list[tuple] = []
    for f, chain in enumerate(FINGER_CHAINS):
        radii = SEGMENT_RADII[f] * scale
        for k in range(3):
            a, b = j[chain[k]], j[chain[k + 1]]
            r = radii[k]
            if k == 2:  # the surface ends at the fingertip joint
                d = b - a
                length = max(np.linalg.norm(d), 1e-6)
                b = a + d * max(0.35, 1 - r / length)
                u = d / length
                lat = x - np.dot(x, u) * u
                lat = lat / max(np.linalg.norm(lat), 1e-6)
                dorsal = sgn * np.cross(u, lat)
                c = a + 0.62 * d + dorsal * 0.78 * r
                axes = np.stack([lat, u, dorsal], 1)
                prims.append(("ellipsoid", NAIL, c, axes, np.array([0.62 * r, 0.3 * length, 0.3 * r])))
            prims.append(("capsule", SKIN, a, b, r))
    centre = w + 0.55 * (mcp_mean - w)
    prims.append(("ellipsoid", SKIN, centre, np.stack([x, y, z], 1),
                  np.array([0.5 * lx + PALM_WIDTH_PAD * scale, 0.52 * ly, PALM_HALF_THICKNESS * scale])))  # fmt: skip
    for a, b in ((5, 9), (9, 13), (13, 17)):
        prims.append(("capsule", SKIN, j[a], j[b], 0.0105 * scale))
    across = idx - pky
    for t, m in zip((0.0, 0.33, 0.67, 1.0), (5, 9, 13, 17)):  # metacarpals: a boxier palm
        base = w + (0.3 - 0.6 * t) * across
        prims.append(("capsule", SKIN, base, j[m] - 0.25 * (j[m] - base), PALM_HALF_THICKNESS * scale * 0.85))
    prims.append(("capsule", SKIN, j[1], 0.5 * (j[2] + j[5]), 0.0125 * scale))  # thenar pad
    prims.append(("capsule", SKIN, w + 0.012 * scale * x, j[1], 0.013 * scale))
    if forearm:
        d = w - mid
        d = d / max(np.linalg.norm(d), 1e-6)
        prims.append(("capsule", SKIN, w + 0.01 * scale * d, w + forearm_length * scale * d, FOREARM_RADIUS * scale))
    return prims, palm_normal


def _bbox(points: np.ndarray, r: float, k: Intrinsics) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, x1, y0, y1) covering spheres of radius ``r`` around ``points`` (N, 3)."""
    z = points[:, 2]
    if np.any(z <= r + 1e-3):
        return None
    u = k.fx * points[:, 0] / z + k.cx
    v = k.fy * points[:, 1] / z + k.cy
    rp = k.fx * r / (z - r) * 1.1 + 1
    x0, x1 = max(int(np.min(u - rp)), 0), min(int(np.max(u + rp)) + 2, k.width)
    y0, y1 = max(int(np.min(v - rp)), 0), min(int(np.max(v + rp)) + 2, k.height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, x1, y0, y1


def _hit_capsule(rd: np.ndarray, a: np.ndarray, b: np.ndarray, r: float):
    """Ray (from the origin, unit directions rd (..., 3)) against a capsule: (t, normal), t=inf on miss."""
    ba = b - a
    oa = -a
    baba = ba @ ba
    bard = rd @ ba
    baoa = oa @ ba
    rdoa = rd @ oa
    oaoa = oa @ oa
    aa = baba - bard * bard
    bb = baba * rdoa - baoa * bard
    cc = baba * oaoa - baoa * baoa - r * r * baba
    h = bb * bb - aa * cc
    t = np.full(rd.shape[:-1], np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        tb = (-bb - np.sqrt(np.maximum(h, 0))) / aa
        yb = baoa + tb * bard
        body = (h >= 0) & (yb > 0) & (yb < baba)
        t = np.where(body, tb, t)
        # caps
        for centre in (a, b):
            oc = -centre
            b2 = rd @ oc
            c2 = oc @ oc - r * r
            h2 = b2 * b2 - c2
            tc = -b2 - np.sqrt(np.maximum(h2, 0))
            t = np.where((h2 >= 0) & (tc < t) & (tc > 0), tc, t)
    p = rd * np.where(np.isfinite(t), t, 0)[..., None]
    pa = p - a
    hh = np.clip((pa @ ba) / baba, 0, 1)
    n = (pa - hh[..., None] * ba) / r
    return t, n


def _hit_ellipsoid(rd: np.ndarray, c: np.ndarray, axes: np.ndarray, radii: np.ndarray):
    """Ray against an ellipsoid (centre c, rotation ``axes`` with the semi-axes as columns)."""
    to_local = axes.T / radii[:, None]
    o = to_local @ (-c)
    d = rd @ to_local.T
    aa = np.sum(d * d, -1)
    bb = d @ o
    cc = o @ o - 1.0
    h = bb * bb - aa * cc
    with np.errstate(invalid="ignore"):
        t = np.where(h >= 0, (-bb - np.sqrt(np.maximum(h, 0))) / aa, np.inf)
    t = np.where(t > 0, t, np.inf)
    pl = o + d * np.where(np.isfinite(t), t, 0)[..., None]
    n = (pl / radii) @ axes.T
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    return t, n


def muted_colors(rng: np.random.Generator, n: int, max_saturation: float = 0.35) -> np.ndarray:
    """``n`` indoor-looking RGB colours (float32 0-255): any hue, low saturation, mid to high value."""
    hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(0.02, max_saturation, n) * 255,
                    rng.uniform(0.25, 0.95, n) * 255], 1)  # fmt: skip
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32)


def room_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A muted indoor scene: a lit wall with a soft gradient, furniture/doors/windows as rectangles,
    faint texture (float32 RGB 0-255)."""
    c = muted_colors(rng, 8)
    gy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    img = (c[0] * (1 + rng.uniform(-0.25, 0.25) * gx) * (1 - rng.uniform(0, 0.2) * gy)).astype(np.float32)
    for i in range(int(rng.integers(1, 7))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w)), y0 + int(rng.integers(h // 10, h))
        cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(v) for v in c[1 + i]), -1)
    small = rng.uniform(-1, 1, (max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(2, 12)
    return np.clip(img, 0, 255)


def background(rng: np.random.Generator, h: int, w: int, kind: str = "random") -> np.ndarray:
    """A random background (float32 RGB 0-255): ``random`` is a muted room three times in four, else
    saturated clutter (gradient, noise texture, shapes); or always ``room``, ``clutter``, ``plain``,
    ``none`` (black)."""
    if kind == "none":
        return np.zeros((h, w, 3), np.float32)
    if kind == "room" or (kind == "random" and rng.random() < 0.75):
        return room_background(rng, h, w)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == "plain":
        return np.broadcast_to(c0.astype(np.float32), (h, w, 3)).copy()
    g = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = (c0 * (1 - g) + c1 * g).astype(np.float32) * np.ones((1, w, 1), np.float32)
    small = rng.uniform(-1, 1, (max(2, h // 32), max(2, w // 32), 3)).astype(np.float32)
    img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(10, 45)
    for _ in range(int(rng.integers(0, 6))):
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        else:
            ax = (int(rng.integers(5, max(6, w // 4))), int(rng.integers(5, max(6, h // 4))))
            cv2.ellipse(img, (x0, y0), ax, float(rng.uniform(0, 180)), 0, 360, color, -1)
    return np.clip(img, 0, 255)


def render(
    rng: np.random.Generator,
    hands: list[np.ndarray],
    k: Intrinsics,
    scales: list[float] | None = None,
    cfg: RenderConfig | None = None,
    skin: list[np.ndarray] | None = None,
    left: list[bool] | None = None,
    backdrop: np.ndarray | None = None,
) -> Rendered:
    """Render posed hands (each (21, 3), camera frame, metres) seen through intrinsics ``k``.

    ``backdrop`` (H, W, 3) replaces the random background (a fixed scene for animated clips).
    """
    cfg = cfg or RenderConfig()
    h, w = k.height, k.width
    scales = scales or [1.0] * len(hands)
    zbuf = np.full((h, w), np.inf, np.float32)
    normal = np.zeros((h, w, 3), np.float32)
    owner = np.zeros((h, w), np.uint8)
    xs = ((np.arange(w) - k.cx) / k.fx).astype(np.float32)
    ys = ((np.arange(h) - k.cy) / k.fy).astype(np.float32)
    material = np.zeros((h, w), np.uint8)
    palm_side = np.zeros((h, w), np.float32)
    lefts = left or [False] * len(hands)
    for i, (joints, s) in enumerate(zip(hands, scales)):
        prims, palm_normal = hand_primitives(joints, s, cfg.forearm, cfg.forearm_length_m, lefts[i])
        for prim in prims:
            if prim[0] == "capsule":
                box = _bbox(np.stack([prim[2], prim[3]]), prim[4], k)
            else:
                box = _bbox(prim[2][None], float(prim[4].max()), k)
            if box is None:
                continue
            x0, x1, y0, y1 = box
            rd = np.empty((y1 - y0, x1 - x0, 3), np.float32)
            rd[..., 0] = xs[None, x0:x1]
            rd[..., 1] = ys[y0:y1, None]
            rd[..., 2] = 1.0
            norm = np.linalg.norm(rd, axis=-1)
            rd /= norm[..., None]
            if prim[0] == "capsule":
                t, n = _hit_capsule(rd, *prim[2:])
            else:
                t, n = _hit_ellipsoid(rd, *prim[2:])
            z = (t / norm).astype(np.float32)  # depth along the optical axis
            zb = zbuf[y0:y1, x0:x1]
            win = z < zb
            if not win.any():
                continue
            zb[win] = z[win]
            normal[y0:y1, x0:x1][win] = n[win]
            owner[y0:y1, x0:x1][win] = i + 1
            material[y0:y1, x0:x1][win] = prim[1]
            palm_side[y0:y1, x0:x1][win] = (n[win] @ palm_normal).astype(np.float32)

    fg = owner > 0
    img = background(rng, h, w, cfg.background) if backdrop is None else backdrop.astype(np.float32)
    if fg.any():
        light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.8, 0.2), -1.0], np.float32)
        light /= np.linalg.norm(light)
        amb, dif, spec = rng.uniform(0.45, 0.6), rng.uniform(0.35, 0.55), rng.uniform(0.0, 0.12)
        nf = normal[fg]  # shade only the hand's pixels
        lam = np.clip((nf @ light + 0.3) / 1.3, 0, 1)  # wrap lighting: soft, skin-like falloff
        rim = 0.75 + 0.25 * np.abs(nf[:, 2])  # darker toward silhouettes
        view_h = light + np.array([0, 0, -1.0], np.float32)
        view_h /= np.linalg.norm(view_h)
        hl = np.clip(nf @ view_h, 0, 1) ** 24
        tones = skin or [SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.85, 1.1) for _ in hands]
        base = np.asarray(tones, np.float32)[owner[fg] - 1]
        # palms are lighter than the backs of hands; nails are pale and pinkish
        base *= (1.0 + 0.12 * np.clip(palm_side[fg], 0, 1))[:, None]
        nail = material[fg] == NAIL
        base[nail] = 0.55 * base[nail] + np.array([120, 100, 100], np.float32)
        img[fg] = base * ((amb + dif * lam) * rim)[:, None] + 255 * spec * hl[:, None]
    if cfg.blur:
        sigma = rng.uniform(0.3, 1.2)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if cfg.image_noise:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(1, 5))
    rgb = np.clip(img, 0, 255).astype(np.uint8)

    depth_m = np.where(fg, zbuf, np.float32(rng.uniform(*cfg.background_depth_m)))
    if cfg.depth_noise:
        depth_m = depth_m + rng.standard_normal(depth_m.shape, dtype=np.float32) * np.float32(0.0012) * depth_m**2
    depth = np.clip(depth_m * 1000.0, 0, 65535).astype(np.uint16)
    if cfg.depth_holes:
        _punch_holes(rng, depth, fg, cfg.hole_scale)
    return Rendered(rgb, depth, owner)


def _punch_holes(rng: np.random.Generator, depth: np.ndarray, fg: np.ndarray, scale: float = 1.0) -> None:
    """Zero out sensor-like holes: a few blobs and pixels along depth edges (sized in sensor pixels: ``scale``
    of this image's pixels each)."""
    h, w = depth.shape
    holes = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(0, 4))):
        r = int(rng.integers(2, 8))
        if scale != 1.0:  # at a lower resolution a hole covers the same part of the scene
            r = int(round(r * scale))
            if r < 1:
                continue
        cv2.circle(holes, (int(rng.integers(0, w)), int(rng.integers(0, h))), r, 1, -1)
    edge = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    holes[edge & (rng.random((h, w), dtype=np.float32) < 0.5 * min(scale, 1.0))] = 1
    depth[holes > 0] = 0
