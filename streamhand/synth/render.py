"""Renderer: posed hands -> RGB image, aligned depth (uint16 millimetres) and a hand mask.

Each hand is one smooth skinned surface (:mod:`streamhand.synth.hand_mesh`) drawn by OpenGL
(:mod:`streamhand.synth.gl_render`: skin shading, shadows, creases, nails, sleeves, watches, rings) over a
background; skin tone, accessories, lights, blur, image noise and depth sensor noise/holes are randomised from
the caller's generator, so a seed gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamhand.geometry import Intrinsics
from streamhand.synth.gl_render import HandLook, Lighting, renderer
from streamhand.synth.hand_mesh import pose_mesh

#: skin tones (sRGB) across the range of people, very light to very dark
SKIN_TONES = np.array(
    [[255, 224, 196], [250, 210, 180], [241, 194, 165], [232, 190, 172], [224, 172, 140], [210, 160, 130],
     [241, 194, 125], [224, 172, 105], [198, 134, 90], [198, 134, 66], [165, 110, 75], [141, 85, 36],
     [120, 75, 50], [92, 59, 37], [70, 45, 32]], dtype=np.float32
)  # fmt: skip


#: bump when rendered images change, so caches built from renders (MediaPipe labels) are rebuilt
RENDER_VERSION = 4  # 4: a skinned mesh drawn by OpenGL with skin shading and shadows


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


def random_look(rng: np.random.Generator, skin: np.ndarray | None = None) -> HandLook:
    """A hand's skin tone (one of :data:`SKIN_TONES`, varied) unless given, and now and then a sleeve, a watch
    or a ring."""
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.88, 1.08) if skin is None else skin
    look = HandLook(skin=np.clip(np.asarray(tone, np.float64), 0, 255), detail=float(rng.uniform(0.4, 1.0)))
    if rng.random() < 0.35:
        look.sleeve_start = float(rng.uniform(0.02, 0.12))
        look.sleeve_col = muted_colors(rng, 1, 0.6)[0].astype(np.float64)
    look.watch = bool(rng.random() < 0.15)
    look.strap_col = muted_colors(rng, 1, 0.3)[0].astype(np.float64) * 0.5
    look.ring = bool(rng.random() < 0.15)
    look.metal_col = np.array([230.0, 190, 120]) if rng.random() < 0.5 else np.array([210.0, 210, 215])
    return look


def random_lighting(rng: np.random.Generator) -> Lighting:
    """Indoor light: a key light mostly in front of the hand (from above, the side, now and then behind it),
    warm to cool, hard or soft shadows; a dimmer fill light; a tinted hemisphere."""
    key = np.array([rng.uniform(-1, 1), rng.uniform(-1.2, 0.4), -rng.uniform(0.15, 1.2)])
    if rng.random() < 0.1:  # back light
        key[2] = rng.uniform(0.2, 0.8)
    warmth = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.12 * warmth, 1.0, 1.0 - 0.18 * warmth])
    key_col = tint * rng.uniform(0.9, 2.0)
    fill = np.array([-key[0] + rng.normal(0, 0.3), rng.uniform(-0.3, 0.5), -rng.uniform(0.3, 1.0)])
    fill_col = tint * rng.uniform(0.08, 0.45) * rng.uniform(0.9, 1.1, 3)
    amb = rng.uniform(0.08, 0.35)
    sky = amb * rng.uniform(0.85, 1.15, 3)
    ground = amb * rng.uniform(0.3, 0.7) * rng.uniform(0.8, 1.2, 3)
    return Lighting(key, key_col, fill, fill_col, sky, ground, shadow_soft=float(rng.uniform(0.6, 3.5)),
                    sss=float(rng.uniform(0.35, 0.85)), gloss=float(rng.uniform(0.02, 0.12)))  # fmt: skip


def posed_mesh(joints: np.ndarray, scale: float, left: bool, forearm_length: float) -> tuple[np.ndarray, np.ndarray]:
    """The skinned hand surface (vertices, normals) of camera-frame joints; a left hand is a right hand's
    mirror image (mirrored joints skinned, the surface mirrored back)."""
    j = np.array(joints, dtype=np.float64)
    if left:
        j[:, 0] *= -1
    v, n = pose_mesh(j, scale, forearm_length)
    if left:
        v[:, 0] *= -1
        n[:, 0] *= -1
    return v, n


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
    lefts = left or [False] * len(hands)
    img = background(rng, h, w, cfg.background) if backdrop is None else backdrop.astype(np.float32)
    owner = np.zeros((h, w), np.uint8)
    zbuf = np.full((h, w), np.inf, np.float32)
    meshes, looks, drawn = [], [], []
    forearm = cfg.forearm_length_m if cfg.forearm else 0.03
    for i, joints in enumerate(hands):
        if np.max(np.asarray(joints)[:, 2]) <= 0.02:  # behind the camera
            continue
        meshes.append(posed_mesh(joints, float(scales[i]), bool(lefts[i]), forearm))
        looks.append(random_look(rng, None if skin is None else skin[i]))
        drawn.append(i + 1)
    if meshes:
        light = random_lighting(rng)
        ras = renderer().draw(k, meshes, looks, light)
        img = ras.color + (1.0 - ras.coverage[..., None]) * img
        index = np.array([0, *drawn], np.uint8)
        owner = index[ras.hand]
        zbuf = ras.z
    fg = owner > 0
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
