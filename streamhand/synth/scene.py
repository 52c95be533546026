"""Procedural indoor scenes around a synthetic hand: what a webcam or depth camera sees behind and in front of it.

:func:`scene_background` draws a room as float32 RGB (0-255) with an aligned depth map in metres: walls (paint,
wallpaper, wood panelling, tiles, brick, plaster) lit by soft gradients and lamps, a corner now and then, floor,
ceiling, a desk plane in perspective, doors, bright overexposed windows (blinds, curtains), shelves with books,
cabinets, posters, monitors and desk clutter (keyboard, paper, mugs, bottles, plants, lamps, boxes), and now and
then people: a head and shoulders (skin tones from very light to very dark, hair, eyes, brows, nose, mouth, beard,
glasses, clothing) at 0.5-1.2 m, or bare and sleeved arms crossing the view. Skin-coloured things that are not
hands (faces, necks, arms, cardboard, pale wood, peach walls) are there on purpose. :func:`add_occluder` puts an
object (pen, mug, phone, ball, paper or cloth) in front of part of a rendered hand and clears the hand's mask under
it.

Geometry is a pinhole camera (OpenCV frame: x right, y down, z forward; principal point at the image centre,
square pixels, focal length ``fx``) pitched down by a random angle. Planar surfaces are drawn through their
homographies (textures warped at about the screen's resolution) with per-pixel plane depth; people, arms and
objects are camera-facing layers at their own depth; everything is z-tested, so the depth map matches what is
drawn (a face where the face is, the desk's depth by row). Everything comes from the caller's generator: a seed
gives the same scene.

Speed on one core (``cv2.setNumThreads(1)``, numpy 1.26, OpenCV 4.11; process CPU time, mean over 300 and 120
scenes of all layouts): about 165-175 backgrounds/s at 256x256 (fx 300) and 50-55/s at 640x480 (fx 600).
:func:`add_occluder` takes about 1.5 ms for a 64x100-pixel hand box and 7 ms for a 160x190 one.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

F32 = np.float32

#: skin tones (RGB 0-255) from very light to very dark, for people and arms in the scene
SKIN_TONES = np.array(
    [[255, 226, 210], [246, 210, 186], [238, 198, 168], [228, 184, 150], [222, 170, 130], [205, 150, 110],
     [196, 140, 100], [178, 128, 92], [160, 110, 75], [140, 92, 62], [118, 76, 52], [96, 62, 44],
     [78, 52, 38], [62, 42, 32], [232, 190, 172], [210, 160, 130]], dtype=F32
)  # fmt: skip
HAIR_COLOURS = np.array(
    [[18, 14, 12], [30, 22, 18], [52, 36, 26], [80, 55, 35], [120, 85, 52], [165, 125, 75], [205, 175, 120],
     [125, 55, 28], [150, 150, 148], [215, 212, 205]], dtype=F32
)  # fmt: skip
WOOD_COLOURS = np.array(
    [[[120, 80, 45], [190, 140, 90]], [[70, 42, 25], [130, 85, 50]], [[160, 120, 80], [225, 190, 140]],
     [[90, 55, 35], [160, 105, 65]], [[40, 28, 20], [85, 60, 40]], [[180, 150, 115], [235, 215, 180]]], dtype=F32
)  # fmt: skip

# ------------------------------------------------------------------------------------------------ helpers
# Whole-image work goes through OpenCV: on (H, W, 3) arrays numpy's per-channel broadcasting and masked copies
# are an order of magnitude slower than cv2.copyTo / cv2.multiply.


class _R:
    """Scalar draws from a numpy generator, served from a block of uniforms (one Generator call per 512)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._buf: list[float] = []

    def random(self) -> float:
        if not self._buf:
            self._buf = self.rng.random(512).tolist()
        return self._buf.pop()

    def u(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def i(self, a: int, b: int) -> int:  # a <= i < b
        return min(b - 1, a + int((b - a) * self.random()))

    def chance(self, p: float) -> bool:
        return self.random() < p

    def pick(self, items, p=None):
        if p is None:
            return items[self.i(0, len(items))]
        x = self.random() * sum(p)
        for item, q in zip(items, p):
            x -= q
            if x < 0:
                return item
        return items[-1]

    def hsv(self, sat=(0.0, 0.35), val=(0.3, 0.95), hue=(0.0, 180.0)) -> np.ndarray:
        """An RGB colour (float32 0-255) from hue (OpenCV's 0-180), saturation and value ranges."""
        h = (self.u(*hue) % 180) / 180
        return np.array(colorsys.hsv_to_rgb(h, self.u(*sat), self.u(*val)), F32) * F32(255)


def _col(c) -> tuple[float, float, float]:
    return (float(c[0]), float(c[1]), float(c[2]))


def _full(h: int, w: int, colour) -> np.ndarray:
    img = np.empty((h, w, 3), F32)
    cv2.rectangle(img, (0, 0), (w, h), _col(colour), -1)
    return img


def _copy(dst: np.ndarray, src: np.ndarray, m: np.ndarray) -> None:
    """``dst[m] = src[m]`` in place (``m`` bool, C-contiguous)."""
    cv2.copyTo(src, np.ascontiguousarray(m).view(np.uint8), dst)


def _gray3(s: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(s, F32), cv2.COLOR_GRAY2RGB)


def _shaded(colour, s: np.ndarray) -> np.ndarray:
    """A colour times a per-pixel brightness ``s`` (H, W): (H, W, 3)."""
    return cv2.merge([s * F32(colour[0]), s * F32(colour[1]), s * F32(colour[2])])


_GRAIN: np.ndarray | None = None
_GRAIN_SHAPE = (512, 704)


def _grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fine surface grain, a brightness factor 1 +- 1.2 % (std): a window of a fixed field at a random offset."""
    global _GRAIN
    if _GRAIN is None:
        g = np.random.default_rng(20240611).standard_normal(_GRAIN_SHAPE).astype(F32)
        g = cv2.GaussianBlur(g, (0, 0), 0.7, borderType=cv2.BORDER_REFLECT)
        _GRAIN = (1 + 0.012 * g / g.std()).astype(F32)
    gh, gw = _GRAIN.shape
    bank = _GRAIN if (h <= gh and w <= gw) else np.tile(_GRAIN, (-(-h // gh), -(-w // gw)))
    oy = int(rng.integers(0, bank.shape[0] - h + 1))
    ox = int(rng.integers(0, bank.shape[1] - w + 1))
    return bank[oy : oy + h, ox : ox + w]


# ----------------------------------------------------------------------------------------------- textures


def _tile_noise(rng: np.random.Generator, cells: tuple[int, int], th: int, tw: int) -> np.ndarray:
    """Smooth noise in about [-1, 1] that tiles seamlessly: ``cells`` random values stretched over th x tw."""
    g = rng.uniform(-1, 1, cells).astype(F32)
    sy, sx = cells[0] / th, cells[1] / tw
    m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
    return cv2.warpAffine(g, m, (tw, th), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP)


_WOOD: np.ndarray | None = None


def _wood_bank() -> np.ndarray:
    """A fixed set of single-board grain patterns (16, 128, 32) in [0, 1], grain down the columns, tileable."""
    global _WOOD
    if _WOOD is None:
        rng = np.random.default_rng(7)
        x = np.arange(32, dtype=F32)[None, :] / F32(32)
        maps = []
        for k in range(16):
            warp = _tile_noise(rng, (4, 2), 128, 32) * F32(0.02 + 0.005 * k)
            streak = _tile_noise(rng, (3, 16), 128, 32)
            g = F32(0.5) + F32(0.5) * np.sin(F32(2 * np.pi * (2 + k % 6)) * (x + warp))
            maps.append(np.clip(F32(0.45) * g * g + F32(0.25) * streak + F32(0.35), 0, 1))
        _WOOD = np.stack(maps).astype(F32)
    return _WOOD


def _tex_wood(r: _R, th: int, tw: int, boards: int, colours: np.ndarray | None = None) -> np.ndarray:
    """Wood with the grain running down the columns, ``boards`` planks across the width."""
    dark, light = colours if colours is not None else WOOD_COLOURS[r.i(0, len(WOOD_COLOURS))]
    bank = _wood_bank()
    b = max(boards, 1)
    planks = []
    for _ in range(b):
        m = bank[r.i(0, len(bank))]
        m = m[::-1] if r.chance(0.5) else m
        planks.append(np.roll(m, r.i(0, 128), axis=0) * F32(1 + r.u(-0.12, 0.12) if b > 1 else 1))
    t = cv2.resize(np.concatenate(planks, 1), (tw, th), interpolation=cv2.INTER_LINEAR)
    if b > 1:
        bw = tw / b
        for k in range(b):
            t[:, int(k * bw)] *= F32(0.5)
            t[r.i(0, th), int(k * bw) : int((k + 1) * bw)] *= F32(0.6)  # an end joint somewhere along each board
    return _shaded(light - dark, t) + _full(th, tw, dark)


def _tex_tiles(r: _R, rows: int, cols: int, ph: int, pw: int, base, grout, offset: bool, jitter: float):
    """A grid of tiles or bricks (``ph`` x ``pw`` texels each) with grout lines; alternate rows offset by half."""
    tex = _full(rows * ph, cols * pw, grout)
    g = max(1, ph // 10)
    for row in range(rows):
        sh = pw // 2 if (offset and row % 2) else 0
        for c in range(-1, cols + 1):
            x = c * pw + sh
            colour = _col(np.asarray(base, F32) * F32(1 + r.u(-jitter, jitter)))
            cv2.rectangle(tex, (x + g, row * ph + g), (x + pw - 1, row * ph + ph - 1), colour, -1)
    return tex


def _wall_texture(r: _R, base: np.ndarray) -> tuple[np.ndarray | None, tuple[float, float]]:
    """A wall covering: ``(None, _)`` for plain paint, else a tileable texture and its size in metres."""
    x = r.random()
    if x < 0.55:
        return None, (1.0, 1.0)
    if x < 0.68:  # striped wallpaper
        other = base * F32(r.u(0.75, 0.95)) if r.chance(0.6) else r.hsv((0.05, 0.4))
        tex = _full(4, 48, base)
        xx = 0
        for k in range(r.i(2, 5)):
            wd = r.i(3, 16)
            if k % 2:
                cv2.rectangle(tex, (xx, 0), (xx + wd - 1, 4), _col(other), -1)
            xx += wd + r.i(3, 16)
        return tex, (r.u(0.08, 0.5), 1.0)
    if x < 0.76:  # patterned wallpaper: a motif on a grid
        tex = _full(32, 32, base)
        c = _col(base * F32(r.u(0.7, 0.92)) if r.chance(0.6) else r.hsv((0.1, 0.5)))
        kind = r.i(0, 3)
        rad = r.i(3, 7)
        for cx, cy in ((0, 0), (32, 0), (0, 32), (32, 32), (16, 16)):
            if kind == 0:
                cv2.circle(tex, (cx, cy), rad, c, -1)
            elif kind == 1:
                pts = np.array([[cx, cy - 7], [cx + 5, cy], [cx, cy + 7], [cx - 5, cy]], np.int32)
                cv2.fillConvexPoly(tex, pts, c)
            else:
                cv2.line(tex, (cx - 5, cy), (cx + 5, cy), c, 2)
                cv2.line(tex, (cx, cy - 5), (cx, cy + 5), c, 2)
        s = r.u(0.06, 0.2)
        return tex, (s, s)
    if x < 0.84:  # wood panelling
        boards = r.i(3, 7)
        return _tex_wood(r, 96, 16 * boards, boards), (boards * r.u(0.09, 0.2), r.u(1.5, 3.0))
    if x < 0.91:  # tiles
        n = r.i(2, 5)
        s = r.u(0.1, 0.3)
        return _tex_tiles(r, n, n, 16, 16, base, base * F32(r.u(0.6, 1.1)), False, 0.04), (n * s, n * s)
    if x < 0.96:  # brick
        brick = r.hsv((0.3, 0.65), (0.35, 0.7), (2, 14)) if r.chance(0.7) else base
        mortar = np.full(3, r.u(120, 210), F32)
        return _tex_tiles(r, 6, 3, 8, 24, brick, mortar, True, 0.12), (3 * 0.225, 6 * 0.075)
    noise = F32(1) + F32(0.07) * _tile_noise(r.rng, (4, 4), 48, 48) + F32(0.04) * _tile_noise(r.rng, (16, 16), 48, 48)
    s = r.u(0.8, 2.0)
    return _shaded(base, noise), (s, s)  # plaster / concrete


def _floor_texture(r: _R) -> tuple[np.ndarray, tuple[float, float]]:
    x = r.random()
    if x < 0.45:  # planks along z
        boards = r.i(3, 6)
        return _tex_wood(r, 128, 16 * boards, boards), (boards * r.u(0.1, 0.2), r.u(1.2, 2.5))
    if x < 0.65:
        n = r.i(2, 4)
        base = r.hsv((0.0, 0.25), (0.35, 0.9))
        s = r.u(0.25, 0.6)
        return _tex_tiles(r, n, n, 16, 16, base, base * F32(0.7), False, 0.06), (n * s, n * s)
    base = r.hsv((0.0, 0.45), (0.15, 0.7))  # carpet / concrete
    noise = F32(1) + F32(0.08) * _tile_noise(r.rng, (6, 6), 48, 48) + F32(0.1) * _tile_noise(r.rng, (48, 48), 48, 48)
    s = r.u(0.3, 1.0)
    return _shaded(base, noise), (s, s)


def _desk_texture(r: _R) -> tuple[np.ndarray, tuple[float, float]]:
    if r.chance(0.55):  # wood, grain along x
        tex = np.ascontiguousarray(_tex_wood(r, 128, 48, 1).transpose(1, 0, 2))
        return tex, (r.u(0.8, 1.6), r.u(0.3, 0.6))
    v = r.pick([0.12, 0.25, 0.55, 0.75, 0.92])
    base = r.hsv((0.0, 0.12), (v - 0.08, v + 0.05))
    return _shaded(base, F32(1) + F32(0.03) * _tile_noise(r.rng, (4, 4), 32, 32)), (1.0, 1.0)


_TEXT: np.ndarray | None = None


def _text_bank() -> np.ndarray:
    """A fixed page of word-like dashes, rows 8 texels apart (256, 512), coverage 0-1."""
    global _TEXT
    if _TEXT is None:
        rng = np.random.default_rng(11)
        page = np.zeros((256, 512), np.uint8)
        for y in range(5, 256, 8):
            if rng.random() < 0.1:  # a paragraph break
                continue
            x, end = int(rng.integers(0, 8)), 512 - int(rng.integers(0, 200))
            while x < end:
                wl = int(rng.integers(4, 30))
                cv2.line(page, (x, y), (min(x + wl, end), y), 255, 3)
                x += wl + 6
        _TEXT = page.astype(F32) / F32(255)
    return _TEXT


def _text_lines(img: np.ndarray, r: _R, x0: int, y0: int, x1: int, y1: int, colour, pitch: int) -> None:
    """Rows of word-like dashes ``pitch`` pixels apart in ``colour`` over ``img[y0:y1, x0:x1]``, like text."""
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    bw, bh = x1 - x0, y1 - y0
    if bw < 4 or bh < pitch or pitch < 1:
        return
    bank = _text_bank()
    sh, sw = min(256, max(1, round(bh * 8 / pitch))), min(512, max(1, round(bw * 8 / pitch)))
    oy, ox = r.i(0, 257 - sh), r.i(0, 513 - sw)
    a = _gray3(cv2.resize(bank[oy : oy + sh, ox : ox + sw], (bw, bh), interpolation=cv2.INTER_AREA))
    roi = img[y0:y1, x0:x1]
    roi -= cv2.multiply(a, roi - _full(bh, bw, colour))


# -------------------------------------------------------------------------------------------------- scene


class _Layer:
    """A rectangle of the image drawn privately (colour and depth), then z-tested into the scene."""

    def __init__(self, x0: int, y0: int, x1: int, y1: int):
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.rgb = np.zeros((y1 - y0, x1 - x0, 3), F32)
        self.z = np.full((y1 - y0, x1 - x0), np.inf, F32)

    def p(self, x: float, y: float) -> tuple[int, int]:
        return (round(x - self.x0), round(y - self.y0))

    def ellipse(self, x, y, ax, ay, colour, z, angle=0.0, a0=0.0, a1=360.0, thickness=-1) -> None:
        axes = (max(0, round(ax)), max(0, round(ay)))
        cv2.ellipse(self.rgb, self.p(x, y), axes, angle, a0, a1, _col(colour), thickness)
        if z is not None:
            cv2.ellipse(self.z, self.p(x, y), axes, angle, a0, a1, float(z), thickness)

    def poly(self, pts, colour, z) -> None:
        q = np.round(np.asarray(pts, np.float64) - [self.x0, self.y0]).astype(np.int32)
        cv2.fillPoly(self.rgb, [q], _col(colour))
        if z is not None:
            cv2.fillPoly(self.z, [q], float(z))

    def rect(self, x0, y0, x1, y1, colour, z) -> None:
        self.poly([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], colour, z)

    def line(self, a, b, colour, z, thickness: float) -> None:
        t = max(1, round(thickness))
        cv2.line(self.rgb, self.p(*a), self.p(*b), _col(colour), t)
        if z is not None:
            cv2.line(self.z, self.p(*a), self.p(*b), float(z), t)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates of the layer's columns (1, W) and rows (H, 1)."""
        xs = np.arange(self.x0, self.x1, dtype=F32)[None, :]
        ys = np.arange(self.y0, self.y1, dtype=F32)[:, None]
        return xs, ys


class _Scene:
    """A camera, a colour and a depth buffer, and drawing of planes and layers with a z-test."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, fx: float, pitch: float = 0.0):
        self.rng, self.r = rng, _R(rng)
        self.h, self.w, self.fx = h, w, float(fx)
        self.pitch = pitch
        self.cx, self.cy = (w - 1) / 2, (h - 1) / 2
        c, s = math.cos(pitch), math.sin(pitch)
        self.R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # world (y down, level) -> camera (pitched down)
        self.K = np.array([[fx, 0, self.cx], [0, fx, self.cy], [0, 0, 1.0]])
        self.KR = self.K @ self.R
        self.rgb = np.zeros((h, w, 3), F32)
        self.iz = np.full((h, w), F32(0.1), F32)  # 1 / depth: the z-buffer (nearer = larger); 0.1 = 10 m, empty
        self.blank = True
        self.u = np.arange(w, dtype=F32)
        self.v = np.arange(h, dtype=F32)
        self.emissive: list[tuple[int, int, int, int, np.ndarray, float]] = []
        gh = 12
        self.light = np.ones((gh, max(2, round(gh * w / h))), F32)  # low-resolution illumination

    # geometry ---------------------------------------------------------------------------------------------
    def ray(self, u: float, v: float) -> np.ndarray:
        """World direction of the ray through pixel (u, v), scaled to camera z = 1."""
        return self.R.T @ np.array([(u - self.cx) / self.fx, (v - self.cy) / self.fx, 1.0])

    def unproject(self, u: float, v: float, z: float) -> np.ndarray:
        return self.ray(u, v) * z

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(pts, np.float64) @ self.KR.T
        return q[:, :2] / q[:, 2:3], q[:, 2]

    def cam_z(self, p: np.ndarray) -> float:
        return float(self.R[2] @ p)

    def ray_plane(self, u: float, v: float, p0: np.ndarray, n: np.ndarray) -> np.ndarray | None:
        d = self.ray(u, v)
        den = float(n @ d)
        if abs(den) < 1e-9:
            return None
        t = float(n @ p0) / den
        return d * t if t > 0 else None

    def inv_depth_coeffs(self, p0, n) -> tuple[float, float, float] | None:
        """1/z = a u + b v + c for the plane through world point ``p0`` with world normal ``n``."""
        nc, pc = self.R @ n, self.R @ p0
        d = float(nc @ pc)
        if abs(d) < 1e-6:
            return None
        a, b = nc[0] / (self.fx * d), nc[1] / (self.fx * d)
        return a, b, (nc[2] - nc[0] * self.cx / self.fx - nc[1] * self.cy / self.fx) / d

    # drawing ----------------------------------------------------------------------------------------------
    def plane(self, p0, e1, e2, colour=None, tex=None, tex_m=(1.0, 1.0), extent=None, zbias=0.0,
              res=0.8, emissive=0.0) -> None:  # fmt: skip
        """A plane through world point ``p0`` spanned by unit vectors ``e1``, ``e2``: infinite when ``extent``
        is None, else the rectangle ``(s0, s1, t0, t1)`` metres along them. Filled with ``colour`` or ``tex``
        (``tex_m``: the texture's size in metres, tiled; a finite plane's texture spans its extent; ``tex`` may be
        a function returning ``(tex, tex_m)``, called only if the plane shows), warped at
        at most ``res`` times the screen resolution. ``zbias`` pulls it toward the camera for the z-test only
        (decals on a wall); ``emissive`` > 0 makes it a light source (not shaded, that bright)."""
        p0, e1, e2 = np.asarray(p0, np.float64), np.asarray(e1, np.float64), np.asarray(e2, np.float64)
        h, w = self.h, self.w
        poly = None
        if extent is None:
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            s0, s1, t0, t1 = extent
            q = (np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]]) @ np.stack([e1, e2]) + p0) @ self.KR.T
            if q[:, 2].min() < 0.05:
                return
            poly = q[:, :2] / q[:, 2:3]
            xs, ys = poly[:, 0].tolist(), poly[:, 1].tolist()
            x0, y0 = max(math.floor(min(xs)), 0), max(math.floor(min(ys)), 0)
            x1, y1 = min(math.ceil(max(xs)) + 1, w), min(math.ceil(max(ys)) + 1, h)
            if x1 - x0 < 1 or y1 - y0 < 1:
                return
        n = np.array([e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]])
        co = self.inv_depth_coeffs(p0, n)
        if co is None:
            return
        a, b, c = co
        if self.blank and poly is None and not zbias:  # the first surface: no z-test against an empty buffer
            iz = np.add((F32(b) * self.v + F32(c))[:, None], F32(a) * self.u[None, :], out=self.iz)
            izroi = iz
            m = iz > F32(0.1)
        else:
            # only rows where the plane may be nearer than what is there (and than 10 m)
            izr = b * self.v[y0:y1] + F32(c + max(a * x0, a * (x1 - 1)))  # each row's largest 1/z
            if zbias:
                izr = izr / np.maximum(F32(1) - F32(zbias) * izr, F32(1e-6))
            rows = np.flatnonzero(izr > self.iz[y0:y1, x0:x1].min(axis=1))
            if rows.size == 0:
                return
            y0, y1 = y0 + int(rows[0]), y0 + int(rows[-1]) + 1
            iz = (F32(b) * self.v[y0:y1, None] + F32(c)) + F32(a) * self.u[None, x0:x1]
            izroi = self.iz[y0:y1, x0:x1]
            m = (iz / np.maximum(F32(1) - F32(zbias) * iz, F32(1e-6)) if zbias else iz) > izroi
        self.blank = False
        if poly is not None:
            pm = np.zeros(m.shape, np.uint8)
            cv2.fillConvexPoly(pm, np.round((poly - [x0, y0]) * 4).astype(np.int32), 1, shift=2)
            m &= pm.view(bool)
        everywhere = bool(m.all())
        if not everywhere and not m.any():
            return
        roi = self.rgb[y0:y1, x0:x1]
        if tex is None:
            if everywhere:
                cv2.rectangle(roi, (0, 0), (x1 - x0, y1 - y0), _col(colour), -1)
            else:
                _copy(roi, _full(y1 - y0, x1 - x0, colour), m)
        else:
            if callable(tex):  # made only now that the plane is known to show
                tex, tex_m = tex()
            area = (x1 - x0) * (y1 - y0)
            cap = 12000 if extent is not None else 40000  # texels warped at most (then resized)
            res = 1.0 if area < 5000 else min(res, math.sqrt(cap / area))  # small: no resampling pass
            col = self._warp(tex, p0, e1, e2, tex_m, extent, x0, y0, x1, y1, res)
            if everywhere:
                roi[...] = col
            else:
                _copy(roi, col, m)
        if izroi is iz:  # written in place (the first surface); where it is beyond 10 m, the buffer's 'empty'
            if not everywhere:
                iz[~m] = F32(0.1)
        elif everywhere:
            izroi[...] = iz
        else:
            _copy(izroi, iz, m)
        if emissive > 0:
            self.emissive.append((x0, y0, x1, y1, np.where(m, iz, F32(np.nan)), emissive))

    def _warp(self, tex, p0, e1, e2, tex_m, extent, x0, y0, x1, y1, res) -> np.ndarray:
        th, tw = tex.shape[:2]
        if extent is None:
            s0, t0, sw, sh, border = 0.0, 0.0, tex_m[0], tex_m[1], cv2.BORDER_WRAP
        else:
            s0, t0 = extent[0], extent[2]
            sw, sh, border = extent[1] - extent[0], extent[3] - extent[2], cv2.BORDER_REPLICATE
        du, dv = e1 * (sw / tw), e2 * (sh / th)
        hmat = self.KR @ np.column_stack([du, dv, p0 + s0 * e1 + t0 * e2 + 0.5 * (du + dv)])  # texel -> pixel
        bw, bh = x1 - x0, y1 - y0
        lw, lh = max(1, round(bw * res)), max(1, round(bh * res))
        sx, sy = lw / bw, lh / bh
        to_low = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5], [0, 0, 1.0]])
        out = cv2.warpPerspective(tex, to_low @ hmat, (lw, lh), flags=cv2.INTER_LINEAR, borderMode=border)
        if (lw, lh) != (bw, bh):
            out = cv2.resize(out, (bw, bh), interpolation=cv2.INTER_LINEAR)
        return out

    def layer(self, x0: float, y0: float, x1: float, y1: float) -> _Layer | None:
        x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
        x1, y1 = min(self.w, math.ceil(x1)), min(self.h, math.ceil(y1))
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return _Layer(x0, y0, x1, y1)

    def put(self, layer: _Layer | None) -> np.ndarray | None:
        """Z-test a layer into the scene; returns where it won."""
        if layer is None:
            return None
        sl = np.s_[layer.y0 : layer.y1, layer.x0 : layer.x1]
        liz = np.reciprocal(layer.z)
        m = liz > self.iz[sl]
        _copy(self.rgb[sl], layer.rgb, m)
        _copy(self.iz[sl], liz, m)
        return m

    def emit(self, layer: _Layer, where: np.ndarray, gain: float) -> None:
        """Make the pixels of ``layer`` at ``where`` (after :meth:`put`) a light source of brightness ``gain``."""
        izs = np.where(where, np.reciprocal(layer.z), F32(np.nan)).astype(F32)
        self.emissive.append((layer.x0, layer.y0, layer.x1, layer.y1, izs, gain))

    def add_light(self, u: float, v: float, sigma_px: float, amount: float) -> None:
        """A soft blob of extra (negative: less) light centred on pixel (u, v)."""
        gh, gw = self.light.shape
        gx = (np.arange(gw, dtype=F32) + 0.5) * F32(self.w / gw) - F32(u)
        gy = (np.arange(gh, dtype=F32) + 0.5) * F32(self.h / gh) - F32(v)
        s2 = F32(2 * max(sigma_px, 1.0) ** 2)
        self.light += F32(amount) * np.exp(-(gy[:, None] ** 2 + gx[None, :] ** 2) / s2)

    def finish(self, grain: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The lit image (float32 RGB 0-255) and depth (metres)."""
        h, w = self.h, self.w
        light = np.maximum(self.light, F32(0.05))
        mid = cv2.resize(light, (max(2, w // 8), max(2, h // 8)), interpolation=cv2.INTER_CUBIC)
        gain = cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR)
        if grain:
            cv2.multiply(gain, _grain(self.rng, h, w), dst=gain)
        for x0, y0, x1, y1, izs, e in self.emissive:  # lamps, windows, screens: their own brightness
            vis = self.iz[y0:y1, x0:x1] == izs
            _copy(gain[y0:y1, x0:x1], np.full(vis.shape, F32(e)), vis)
        out = cv2.multiply(self.rgb, _gray3(gain))
        flat = out.reshape(h, -1)  # one channel wide: OpenCV's scalar ops are fastest there
        cv2.min(flat, 255.0, dst=flat)
        return out, self.depth()

    def depth(self) -> np.ndarray:
        """The depth buffer in metres, within 0.5-4."""
        d = np.reciprocal(self.iz)
        cv2.max(d, 0.5, dst=d)
        cv2.min(d, 4.0, dst=d)
        return d


# ---------------------------------------------------------------------------------------- scene contents

_DOWN = np.array([0.0, 1.0, 0.0])


def _wall_item(sc: _Scene, wall, floor_y: float, kind: str, used: list[tuple[float, float]]) -> None:
    """A door, window, poster, shelf or cabinet on the back wall (``wall`` = point, along, normal)."""
    r = sc.r
    p0, e1, n = wall
    hit = sc.ray_plane(r.u(-0.1, 1.1) * sc.w, sc.cy, p0, n)
    if hit is None:
        return
    s_c = float((hit - p0) @ e1)
    z_wall = max(sc.cam_z(hit), 0.3)
    ppm = min(0.7 * sc.fx / z_wall, 128.0)  # texels per metre, near the screen's resolution

    def free(a: float, b: float) -> bool:
        return all(b < u0 or a > u1 for u0, u1 in used)

    def tex_size(wm: float, hm: float) -> tuple[int, int]:
        f = min(1.0, 256 / max(wm * ppm, hm * ppm, 1))
        return max(4, round(hm * ppm * f)), max(4, round(wm * ppm * f))

    if kind == "door":
        wm, hm = r.u(0.78, 0.92), r.u(1.98, 2.1)
        a, b = s_c - wm / 2, s_c + wm / 2
        if not free(a - 0.1, b + 0.1):
            return
        used.append((a - 0.1, b + 0.1))
        top = floor_y - hm
        casing = r.hsv((0, 0.08), (0.75, 0.97))
        th, tw = tex_size(wm, hm)
        if r.chance(0.12):  # open: a dim room beyond
            tex = _full(th, tw, r.hsv((0, 0.3), (0.08, 0.3)))
            for _ in range(3):
                x = r.i(0, tw)
                cv2.rectangle(tex, (x, r.i(th // 3, th)), (x + tw // 3, th), _col(r.hsv((0, 0.4), (0.05, 0.35))), -1)
        else:
            x = r.random()
            if x < 0.4:
                tex = _tex_wood(r, th, tw, 1)
            else:
                tex = _full(th, tw, casing if x < 0.8 else r.hsv((0.05, 0.5), (0.3, 0.85)))
            npan = r.pick([0, 2, 4, 6])
            if npan:
                cols, rows = (1, 2) if npan == 2 else (2, npan // 2)
                mx, my = tw // 7, th // 14
                pw, ph = (tw - mx * (cols + 1)) // cols, (th - my * (rows + 1)) // rows
                for i in range(cols):
                    for j in range(rows):
                        xa, ya = mx + i * (pw + mx), my + j * (ph + my)
                        cv2.rectangle(tex, (xa, ya), (xa + pw, ya + ph), _col(tex[ya, xa] * 0.8), max(1, tw // 40))
            hx = round(tw * (0.86 if r.chance(0.5) else 0.14))
            cv2.circle(tex, (hx, th // 2), max(1, tw // 22), (r.u(60, 200),) * 3, -1)
        bx, by = max(1, round(0.07 * tw / wm)), max(1, round(0.07 * th / hm))  # the casing around it
        tex = cv2.copyMakeBorder(tex, by, 0, bx, bx, cv2.BORDER_CONSTANT, value=_col(casing))
        sc.plane(p0, e1, _DOWN, tex=tex, extent=(a - 0.07, b + 0.07, top - 0.07, floor_y), zbias=0.02)
    elif kind == "window":
        wm, hm = r.u(0.5, 1.8), r.u(0.8, 1.5)
        a, b = s_c - wm / 2, s_c + wm / 2
        if not free(a - 0.15, b + 0.15):
            return
        used.append((a - 0.15, b + 0.15))
        bottom = floor_y - r.u(0.75, 1.0)
        top = bottom - hm
        th, tw = tex_size(wm, hm)
        sky = np.array([r.u(200, 245), r.u(215, 250), 255], F32)
        tex = _shaded(sky, (F32(0.85) + np.arange(th, dtype=F32)[:, None] * F32(0.2 / th)) * np.ones((1, tw), F32))
        for _ in range(r.i(0, 5)):  # trees and buildings outside, bright
            c = _col(r.hsv((0.1, 0.4), (0.6, 0.9), (30, 110)))
            x, y = r.i(0, tw), r.i(th // 3, th)
            if r.chance(0.5):
                cv2.ellipse(tex, (x, y), (int(tw * r.u(0.1, 0.3)), int(th * r.u(0.1, 0.3))), 0, 0, 360, c, -1)
            else:
                cv2.rectangle(tex, (x, y), (x + int(tw * r.u(0.1, 0.4)), th), c, -1)
        frame = r.hsv((0, 0.1), (0.75, 0.97)) if r.chance(0.7) else r.hsv((0, 0.3), (0.1, 0.5))
        bar = max(1, round(0.03 * ppm))
        if r.chance(0.7):
            cv2.line(tex, (tw // 2, 0), (tw // 2, th), _col(frame * 0.9), bar)
        if r.chance(0.5):
            y = int(th * r.u(0.3, 0.5))
            cv2.line(tex, (0, y), (tw, y), _col(frame * 0.9), bar)
        blinds = r.chance(0.3)
        if blinds:  # slats, partly pulled down
            down_to = int(th * r.u(0.3, 1.0))
            sl = r.hsv((0, 0.2), (0.6, 0.95))
            pitch = max(2, round(0.05 * ppm))
            cv2.rectangle(tex, (0, 0), (tw, down_to), _col(sl), -1)
            for y in range(0, down_to, pitch):
                cv2.line(tex, (0, y), (tw, y), _col(sl * 0.75), 1)
        fb = max(1, round(0.05 * tw / wm))
        tex = cv2.copyMakeBorder(tex, fb, fb, fb, fb, cv2.BORDER_CONSTANT, value=_col(frame))
        sc.plane(p0, e1, _DOWN, tex=tex, extent=(a - 0.05, b + 0.05, top - 0.05, bottom + 0.05), zbias=0.008,
                 emissive=r.u(1.0, 1.2) if blinds else r.u(1.3, 1.8))  # fmt: skip
        mid = sc.project((p0 + s_c * e1 + (top + bottom) / 2 * _DOWN)[None])[0][0]
        sc.add_light(mid[0], mid[1], wm * sc.fx / z_wall, r.u(0.2, 0.6))
        if r.chance(0.35):  # curtains at the sides
            folds = F32(0.8) + F32(0.2) * np.sin(np.linspace(0, 2 * np.pi * r.i(3, 7), 32, dtype=F32))
            ct = _shaded(r.hsv((0.05, 0.7), (0.2, 0.9)) if r.chance(0.7) else np.full(3, r.u(150, 240)),
                         np.ones((8, 1), F32) * folds[None, :])  # fmt: skip
            cw = r.u(0.2, 0.45)
            for s in (a - cw + 0.1, b - 0.1):
                sc.plane(p0, e1, _DOWN, tex=ct, extent=(s, s + cw, top - 0.15, bottom + 0.3), zbias=0.06)
    elif kind == "poster":
        wm = r.u(0.25, 1.0)
        hm = wm * r.u(0.6, 1.5)
        top = r.u(-0.5, 0.4) - hm / 2
        th, tw = tex_size(wm, hm)
        x = r.random()
        if x < 0.35:  # abstract
            tex = _full(th, tw, r.hsv((0, 0.6), (0.2, 0.95)))
            for _ in range(r.i(2, 8)):
                c = _col(r.hsv((0.2, 0.9), (0.2, 0.95)))
                cx, cy = r.i(0, tw), r.i(0, th)
                rr = r.i(2, max(3, min(tw, th) // 2))
                if r.chance(0.5):
                    cv2.circle(tex, (cx, cy), rr, c, -1)
                else:
                    cv2.rectangle(tex, (cx, cy), (cx + rr, cy + 2 * rr), c, -1)
        elif x < 0.65:  # landscape photo
            g = (F32(1) - np.arange(th, dtype=F32)[:, None] * F32(0.3 / th)) * np.ones((1, tw), F32)
            tex = _shaded(r.hsv((0.2, 0.6), (0.6, 0.95), (95, 120)), g)
            hor = int(th * r.u(0.4, 0.7))
            pts = [[0, th], [0, hor]] + [[int(xx), int(hor - r.u(0, 0.3) * th)] for xx in np.linspace(0, tw, 6)]
            pts += [[tw, hor], [tw, th]]
            cv2.fillPoly(tex, [np.array(pts, np.int32)], _col(r.hsv((0.2, 0.7), (0.2, 0.6), (20, 100))))
        else:  # text / chart
            tex = _full(th, tw, r.hsv((0, 0.1), (0.8, 0.97)))
            cv2.rectangle(tex, (tw // 10, th // 12), (tw - tw // 10, th // 4), _col(r.hsv((0.3, 0.9))), -1)
            _text_lines(tex, r, tw // 10, th // 4, tw - tw // 10, th - th // 12, (40.0, 40.0, 45.0), max(2, th // 25))
        if r.chance(0.7):
            cv2.rectangle(tex, (0, 0), (tw - 1, th - 1), _col(r.hsv((0, 0.5), (0.05, 0.9))), max(1, round(0.02 * ppm)))
        sc.plane(p0, e1, _DOWN, tex=tex, extent=(s_c - wm / 2, s_c + wm / 2, top, top + hm), zbias=0.015)
    elif kind in ("shelf", "cabinet"):
        wm = r.u(0.5, 1.3)
        hm = r.u(1.2, 2.1) if kind == "shelf" else r.u(0.6, 1.0)
        a, b = s_c - wm / 2, s_c + wm / 2
        if not free(a, b):
            return
        used.append((a, b))
        depth_m = min(r.u(0.25, 0.45), z_wall - 0.6)  # its front stays beyond 0.6 m
        if depth_m < 0.15:
            return
        th, tw = tex_size(wm, hm)
        tex = _tex_wood(r, th, tw, 1) if r.chance(0.5) else _full(th, tw, r.hsv((0, 0.1), (0.1, 0.95)))
        mid = tex[th // 2, tw // 2].copy()
        if kind == "shelf":
            bt = max(1, round(0.025 * ppm))
            rows = np.linspace(0, th, r.i(2, 6) + 1).astype(int)
            for i in range(len(rows) - 1):
                ya, yb = rows[i] + bt, rows[i + 1] - bt
                cv2.rectangle(tex, (bt, ya), (tw - bt, yb), _col(mid * 0.45), -1)
                x = bt + r.i(0, max(1, tw // 6))
                while x < tw - bt - 2 and r.chance(0.93):
                    bwid = max(1, round(r.u(0.02, 0.06) * ppm))
                    bh = int((yb - ya) * r.u(0.55, 0.95))
                    c = r.hsv((0.1, 0.8), (0.15, 0.9))
                    if r.chance(0.1):  # a box or a plant among the books
                        bwid *= 4
                        c = r.hsv((0.3, 0.7), (0.2, 0.6), (10, 85))
                    cv2.rectangle(tex, (x, yb - bh), (min(x + bwid, tw - bt), yb), _col(c), -1)
                    cv2.line(tex, (x, yb - bh), (x, yb), _col(c * 0.6), 1)
                    x += bwid + (r.i(0, 3 * bwid) if r.chance(0.15) else 0)
        else:
            rows = np.linspace(0, th, r.i(2, 5) + 1).astype(int)
            for i in range(len(rows) - 1):
                cv2.rectangle(tex, (1, rows[i] + 1), (tw - 2, rows[i + 1] - 1), _col(mid * 0.7), max(1, tw // 60))
                cv2.circle(tex, (tw // 2, (rows[i] + rows[i + 1]) // 2), max(1, tw // 30), _col(mid * 0.6), -1)
        front = p0 - n * depth_m
        sc.plane(front, e1, _DOWN, tex=tex, extent=(a, b, floor_y - hm, floor_y))
        if kind == "cabinet" and r.chance(0.5):  # something on top
            _object_on(sc, front + ((a + b) / 2 + r.u(-0.2, 0.2)) * e1 + (floor_y - hm) * _DOWN + n * 0.12,
                       r.pick(["plant", "lamp", "books", "box"]))  # fmt: skip


def _object_on(sc: _Scene, base_world: np.ndarray, kind: str) -> None:
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
                _text_lines(
                    lay.rgb,
                    r,
                    round(ax0 - lay.x0) + 2,
                    round(ay0 - lay.y0) + 3,
                    round(ax1 - lay.x0) - 2,
                    round(ay1 - lay.y0) - 2,
                    _col(r.hsv((0, 0.3), (0.0, 0.5))),
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
    cv2.multiply(lay.rgb, _gray3(shade), dst=lay.rgb)
    sc.put(lay)


def _flat_on_desk(sc: _Scene, desk_y: float, x: float, zw: float, kind: str) -> None:
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
        tex = _full(th, tw, body * 0.7 if body[0] > 100 else body * 1.8 + 10)  # the keys, then gaps between them
        gap = max(1, round(0.004 * ppm))
        for i in range(16):
            cv2.line(tex, (round(i * tw / 15), 0), (round(i * tw / 15), th), _col(body), gap)
        for j in range(6):
            cv2.line(tex, (0, round(j * th / 5)), (tw, round(j * th / 5)), _col(body), gap)
    elif kind == "phone":
        wm, dm = r.u(0.07, 0.08), r.u(0.14, 0.16)
        tw, th = max(4, round(wm * ppm)), max(8, round(dm * ppm))
        tex = _full(th, tw, np.full(3, r.u(10, 40)))
        if r.chance(0.4):
            screen = _col(r.hsv((0, 0.6), (0.4, 1)))
            cv2.rectangle(tex, (tw // 14, th // 12), (tw - tw // 14, th - th // 12), screen, -1)
    else:
        wm, dm = (0.21, 0.297) if kind == "paper" else (r.u(0.15, 0.25), r.u(0.2, 0.3))
        tw, th = max(4, round(wm * ppm)), max(4, round(dm * ppm))
        base = np.full(3, r.u(225, 250), F32) if kind == "paper" else r.hsv((0, 0.8), (0.2, 0.9))
        tex = _full(th, tw, base)
        if kind == "paper":
            _text_lines(tex, r, tw // 8, th // 10, tw - tw // 8, th - th // 10, (60.0, 60.0, 70.0), max(2, th // 35))
    sc.plane(p0, e1, e2, tex=tex, extent=(-wm / 2, wm / 2, -dm / 2, dm / 2), zbias=0.002)


def _person(sc: _Scene, zh: float, hx: float | None = None, hy: float | None = None) -> tuple[float, float, float]:
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
    cv2.multiply(lay.rgb, _gray3(shade), dst=lay.rgb)
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
        _copy(sub, _shaded(skin, shade), hm)
        _copy(zsub, F32(zh) - F32(0.07) * bump, hm)
        if not bald:  # a hair cap above a hairline that drops toward the temples
            cap = np.zeros_like(head)
            cv2.ellipse(cap, (round(hx - ox), round(hy - 0.1 * hh - oy)), (round(hw * 0.54), round(hh * 0.46)), tilt,
                        0, 360, 1, -1)  # fmt: skip
            hairline = F32(hy - r.u(0.18, 0.3) * hh) + F32(0.35 * hh) * np.abs(ex) ** 4
            cm = cap.view(bool) & (ys_h < hairline)
            _copy(sub, _shaded(hair, F32(0.8) + F32(0.25) * (1 - np.clip(np.abs(ex), 0, 1))), cm)
            _copy(zsub, np.full(cm.shape, F32(zh - 0.03)), cm & ~hm)
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


def _arm(sc: _Scene, z: float) -> None:
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


# --------------------------------------------------------------------------------------------- the scene

LAYOUTS = ("room", "desk", "wall")


def scene_background(rng: np.random.Generator, h: int, w: int, fx: float) -> tuple[np.ndarray, np.ndarray]:
    """A random indoor scene seen by a pinhole camera with focal length ``fx`` pixels (principal point at the
    image centre): float32 RGB 0-255 (H, W, 3) and float32 depth in metres (H, W), within 0.5-4 m.

    Layouts: a room (far wall 1.8-3.7 m, doors, windows, furniture, often a person), a desk seen from above
    (camera pitched 15-55 degrees down, clutter, monitors) or a near wall (0.7-1.6 m, posters)."""
    r = _R(rng)
    layout = r.pick(list(LAYOUTS), [0.5, 0.3, 0.2])
    pitch = {"room": r.u(-5, 15), "desk": r.u(15, 55), "wall": r.u(-5, 10)}[layout]
    sc = _Scene(rng, h, w, fx, math.radians(pitch))
    build(sc, layout)
    return sc.finish()


def build(sc: _Scene, layout: str, person: float | None = None) -> dict:
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
    base = _wall_colour(r)
    tex, tex_m = _wall_texture(r, base)
    sc.plane(p0, e1, _DOWN, colour=base, tex=tex, tex_m=tex_m, res=0.35)
    if layout != "wall" and r.chance(0.35):  # a corner: a second wall at right angles
        uc = r.u(0.1, 0.9) * w
        pc = sc.ray_plane(uc, sc.cy, p0, n1)
        if pc is not None and abs(float(e1 @ pc)) > 0.9:  # the side wall at least 0.9 m to the side
            base2 = base * F32(r.u(0.7, 0.95)) if r.chance(0.8) else _wall_colour(r)
            tex2, tex_m2 = _wall_texture(r, base2) if r.chance(0.3) else (None, (1.0, 1.0))
            sc.plane(pc, n1 if uc < sc.cx else -n1, _DOWN, colour=base2, tex=tex2, tex_m=tex_m2, res=0.35)
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
            sc.plane(np.array([0.0, desk_y, 0.0]), ex, ez, tex=lambda: _desk_texture(r), extent=(-xl, xr, near, zfar),
                     res=0.5)  # fmt: skip
            sc.add_light(r.u(0, w), h, 0.5 * w, r.u(0.0, 0.3))
            info["desk"] = desk = (desk_y, zfar, xl, xr)
    sc.plane(np.array([0.0, floor_y, 0.0]), ex, ez, tex=lambda: _floor_texture(r), res=0.4)
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
        _wall_item(sc, (p0, e1, n1), floor_y, r.pick(kinds, pk), used)
    if layout == "room":
        for _ in range(r.i(0, 3)):
            pt = sc.unproject(r.u(0, w), sc.cy, r.u(1.2, max(1.3, dist - 0.2)))
            pt[1] = floor_y
            _object_on(sc, pt, r.pick(["plant", "box", "lamp"]))
    # people -----------------------------------------------------------------------------------------------
    if zh is not None:
        if r.chance(0.4):  # a chair back behind them
            zc = zh + 0.25
            cx_ = r.u(0.1, 0.9) * w
            lay = sc.layer(cx_ - 0.25 * fx / zc, r.u(0.1, 0.5) * h, cx_ + 0.25 * fx / zc, h)
            if lay is not None:
                cv2.rectangle(lay.rgb, (0, 0), (lay.x1, lay.y1), _col(np.full(3, r.u(15, 60))), -1)
                lay.z[:] = F32(zc)
                sc.put(lay)
        info["person"] = (*_person(sc, zh), zh)
        if dist - zh < 1.2:  # its soft shadow on a near wall
            sc.add_light(info["person"][0] + r.u(-0.3, 0.3) * w, info["person"][1] + 0.3 * h, 0.25 * w, -r.u(0.05, 0.2))
    if r.chance(0.15 if layout != "wall" else 0.08):
        _arm(sc, r.u(0.56, min(1.3, dist - 0.1)))
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
                _flat_on_desk(sc, desk_y, float(pt[0]), float(pt[2]), kind)
            else:
                _object_on(sc, pt, kind)
    return info


def _wall_colour(r: _R) -> np.ndarray:
    x = r.random()
    if x < 0.45:  # whites, creams, greys
        return r.hsv((0.0, 0.12), (0.65, 0.95))
    if x < 0.6:  # beige, peach: skin-like
        return r.hsv((0.12, 0.35), (0.6, 0.92), (5, 25))
    return r.hsv((0.05, 0.45), (0.3, 0.9))


# ------------------------------------------------------------------------------------------------ occluders


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
    r = _R(rng)
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
        lay = _Layer(rx0, ry0, rx1, ry1)
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
    _copy(rgb[ry0:ry1, rx0:rx1], lay.rgb.astype(rgb.dtype, copy=False), m)
    _copy(zr, lay.z.astype(zr.dtype), m)
    mask[ry0:ry1, rx0:rx1][m] = 0
    return True


def _draw_occluder(r: _R, lay: _Layer, kind: str, cx: float, cy: float, ppm: float, z: float, box) -> None:
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
        colour = _shaded(col, shade)
        zz = F32(z) - F32(rad / ppm) * t
    elif kind == "ball":
        rad = r.u(0.02, 0.045) * ppm
        d2 = ((xs - F32(cx)) ** 2 + (ys - F32(cy)) ** 2) / F32(rad * rad)
        inside = d2 < 1
        t = np.sqrt(np.clip(1 - d2, 0, 1))
        col = r.hsv((0.4, 0.95), (0.4, 1.0)) if r.chance(0.8) else np.array([200.0, 220, 60], F32)
        lx, ly = (xs - F32(cx - 0.35 * rad)) / F32(rad), (ys - F32(cy - 0.35 * rad)) / F32(rad)
        colour = _shaded(col, F32(0.45) + F32(0.55) * t + F32(0.35) * np.exp(-(lx * lx + ly * ly) * F32(6)))
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
            colour = _shaded(col, F32(0.6) + F32(0.45) * t)
            zz = F32(z) - F32(rw / ppm) * t
        else:
            colour = _full(*lu.shape, col)
            zz = np.full(lu.shape, F32(z))
            if r.chance(0.5):  # a lit screen
                scr = (np.abs(lu) < F32(0.88 * rw)) & (np.abs(lv) < F32(0.85 * rh))
                _copy(colour, _full(*lu.shape, r.hsv((0, 0.6), (0.5, 1.0))), scr)
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
            colour = _shaded(np.full(3, r.u(215, 250), F32), shade)
        else:
            f = r.u(0.08, 0.3) * 2 * math.pi / max(ppm * 0.01, 1e-3)
            a = r.u(0, math.pi)
            shade = F32(0.8) + F32(0.2) * np.sin(F32(f * math.cos(a)) * xs + F32(f * math.sin(a)) * ys)
            colour = _shaded(r.hsv((0.05, 0.8), (0.15, 0.9)), shade)
        zz = np.full(inside.shape, F32(z))
    inside = np.ascontiguousarray(np.broadcast_to(inside, lay.z.shape))
    _copy(lay.rgb, np.ascontiguousarray(np.broadcast_to(colour, lay.rgb.shape)), inside)
    _copy(lay.z, np.ascontiguousarray(np.broadcast_to(zz, lay.z.shape), dtype=F32), inside)
