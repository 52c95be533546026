"""Paint for the procedural scenes: the colour tables (skin tones, hair, wood), :class:`Draws` (scalar random
draws served from blocks of a generator's uniforms), small image helpers, the fine surface grain, and the textures:
wood, tiles and brick, wall coverings and colours, floors, desk tops, and word-like lines of text.

The grain field, the wood boards and the page of text are made once per process from their own fixed seeds (module
caches); a scene draws only their offsets and choices from its generator.
"""

from __future__ import annotations

import colorsys

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


class Draws:
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


def col3(c) -> tuple[float, float, float]:
    return (float(c[0]), float(c[1]), float(c[2]))


def full(h: int, w: int, colour) -> np.ndarray:
    img = np.empty((h, w, 3), F32)
    cv2.rectangle(img, (0, 0), (w, h), col3(colour), -1)
    return img


def copy(dst: np.ndarray, src: np.ndarray, m: np.ndarray) -> None:
    """``dst[m] = src[m]`` in place (``m`` bool, C-contiguous)."""
    cv2.copyTo(src, np.ascontiguousarray(m).view(np.uint8), dst)


def gray3(s: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(s, F32), cv2.COLOR_GRAY2RGB)


def shaded(colour, s: np.ndarray) -> np.ndarray:
    """A colour times a per-pixel brightness ``s`` (H, W): (H, W, 3)."""
    return cv2.merge([s * F32(colour[0]), s * F32(colour[1]), s * F32(colour[2])])


_GRAIN: np.ndarray | None = None
_GRAIN_SHAPE = (512, 704)


def surface_grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def tex_wood(r: Draws, th: int, tw: int, boards: int, colours: np.ndarray | None = None) -> np.ndarray:
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
    return shaded(light - dark, t) + full(th, tw, dark)


def _tex_tiles(r: Draws, rows: int, cols: int, ph: int, pw: int, base, grout, offset: bool, jitter: float):
    """A grid of tiles or bricks (``ph`` x ``pw`` texels each) with grout lines; alternate rows offset by half."""
    tex = full(rows * ph, cols * pw, grout)
    g = max(1, ph // 10)
    for row in range(rows):
        sh = pw // 2 if (offset and row % 2) else 0
        for c in range(-1, cols + 1):
            x = c * pw + sh
            colour = col3(np.asarray(base, F32) * F32(1 + r.u(-jitter, jitter)))
            cv2.rectangle(tex, (x + g, row * ph + g), (x + pw - 1, row * ph + ph - 1), colour, -1)
    return tex


def wall_colour(r: Draws) -> np.ndarray:
    x = r.random()
    if x < 0.45:  # whites, creams, greys
        return r.hsv((0.0, 0.12), (0.65, 0.95))
    if x < 0.6:  # beige, peach: skin-like
        return r.hsv((0.12, 0.35), (0.6, 0.92), (5, 25))
    return r.hsv((0.05, 0.45), (0.3, 0.9))


def wall_texture(r: Draws, base: np.ndarray) -> tuple[np.ndarray | None, tuple[float, float]]:
    """A wall covering: ``(None, _)`` for plain paint, else a tileable texture and its size in metres."""
    x = r.random()
    if x < 0.55:
        return None, (1.0, 1.0)
    if x < 0.68:  # striped wallpaper
        other = base * F32(r.u(0.75, 0.95)) if r.chance(0.6) else r.hsv((0.05, 0.4))
        tex = full(4, 48, base)
        xx = 0
        for k in range(r.i(2, 5)):
            wd = r.i(3, 16)
            if k % 2:
                cv2.rectangle(tex, (xx, 0), (xx + wd - 1, 4), col3(other), -1)
            xx += wd + r.i(3, 16)
        return tex, (r.u(0.08, 0.5), 1.0)
    if x < 0.76:  # patterned wallpaper: a motif on a grid
        tex = full(32, 32, base)
        c = col3(base * F32(r.u(0.7, 0.92)) if r.chance(0.6) else r.hsv((0.1, 0.5)))
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
        return tex_wood(r, 96, 16 * boards, boards), (boards * r.u(0.09, 0.2), r.u(1.5, 3.0))
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
    return shaded(base, noise), (s, s)  # plaster / concrete


def floor_texture(r: Draws) -> tuple[np.ndarray, tuple[float, float]]:
    x = r.random()
    if x < 0.45:  # planks along z
        boards = r.i(3, 6)
        return tex_wood(r, 128, 16 * boards, boards), (boards * r.u(0.1, 0.2), r.u(1.2, 2.5))
    if x < 0.65:
        n = r.i(2, 4)
        base = r.hsv((0.0, 0.25), (0.35, 0.9))
        s = r.u(0.25, 0.6)
        return _tex_tiles(r, n, n, 16, 16, base, base * F32(0.7), False, 0.06), (n * s, n * s)
    base = r.hsv((0.0, 0.45), (0.15, 0.7))  # carpet / concrete
    noise = F32(1) + F32(0.08) * _tile_noise(r.rng, (6, 6), 48, 48) + F32(0.1) * _tile_noise(r.rng, (48, 48), 48, 48)
    s = r.u(0.3, 1.0)
    return shaded(base, noise), (s, s)


def desk_texture(r: Draws) -> tuple[np.ndarray, tuple[float, float]]:
    if r.chance(0.55):  # wood, grain along x
        tex = np.ascontiguousarray(tex_wood(r, 128, 48, 1).transpose(1, 0, 2))
        return tex, (r.u(0.8, 1.6), r.u(0.3, 0.6))
    v = r.pick([0.12, 0.25, 0.55, 0.75, 0.92])
    base = r.hsv((0.0, 0.12), (v - 0.08, v + 0.05))
    return shaded(base, F32(1) + F32(0.03) * _tile_noise(r.rng, (4, 4), 32, 32)), (1.0, 1.0)


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


def text_lines(img: np.ndarray, r: Draws, x0: int, y0: int, x1: int, y1: int, colour, pitch: int) -> None:
    """Rows of word-like dashes ``pitch`` pixels apart in ``colour`` over ``img[y0:y1, x0:x1]``, like text."""
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    bw, bh = x1 - x0, y1 - y0
    if bw < 4 or bh < pitch or pitch < 1:
        return
    bank = _text_bank()
    sh, sw = min(256, max(1, round(bh * 8 / pitch))), min(512, max(1, round(bw * 8 / pitch)))
    oy, ox = r.i(0, 257 - sh), r.i(0, 513 - sw)
    a = gray3(cv2.resize(bank[oy : oy + sh, ox : ox + sw], (bw, bh), interpolation=cv2.INTER_AREA))
    roi = img[y0:y1, x0:x1]
    roi -= cv2.multiply(a, roi - full(bh, bw, colour))
