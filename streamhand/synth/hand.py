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

#: anatomical limits in radians, (low, high) per angle: active ranges of adults, including MCP, PIP and DIP
#: hyperextension (negative flexion), finger abduction to both sides, thumb IP hyperextension and a thumb
#: CMC that reaches across the palm (opposition; see :func:`thumb_pronation`)
ANGLE_LIMITS = np.array(
    [
        # thumb: CMC flex, CMC abd, MCP flex, MCP abd, IP flex
        (D(-25), D(60)), (D(-15), D(60)), (D(-20), D(65)), (D(-12), D(12)), (D(-25), D(85)),
        # index
        (D(-35), D(95)), (D(-15), D(30)), (D(-5), D(110)), (D(-15), D(85)),
        # middle
        (D(-35), D(95)), (D(-20), D(20)), (D(-5), D(110)), (D(-15), D(85)),
        # ring
        (D(-35), D(95)), (D(-25), D(15)), (D(-5), D(110)), (D(-15), D(85)),
        # pinky
        (D(-35), D(95)), (D(-40), D(15)), (D(-5), D(110)), (D(-15), D(85)),
    ]
)  # fmt: skip

#: reference hand length (wrist crease to middle fingertip, metres) of the scale-1 hand
REFERENCE_HAND_LENGTH_M = 0.185
#: phalanx lengths as fractions of hand length (joint centre to joint centre, the distal one to the tip): middle and
#: distal from Buchholz, Armstrong & Goldstein (1992), "Anthropometric data for describing the kinematics of the
#: human hand", Ergonomics 35(3); proximal from An et al. (1979)'s ratios to the middle phalanx (Buchholz's own:
#: 0.245, 0.266, 0.244, 0.204; docs/renders.md measures both): proximal, middle, distal for index to little
BUCHHOLZ_PHALANGES = np.array([[0.265, 0.143, 0.097], [0.277, 0.170, 0.108], [0.259, 0.165, 0.107],
                               [0.206, 0.117, 0.093]])  # fmt: skip
#: thumb proximal and distal phalanges, same source
BUCHHOLZ_THUMB = np.array([0.196, 0.158])
# reference adult right hand (metres): wrist->MCP offsets; the middle MCP sits at hand length minus the middle
# finger's three phalanges (0.445 of hand length), the others at the usual arc of the knuckles
_MCP_OFFSETS = np.array([[0.024, 0.079, 0.0], [0.003, 0.082, 0.0], [-0.016, 0.077, 0.0], [-0.032, 0.067, 0.0]])
_PHALANGES = REFERENCE_HAND_LENGTH_M * BUCHHOLZ_PHALANGES
_FINGER_DIRS = np.array([[0.10, 1.0, 0.0], [0.0, 1.0, 0.0], [-0.09, 1.0, 0.0], [-0.2, 1.0, 0.0]])
_THUMB_CMC = np.array([0.022, 0.027, 0.008])
# CMC->MCP (the landmark conventions of MediaPipe and the public datasets put the CMC point distal to the
# anatomical joint centre, so the metacarpal is shorter than Buchholz's 0.251), MCP->IP, IP->tip
_THUMB_LENGTHS = np.array([0.040, *(REFERENCE_HAND_LENGTH_M * BUCHHOLZ_THUMB)])
_THUMB_DIR = np.array([0.62, 0.74, 0.18])
_THUMB_FLEX_TOWARD = np.array([-0.85, 0.0, 0.5])
#: the thumb metacarpal turns about its own axis as it flexes and abducts (the saddle joint's conjunct
#: rotation): radians of pronation per radian of CMC flexion and of CMC abduction
THUMB_PRONATION = (0.6, 0.3)
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


def rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def thumb_pronation(cmc_flex: np.ndarray, cmc_abd: np.ndarray) -> np.ndarray:
    """Axial turn of the thumb metacarpal (radians) that comes with CMC flexion and abduction (opposition)."""
    return THUMB_PRONATION[0] * np.maximum(cmc_flex, 0) + THUMB_PRONATION[1] * np.maximum(cmc_abd, 0)


def rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def clamp_angles(angles: np.ndarray) -> np.ndarray:
    """Clip angles to :data:`ANGLE_LIMITS`."""
    return np.clip(angles, ANGLE_LIMITS[:, 0], ANGLE_LIMITS[:, 1])


def sample_shape(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-hand global scale and per-bone proportions, spread as adults' hands are.

    Hand length of adults: about 0.174 m (women) and 0.189 m (men), standard deviation about 0.009-0.010 m
    within each (Pheasant, "Bodyspace"); pooled, about 7 % of the mean: scale ~ N(1, 0.075), clipped to
    0.8-1.2. Phalanx proportions vary about 5 % between people (Buchholz et al. report coefficient SDs of
    0.01-0.02 hand lengths).

    Returns (scale (n,), proportions (n, 5, 3)) where proportions multiply each finger's three bones.
    """
    scale = np.clip(rng.normal(1.0, 0.075, n), 0.8, 1.2)
    props = np.clip(rng.normal(1.0, 0.05, (n, 5, 3)), 0.86, 1.14)
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
    r = _THUMB_BASE @ rot_z(-a[:, 1]) @ rot_x(a[:, 0]) @ rot_y(-thumb_pronation(a[:, 0], a[:, 1]))
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
