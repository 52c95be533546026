"""Kinematic hand model: bone lengths, joint angles with anatomical limits, forward kinematics.

Hand frame (right hand): X toward the thumb, Y along the fingers, Z out of the palm; the wrist is at
the origin. A left hand is the mirror image (X negated). Angles are radians, shape (..., 21):

    thumb  : CMC flexion, CMC abduction, MCP flexion, MCP abduction, IP flexion      (0-4)
    fingers: MCP flexion, MCP abduction, PIP flexion, DIP flexion (index, middle, ring, pinky)

Positive flexion curls toward the palm (+Z); positive abduction moves toward the thumb side (+X).
"""

from __future__ import annotations

import numpy as np

from streamhand.skeleton import NUM_JOINTS

NUM_ANGLES = 21
D = np.deg2rad

#: anatomical limits in radians, (low, high) per angle
ANGLE_LIMITS = np.array(
    [
        # thumb: CMC flex, CMC abd, MCP flex, MCP abd, IP flex
        (D(-20), D(55)), (D(-15), D(45)), (D(-10), D(60)), (D(-12), D(12)), (D(-15), D(85)),
        # index
        (D(-25), D(95)), (D(-12), D(25)), (D(0), D(110)), (D(-5), D(85)),
        # middle
        (D(-25), D(95)), (D(-15), D(15)), (D(0), D(110)), (D(-5), D(85)),
        # ring
        (D(-25), D(95)), (D(-20), D(12)), (D(0), D(110)), (D(-5), D(85)),
        # pinky
        (D(-25), D(95)), (D(-30), D(12)), (D(0), D(110)), (D(-5), D(85)),
    ]
)  # fmt: skip

# reference adult right hand (metres): wrist->MCP offsets and phalanx lengths (proximal, middle, distal)
_MCP_OFFSETS = np.array([[0.024, 0.083, 0.0], [0.003, 0.087, 0.0], [-0.016, 0.081, 0.0], [-0.032, 0.071, 0.0]])
_PHALANGES = np.array([[0.040, 0.024, 0.021], [0.044, 0.027, 0.022], [0.041, 0.026, 0.022], [0.032, 0.019, 0.020]])
_FINGER_DIRS = np.array([[0.10, 1.0, 0.0], [0.0, 1.0, 0.0], [-0.09, 1.0, 0.0], [-0.2, 1.0, 0.0]])
_THUMB_CMC = np.array([0.022, 0.027, 0.008])
_THUMB_LENGTHS = np.array([0.040, 0.032, 0.028])  # CMC->MCP, MCP->IP, IP->tip
_THUMB_DIR = np.array([0.62, 0.72, 0.30])
_THUMB_FLEX_TOWARD = np.array([-0.55, 0.0, 0.85])
#: half thickness of the rendered phalanges (metres, reference hand), base to tip, thumb first
SEGMENT_RADII = 1.2 * np.array(
    [[0.0125, 0.0105, 0.0092], [0.0094, 0.0086, 0.0078], [0.0097, 0.0088, 0.0079],
     [0.0092, 0.0084, 0.0076], [0.0083, 0.0075, 0.0068]]
)  # fmt: skip


def _frame(y: np.ndarray, toward_z: np.ndarray) -> np.ndarray:
    """Rotation whose columns are (x, y, z): y along ``y``, z as close as possible to ``toward_z``."""
    y = y / np.linalg.norm(y)
    z = toward_z - np.dot(toward_z, y) * y
    z = z / np.linalg.norm(z)
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=1)


_FINGER_BASES = np.stack([_frame(d, np.array([0.0, 0.0, 1.0])) for d in _FINGER_DIRS])
_THUMB_BASE = _frame(_THUMB_DIR, _THUMB_FLEX_TOWARD)


def rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def clamp_angles(angles: np.ndarray) -> np.ndarray:
    """Clip angles to :data:`ANGLE_LIMITS`."""
    return np.clip(angles, ANGLE_LIMITS[:, 0], ANGLE_LIMITS[:, 1])


def sample_shape(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-hand global scale (adult range, about 0.85-1.15 of the reference) and per-bone proportions.

    Returns (scale (n,), proportions (n, 5, 3)) where proportions multiply each finger's three bones.
    """
    scale = np.clip(rng.normal(1.0, 0.08, n), 0.82, 1.18)
    props = np.clip(rng.normal(1.0, 0.045, (n, 5, 3)), 0.88, 1.12)
    return scale, props


def forward_kinematics(
    angles: np.ndarray,
    scale: np.ndarray | None = None,
    proportions: np.ndarray | None = None,
    left: np.ndarray | bool = False,
) -> np.ndarray:
    """Joint angles (N, 21) -> joints (N, 21, 3) in the hand frame (metres). Vectorised over N."""
    a = clamp_angles(np.atleast_2d(np.asarray(angles, dtype=np.float64)))
    n = a.shape[0]
    s = np.ones(n) if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), (n,))
    p = np.ones((n, 5, 3)) if proportions is None else np.broadcast_to(proportions, (n, 5, 3))
    out = np.zeros((n, NUM_JOINTS, 3))
    # thumb: CMC (abduction then flexion), MCP (abduction then flexion), IP flexion
    r = _THUMB_BASE @ rot_z(-a[:, 1]) @ rot_x(a[:, 0])
    pos = np.broadcast_to(_THUMB_CMC, (n, 3)) * s[:, None]
    out[:, 1] = pos
    rots = [r, r @ rot_z(-a[:, 3]) @ rot_x(a[:, 2])]
    rots.append(rots[1] @ rot_x(a[:, 4]))
    for k in range(3):
        pos = pos + rots[k][:, :, 1] * (_THUMB_LENGTHS[k] * s * p[:, 0, k])[:, None]
        out[:, 2 + k] = pos
    # fingers
    for f in range(4):
        mcp_flex, mcp_abd, pip, dip = (a[:, 5 + 4 * f + i] for i in range(4))
        r1 = _FINGER_BASES[f] @ rot_z(-mcp_abd) @ rot_x(mcp_flex)
        r2 = r1 @ rot_x(pip)
        r3 = r2 @ rot_x(dip)
        base = 5 + 4 * f
        pos = np.broadcast_to(_MCP_OFFSETS[f], (n, 3)) * s[:, None]
        out[:, base] = pos
        for k, rk in enumerate((r1, r2, r3)):
            pos = pos + rk[:, :, 1] * (_PHALANGES[f, k] * s * p[:, f + 1, k])[:, None]
            out[:, base + 1 + k] = pos
    lm = np.broadcast_to(np.asarray(left, dtype=bool), (n,))
    out[lm, :, 0] *= -1.0
    return out


def reference_pose() -> np.ndarray:
    """The flat, open reference right hand (21, 3)."""
    return forward_kinematics(np.zeros((1, NUM_ANGLES)))[0]
