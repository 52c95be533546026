"""Pose sampler: coupled random articulations, named gestures, global placement before a random
pinhole camera, 2D projection and per-joint visibility. Everything is vectorised and seeded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamhand.geometry import Intrinsics, axis_angle, random_rotations
from streamhand.skeleton import FINGER_CHAINS, MIDDLE_MCP, WRIST
from streamhand.synth.hand import ANGLE_LIMITS, NUM_ANGLES, clamp_angles, forward_kinematics, sample_shape

D = np.deg2rad


def _g(thumb: tuple[float, ...], fingers: list[tuple[float, ...]]) -> np.ndarray:
    return D(np.array(list(thumb) + [v for f in fingers for v in f], dtype=np.float64))


_FIST = (85, 0, 100, 65)
_OPEN = (0, 0, 5, 3)
_CURL = (70, 0, 95, 55)  # folded, but looser than a fist
_T_FOLD = (40, 5, 45, 0, 50)  # thumb folded over the curled fingers
_T_PINCH = (26, 21, 14, 0, 43)  # thumb tip on the index tip of the pinch finger pose below
_PINCH_INDEX = (45, 0, 55, 30)
#: named gestures as joint angles (thumb 5 values, then 4 per finger), degrees converted to radians:
#: counting (one to five, both common thumb conventions), pointing, pinching, OK, grasps of several sizes,
#: fists, relaxed, flat, spread and hyperextended hands, and common signs
GESTURES: dict[str, np.ndarray] = {
    "open": _g((0, 25, 0, 0, 0), [(0, 12, 3, 2), (0, 0, 3, 2), (0, -8, 3, 2), (0, -18, 3, 2)]),
    "spread": _g((-10, 40, -5, 0, -10), [(-5, 25, 0, 0), (-5, 3, 0, 0), (-5, -15, 0, 0), (-5, -32, 0, 0)]),
    "flat": _g((-5, 0, 0, 0, 0), [(0, -2, 0, 0), (0, 0, 0, 0), (0, 2, 0, 0), (0, 6, 0, 0)]),
    "hyperextended": _g(
        (-15, 35, -15, 0, -20), [(-30, 15, -3, -10), (-30, 0, -3, -10), (-28, -10, -3, -10), (-25, -25, -3, -10)]
    ),
    "fist": _g((12, 45, 65, 0, 55), [_FIST, _FIST, _FIST, _FIST]),
    "point": _g(_T_FOLD, [(0, 5, 0, 0), _FIST, _FIST, _FIST]),
    "victory": _g(_T_FOLD, [(0, 14, 0, 0), (0, -8, 0, 0), _FIST, _FIST]),
    "three": _g(_T_FOLD, [(0, 14, 0, 0), (0, 0, 0, 0), (0, -12, 0, 0), _FIST]),
    "three_thumb": _g((-5, 35, 0, 0, 0), [(0, 14, 0, 0), (0, -8, 0, 0), _FIST, _FIST]),
    "four": _g((45, 10, 45, 0, 45), [(0, 12, 0, 0), (0, 0, 0, 0), (0, -8, 0, 0), (0, -18, 0, 0)]),
    "pinch": _g(_T_PINCH, [_PINCH_INDEX, (20, 0, 25, 15), (15, -5, 20, 10), (10, -10, 15, 8)]),
    "ok": _g(_T_PINCH, [_PINCH_INDEX, (5, 0, 8, 4), (8, -8, 10, 5), (12, -18, 12, 6)]),
    "pinch_closed": _g(_T_PINCH, [_PINCH_INDEX, _CURL, _CURL, _CURL]),
    "thumbs_up": _g((-5, 30, 0, 0, 0), [_FIST, _FIST, _FIST, _FIST]),
    "grasp": _g((35, 30, 10, 0, 15), [(40, 5, 50, 30), (40, 0, 50, 30), (40, -5, 50, 30), (40, -10, 50, 30)]),
    "grasp_large": _g((20, 45, 5, 0, 10), [(25, 10, 30, 20), (25, 0, 30, 20), (25, -8, 30, 20), (25, -15, 30, 20)]),
    "claw": _g((10, 40, 20, 0, 40), [(10, 12, 80, 60), (10, 0, 80, 60), (10, -8, 80, 60), (10, -16, 80, 60)]),
    "call": _g((-10, 40, -5, 0, -5), [_FIST, _FIST, _FIST, (0, -20, 0, 0)]),
    "rock": _g(_T_FOLD, [(0, 10, 0, 0), _FIST, _FIST, (0, -15, 0, 0)]),
    "relaxed": _g((10, 20, 10, 0, 15), [(15, 5, 25, 15), (20, 0, 30, 18), (25, -5, 35, 20), (30, -10, 40, 22)]),
}
GESTURE_NAMES = tuple(GESTURES)


def sample_articulation(rng: np.random.Generator, n: int, gesture_fraction: float = 0.5) -> np.ndarray:
    """Joint angles (n, 21): a mix of named gestures (with noise), coupled random poses and poses whose
    fingers are each extended or folded (the combinations people count and sign with).

    Coupled poses share a curl between neighbouring fingers (a random walk), make DIP follow PIP (about
    2/3), spread the fingers together and bend the MCPs backwards now and then (hyperextension).
    """
    angles = np.empty((n, NUM_ANGLES))
    use_gesture = rng.random(n) < gesture_fraction
    g = np.stack(list(GESTURES.values()))
    pick = rng.integers(0, len(g), n)
    angles[use_gesture] = g[pick[use_gesture]] + rng.normal(0, D(7), (int(use_gesture.sum()), NUM_ANGLES))

    m = int((~use_gesture).sum())
    if m:
        independent = rng.random(m) < 0.4
        base_curl = rng.beta(0.8, 0.8, m)  # many open and many closed hands
        walk = np.cumsum(rng.normal(0, 0.18, (m, 4)), axis=1)  # neighbours correlate
        curl = base_curl[:, None] + walk - walk.mean(1, keepdims=True) * rng.random((m, 1))
        folded = rng.random((m, 4)) < 0.5
        curl[independent] = np.where(folded[independent], rng.uniform(0.75, 1.0, (int(independent.sum()), 4)),
                                     rng.uniform(-0.25, 0.15, (int(independent.sum()), 4)))  # fmt: skip
        curl = np.clip(curl, -0.3, 1)
        spread = rng.uniform(-0.3, 1.2, m)
        r = np.zeros((m, NUM_ANGLES))
        for f in range(4):
            c = curl[:, f]
            cp = np.maximum(c, 0)
            o = 5 + 4 * f
            r[:, o] = c * D(90) * rng.uniform(0.6, 1.1, m) + rng.normal(0, D(6), m)
            r[:, o + 1] = spread * D((14, 0, -9, -18)[f]) * (1 - 0.6 * cp) + rng.normal(0, D(4), m)
            r[:, o + 2] = cp * D(105) * rng.uniform(0.7, 1.05, m) + rng.normal(0, D(5), m)
            r[:, o + 3] = r[:, o + 2] * rng.uniform(0.55, 0.8, m) + rng.normal(0, D(4), m)
        tc = np.clip(0.6 * np.clip(curl, 0, 1).mean(1) + rng.normal(0, 0.25, m), 0, 1)
        r[:, 0] = tc * D(50) + rng.normal(0, D(6), m)
        r[:, 1] = (1 - tc) * D(35) + rng.normal(0, D(6), m)
        r[:, 2] = tc * D(50) + rng.normal(0, D(6), m)
        r[:, 3] = rng.normal(0, D(4), m)
        r[:, 4] = tc * D(60) + rng.normal(0, D(8), m)
        # a quarter of the thumbs anywhere within their limits (opposed, tucked, out to the side)
        free = rng.random(m) < 0.25
        lo, hi = ANGLE_LIMITS[:5, 0], ANGLE_LIMITS[:5, 1]
        r[free, :5] = rng.uniform(lo, hi, (int(free.sum()), 5))
        angles[~use_gesture] = r
    return clamp_angles(angles)


def facing_rotations(
    rng: np.random.Generator, n: int, max_tilt_deg: float = 40.0, max_roll_deg: float = 70.0
) -> np.ndarray:
    """Rotations that show the palm (or, half the time, the back) to the camera, fingers roughly up."""
    base = np.diag([1.0, -1.0, -1.0])  # hand Y -> image up, palm normal -> toward the camera
    back = rng.random(n) < 0.5
    flip = axis_angle(np.array([0.0, 1.0, 0.0]), np.where(back, np.pi, 0.0))
    roll = axis_angle(np.array([0.0, 0.0, 1.0]), D(rng.uniform(-max_roll_deg, max_roll_deg, n)))
    tilt_x = axis_angle(np.array([1.0, 0.0, 0.0]), D(rng.uniform(-max_tilt_deg, max_tilt_deg, n)))
    tilt_y = axis_angle(np.array([0.0, 1.0, 0.0]), D(rng.uniform(-max_tilt_deg, max_tilt_deg, n)))
    return roll @ tilt_x @ tilt_y @ base @ flip


@dataclass
class IntrinsicsBatch:
    """Per-sample intrinsics as arrays; ``batch[i]`` gives one :class:`Intrinsics`."""

    width: int
    height: int
    fx: np.ndarray
    fy: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    def __len__(self) -> int:
        return len(self.fx)

    def __getitem__(self, i: int) -> Intrinsics:
        return Intrinsics(self.width, self.height, float(self.fx[i]), float(self.fy[i]),
                          float(self.cx[i]), float(self.cy[i]))  # fmt: skip

    def take(self, idx: np.ndarray) -> IntrinsicsBatch:
        """The cameras of the samples ``idx`` (an index array or boolean mask)."""
        return IntrinsicsBatch(self.width, self.height, self.fx[idx], self.fy[idx], self.cx[idx], self.cy[idx])


@dataclass
class HandSamples:
    """A batch of posed hands in one camera's frame."""

    joints_cam: np.ndarray  # (n, 21, 3) metres, camera frame
    joints_2d: np.ndarray  # (n, 21, 2) pixels
    visible: np.ndarray  # (n, 21) bool: inside the image and not hidden by the hand itself
    left: np.ndarray  # (n,) bool
    angles: np.ndarray  # (n, 21)
    scale: np.ndarray  # (n,) hand scale factor
    proportions: np.ndarray  # (n, 5, 3)
    rotation: np.ndarray  # (n, 3, 3) hand frame -> camera
    intrinsics: IntrinsicsBatch

    def __len__(self) -> int:
        return len(self.joints_cam)


@dataclass
class SamplerConfig:
    width: int = 640
    height: int = 480
    depth_range: tuple[float, float] = (0.25, 0.9)
    facing_fraction: float = 0.7  # the rest get uniformly random orientations
    gesture_fraction: float = 0.5
    left_fraction: float = 0.5
    hfov_range: tuple[float, float] = (50.0, 78.0)
    max_tilt_deg: float = 40.0
    max_roll_deg: float = 70.0
    shared_camera: bool = False  # one intrinsics for the whole batch
    in_frame_margin: float | None = None  # if set: every joint at least this many pixels inside the image


def detection_test_config(width: int = 640, height: int = 480) -> SamplerConfig:
    """Hands reasonably facing the camera (palm or back, tilt <= 30 deg, roll <= 45 deg), 0.3-0.7 m,
    wholly in the image: the set on which MediaPipe's detection rate is measured."""
    return SamplerConfig(width=width, height=height, depth_range=(0.3, 0.7), facing_fraction=1.0,
                         max_tilt_deg=30.0, max_roll_deg=45.0, in_frame_margin=0.05 * width)  # fmt: skip


def _take(hs: HandSamples, idx: np.ndarray) -> HandSamples:
    return HandSamples(hs.joints_cam[idx], hs.joints_2d[idx], hs.visible[idx], hs.left[idx], hs.angles[idx],
                       hs.scale[idx], hs.proportions[idx], hs.rotation[idx], hs.intrinsics.take(idx))  # fmt: skip


def sample_hands(rng: np.random.Generator, n: int, cfg: SamplerConfig | None = None) -> HandSamples:
    """Sample ``n`` posed hands with cameras, 2D projections and visibility."""
    cfg = cfg or SamplerConfig()
    if cfg.in_frame_margin is None:
        return _sample_hands(rng, n, cfg)
    m = cfg.in_frame_margin
    for _ in range(50):
        hs = _sample_hands(rng, 4 * n, cfg)
        uv = hs.joints_2d
        ok = ((uv[..., 0] >= m) & (uv[..., 0] < cfg.width - m) & (uv[..., 1] >= m) & (uv[..., 1] < cfg.height - m)).all(
            1
        )
        if ok.sum() >= n:
            return _take(hs, np.nonzero(ok)[0][:n])
    raise ValueError(f"in_frame_margin {m} px leaves too few hands inside a {cfg.width}x{cfg.height} image")


def _sample_hands(rng: np.random.Generator, n: int, cfg: SamplerConfig) -> HandSamples:
    angles = sample_articulation(rng, n, cfg.gesture_fraction)
    scale, props = sample_shape(rng, n)
    left = rng.random(n) < cfg.left_fraction
    local = forward_kinematics(angles, scale, props, left)

    facing = rng.random(n) < cfg.facing_fraction
    rot = random_rotations(rng, n)
    rot[facing] = facing_rotations(rng, int(facing.sum()), cfg.max_tilt_deg, cfg.max_roll_deg)

    m = 1 if cfg.shared_camera else n
    hfov = np.deg2rad(rng.uniform(*cfg.hfov_range, m))
    fx = np.broadcast_to(0.5 * cfg.width / np.tan(hfov / 2), n)
    fy = np.broadcast_to(fx[:m] * (1 + rng.normal(0, 0.005, m)), n)
    cx = np.broadcast_to((cfg.width - 1) / 2 + rng.normal(0, 0.01 * cfg.width, m), n)
    cy = np.broadcast_to((cfg.height - 1) / 2 + rng.normal(0, 0.01 * cfg.height, m), n)
    ks = IntrinsicsBatch(cfg.width, cfg.height, fx, fy, cx, cy)

    # place the palm centre at a random depth and at an image point that keeps the hand in view
    palm_local = 0.5 * (local[:, WRIST] + local[:, MIDDLE_MCP])
    rotated = np.einsum("nij,nkj->nki", rot, local - palm_local[:, None])
    z = rng.uniform(*cfg.depth_range, n)
    half_px = 0.11 * scale * fx / z  # a hand is about 0.2 m across
    mu = np.clip(cfg.width / 2 - half_px, 0, None) * 0.9
    mv = np.clip(cfg.height / 2 - half_px, 0, None) * 0.9
    u = cx + rng.uniform(-1, 1, n) * mu
    v = cy + rng.uniform(-1, 1, n) * mv
    centre = np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], axis=1)
    joints = rotated + centre[:, None]
    # keep every joint in front of the camera
    joints[..., 2] = np.maximum(joints[..., 2], 0.05)

    uv = np.stack([fx[:, None] * joints[..., 0] / joints[..., 2] + cx[:, None],
                   fy[:, None] * joints[..., 1] / joints[..., 2] + cy[:, None]], axis=-1)  # fmt: skip
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < cfg.width) & (uv[..., 1] >= 0) & (uv[..., 1] < cfg.height)
    visible = inside & ~self_occluded(joints, scale)
    return HandSamples(joints, uv, visible, left, angles, scale, props, rot, ks)


def self_occluded(joints: np.ndarray, scale: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """(n, 21) True where a joint is hidden behind another part of the same hand (capsule test)."""
    n = joints.shape[0]
    s = np.ones(n) if scale is None else np.asarray(scale)
    out = np.zeros((n, joints.shape[1]), bool)
    for a in range(0, n, chunk):
        j = joints[a : a + chunk].astype(np.float32)
        pts, rad = [], []
        for ch in FINGER_CHAINS:  # occluders: points along every bone, fatter inside the palm
            prev = WRIST
            for jj in ch:
                for t in (0.3, 0.7):
                    pts.append((1 - t) * j[:, prev] + t * j[:, jj])
                    rad.append(0.009 if prev != WRIST else 0.014)
                prev = jj
        occ = np.stack(pts, axis=1)  # (m, S, 3)
        r = (np.array(rad, np.float32)[None, :] * s[a : a + chunk, None].astype(np.float32))[:, None, :]
        dist = np.linalg.norm(j, axis=-1, keepdims=True)  # (m, 21, 1)
        along = np.matmul(j / dist, occ.transpose(0, 2, 1))  # (m, 21, S)
        perp2 = np.sum(occ * occ, -1)[:, None, :] - along * along
        hit = (perp2 < (0.85 * r) ** 2) & (along < dist - 1.6 * r)
        out[a : a + chunk] = hit.any(-1)
    return out
