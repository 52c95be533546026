"""Renderer: posed hands -> RGB image, aligned depth (uint16 millimetres) and a hand mask.

Each hand is one smooth skinned surface (:mod:`streamhand.synth.hand_mesh`) drawn by OpenGL
(:mod:`streamhand.synth.gl_render`: skin shading, shadows, creases, nails, sleeves, watches, rings) over an indoor
scene with depth and people in it (:mod:`streamhand.synth.scene`), now and then behind an object in front of the
hand; then a webcam's optics and sensor and a RealSense's depth artefacts (:mod:`streamhand.synth.sensor`). Skin
tone, accessories, lights, scene, blur, noise and depth artefacts are randomised from the caller's generator, so a
seed gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamhand.geometry import Intrinsics, project
from streamhand.synth.gl_render import HandLook, Lighting, renderer
from streamhand.synth.hand_mesh import cavity_occlusion, palm_frame, pose_mesh
from streamhand.synth.scene import add_occluder, scene_background
from streamhand.synth.sensor import DEPTH_SETTINGS, WEBCAM_SETTINGS, apply_webcam, realsense_depth

#: skin tones (sRGB) across the range of people, very light to very dark
SKIN_TONES = np.array(
    [[255, 224, 196], [250, 210, 180], [241, 194, 165], [232, 190, 172], [224, 172, 140], [210, 160, 130],
     [241, 194, 125], [224, 172, 105], [198, 134, 90], [198, 134, 66], [165, 110, 75], [141, 85, 36],
     [120, 75, 50], [92, 59, 37], [70, 45, 32]], dtype=np.float32
)  # fmt: skip


#: bump when rendered images change, so caches built from renders (MediaPipe labels) are rebuilt
RENDER_VERSION = 11  # 6: a skinned mesh drawn by OpenGL, indoor scenes with depth, webcam and RealSense models;
# 7: palm lines and flexion creases deep enough to read (MediaPipe took palms for backs); 8: a room's diffuse
# light (RenderConfig.diffuse_light); 9: the key light reaches the hand (its shadow map was read as all shadow, so
# the key light, its shadows and the skin's specular were missing); 10: the hand darker toward its outline, where
# its surface turns away from the camera, and its creases and palm lines fainter; 11: the room's ambient light at
# half its share and the skin's sheen doubled, with the key light at work. RenderConfig.cavities (off by
# default) and diffuse_light=False change the images: caches built with them are not told apart


@dataclass
class RenderConfig:
    #: random (a 3D indoor scene with depth four times in five, else a flat room or clutter) | scene | room |
    #: clutter | plain | none (black)
    background: str = "random"
    blur: bool = True  # the webcam's optics: defocus, motion blur (with image_noise False: these alone)
    image_noise: bool = True  # the webcam's sensor and encoder: exposure, white balance, noise, tone, JPEG
    depth_noise: bool = True  # a RealSense D4xx's depth: disparity noise, flying pixels (with its holes)
    depth_holes: bool = True
    #: chance of an object in front of part of a hand or held in it
    occluders: float = 0.15
    #: chance of motion blur from the hand's movement during the exposure
    motion_blur: float = 0.2
    #: how strong the webcam's effects are (1: the whole range of :func:`~streamhand.synth.sensor.apply_webcam`,
    #: dim rooms included; 0.6: most webcams in a lit room)
    camera_strength: float = 0.6
    #: shade the room's light where curled fingers meet each other and the palm (cavity occlusion; docs/renders.md:
    #: MediaPipe finds more renders with it, but it is not the default yet)
    cavities: bool = False
    #: a room's diffuse light (renderer 8; :func:`random_lighting`); False: renderer 7's contrasty light
    diffuse_light: bool = True
    forearm: bool = True
    #: wrist to where the arm leaves the picture (a straight forearm and upper arm: no stump in the frame)
    forearm_length_m: float = 0.45
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


#: renderer 8's room light against renderer 7's, applied to the same draws: key, fill, hemisphere (sky), ground
_DIFFUSE = (0.61, 2.44, 1.83, 0.61)


def random_lighting(rng: np.random.Generator, diffuse: bool = True) -> Lighting:
    """Indoor light: a key light mostly in front of the hand (from above, the side, now and then behind it),
    warm to cool, hard or soft shadows; a fill light; a tinted hemisphere. ``diffuse`` (renderer 8): a room lights
    a hand much as its walls, ceiling and windows do, the fill about 0.2-2 times the key and the hemisphere
    0.15-0.65, with the same light in all; without it (renderer 7) the key is 2-25 times the fill, a studio
    portrait's contrast, and MediaPipe finds fewer hands (docs/renders.md). The same draws either way."""
    key = np.array([rng.uniform(-1, 1), rng.uniform(-1.2, 0.4), -rng.uniform(0.15, 1.2)])
    if rng.random() < 0.1:  # back light
        key[2] = rng.uniform(0.2, 0.8)
    warmth = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.12 * warmth, 1.0, 1.0 - 0.18 * warmth])
    s_key, s_fill, s_sky, s_ground = _DIFFUSE if diffuse else (1.0, 1.0, 1.0, 1.0)
    key_col = tint * rng.uniform(0.9, 2.0) * s_key
    fill = np.array([-key[0] + rng.normal(0, 0.3), rng.uniform(-0.3, 0.5), -rng.uniform(0.3, 1.0)])
    fill_col = tint * rng.uniform(0.08, 0.45) * rng.uniform(0.9, 1.1, 3) * s_fill
    amb = rng.uniform(0.08, 0.35)
    sky = amb * rng.uniform(0.85, 1.15, 3) * s_sky
    ground = amb * rng.uniform(0.3, 0.7) * rng.uniform(0.8, 1.2, 3) * s_ground
    return Lighting(key, key_col, fill, fill_col, sky, ground, shadow_soft=float(rng.uniform(0.6, 3.5)),
                    sss=float(rng.uniform(0.35, 0.85)), gloss=float(rng.uniform(0.02, 0.12)))  # fmt: skip


def posed_mesh(joints: np.ndarray, scale: float, left: bool, forearm_length: float,
               cavities: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:  # fmt: skip
    """The skinned hand surface (vertices, normals and, with ``cavities``, how open each vertex is to the room's
    light, else None) of camera-frame joints; a left hand is a right hand's mirror image (mirrored joints skinned,
    the surface mirrored back)."""
    j = np.array(joints, dtype=np.float64)
    if left:
        j[:, 0] *= -1
    v, n = pose_mesh(j, scale, forearm_length)
    ao = cavity_occlusion(j, v, n, scale) if cavities else None
    if left:
        v[:, 0] *= -1
        n[:, 0] *= -1
    return v, n, ao


def _forearm_length(joints: np.ndarray, length: float, nearest: float = 0.15) -> float:
    """``length``, or less where the forearm points at the camera: an arm does not reach past the lens, and its
    end stays at least ``nearest`` metres (or half the wrist's distance) from the camera, measured along the
    wrist's ray (so a camera turned about its centre, as for turned crops, gives the same arm)."""
    j = np.asarray(joints, np.float64)
    d = -palm_frame(j)[:, 1]  # from the wrist toward the elbow
    dist = float(np.linalg.norm(j[0]))
    toward = float(d @ j[0]) / max(dist, 1e-9)
    if toward >= 0:
        return length
    return float(np.clip((dist - min(nearest, 0.5 * dist)) / -toward, 0.03, length))


@dataclass
class Take:
    """One recording's steady look: its light, each hand's look (by the hand's index in ``render``'s list) and
    the webcam's and depth sensor's settings (:data:`~streamhand.synth.sensor.WEBCAM_SETTINGS` and
    :data:`~streamhand.synth.sensor.DEPTH_SETTINGS` uniform 0-1 decisions). Frames rendered with one take look
    like one video: nothing is relit or re-dressed between them, and only the sensors' noise changes."""

    light: Lighting
    looks: list[HandLook]
    camera: np.ndarray
    depth_sensor: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, hands: int, skin: list[np.ndarray] | None = None,
             diffuse_light: bool = True) -> Take:  # fmt: skip
        """A random take, as a frame without one draws its own."""
        looks = [random_look(rng, None if skin is None else skin[i]) for i in range(hands)]
        light = random_lighting(rng, diffuse_light)
        return cls(light, looks, rng.random(WEBCAM_SETTINGS), rng.random(DEPTH_SETTINGS))


def render(
    rng: np.random.Generator,
    hands: list[np.ndarray],
    k: Intrinsics,
    scales: list[float] | None = None,
    cfg: RenderConfig | None = None,
    skin: list[np.ndarray] | None = None,
    left: list[bool] | None = None,
    backdrop: np.ndarray | None = None,
    backdrop_depth: np.ndarray | None = None,
    take: Take | None = None,
) -> Rendered:
    """Render posed hands (each (21, 3), camera frame, metres) seen through intrinsics ``k``.

    ``backdrop`` (H, W, 3) replaces the random background (a fixed scene for animated clips), ``backdrop_depth``
    (H, W, metres) its depth (else a plane at ``cfg.background_depth_m``); with a backdrop nothing occludes the
    hands. ``take``: one recording's light, hands' looks and sensors' settings (:class:`Take`; ``skin`` is then
    the take's), the same in every frame rendered with it; without one every frame draws its own from ``rng``.
    The sensors' noise comes from ``rng`` either way.
    """
    cfg = cfg or RenderConfig()
    h, w = k.height, k.width
    scales = scales or [1.0] * len(hands)
    lefts = left or [False] * len(hands)
    bg_depth = None if backdrop_depth is None else np.asarray(backdrop_depth, np.float32)
    if backdrop is not None:
        img = backdrop.astype(np.float32)
    elif cfg.background == "scene" or (cfg.background == "random" and rng.random() < 0.8):
        img, bg_depth = scene_background(rng, h, w, k.fx)
    else:
        img = background(rng, h, w, cfg.background)
    if bg_depth is None:
        bg_depth = np.full((h, w), rng.uniform(*cfg.background_depth_m), np.float32)
    occlude = backdrop is None
    owner = np.zeros((h, w), np.uint8)
    zbuf = np.full((h, w), np.inf, np.float32)
    normal = np.zeros((h, w, 3), np.float32)
    meshes, looks, drawn = [], [], []
    forearm = cfg.forearm_length_m if cfg.forearm else 0.03
    for i, joints in enumerate(hands):
        if np.max(np.asarray(joints)[:, 2]) <= 0.02:  # behind the camera
            continue
        meshes.append(posed_mesh(joints, float(scales[i]), bool(lefts[i]), _forearm_length(joints, forearm),
                                 cfg.cavities))
        looks.append(take.looks[i] if take else random_look(rng, None if skin is None else skin[i]))
        drawn.append(i + 1)
    if meshes:
        light = take.light if take else random_lighting(rng, cfg.diffuse_light)
        ras = renderer().draw(k, meshes, looks, light)
        img = ras.color + (1.0 - ras.coverage[..., None]) * img
        index = np.array([0, *drawn], np.uint8)
        owner = index[ras.hand]
        zbuf, normal = ras.z, ras.normal
        # the scene stays behind the hands (its depth moved back as a whole where it would cut into them)
        near = float(bg_depth.min())
        far_hand = float(np.max(zbuf[owner > 0])) if (owner > 0).any() else 0.0
        if near < far_hand + 0.05:
            bg_depth = bg_depth + np.float32(far_hand + 0.05 - near)
    if occlude and meshes and rng.random() < cfg.occluders:
        i = int(rng.integers(len(drawn)))  # in front of one hand (its joints' box: not the forearm)
        j = np.asarray(hands[drawn[i] - 1], np.float64)
        if j[:, 2].min() > 0.02 and (owner == drawn[i]).any():
            u, v = project(j, k).T
            box = (max(int(u.min()), 0), max(int(v.min()), 0), min(int(u.max()) + 1, w), min(int(v.max()) + 1, h))
            if box[0] < box[2] and box[1] < box[3]:
                z = float(np.median(zbuf[owner == drawn[i]]))
                add_occluder(rng, img, bg_depth, owner, box, z, probability=1.0, max_cover=0.2)
    fg = owner > 0
    depth_true = np.where(fg, zbuf, bg_depth).astype(np.float32)
    motion = None
    if meshes and cfg.blur and rng.random() < cfg.motion_blur:
        # the hand's displacement during the exposure: a few pixels, now and then many
        motion = rng.normal(0, 1, 2) * rng.gamma(1.5, 2.5) * cfg.hole_scale
    strength = cfg.camera_strength * float(cfg.blur or cfg.image_noise)
    cam, sensor = (None, None) if take is None else (take.camera, take.depth_sensor)
    rgb = apply_webcam(rng, img, fg.astype(np.uint8), motion, strength=strength, pixel_scale=cfg.hole_scale,
                       settings=cam)  # fmt: skip
    if cfg.depth_noise or cfg.depth_holes:
        depth = realsense_depth(rng, depth_true, owner, normal, k.fx, pixel_scale=cfg.hole_scale,
                                principal=(k.cx, k.cy), settings=sensor)  # fmt: skip
    else:
        depth = np.clip(depth_true * 1000.0, 0, 65535).astype(np.uint16)
    return Rendered(rgb, depth, owner)
