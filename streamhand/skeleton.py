"""The 21-joint ``mediapipe21`` hand layout, dataset conversions and pose normalisation.

Everything inside streamhand uses ``mediapipe21``: 0 wrist; thumb 1-4 (CMC, MCP, IP, tip);
index 5-8, middle 9-12, ring 13-16, pinky 17-20 (MCP, PIP, DIP, tip). All functions accept
arrays of shape ``(..., J, D)`` so they work on single poses and batches alike.
"""

from __future__ import annotations

import numpy as np

LAYOUT = "mediapipe21"
NUM_JOINTS = 21
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip
#: finger chains, base to tip, without the wrist
FINGER_CHAINS: tuple[tuple[int, ...], ...] = tuple(tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(5))
#: parent of every joint (the wrist has -1)
PARENTS: tuple[int, ...] = (-1, *tuple(0 if k == 0 else 1 + 4 * f + k - 1 for f in range(5) for k in range(4)))
#: (parent, child) for the 20 bones
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS))
WRIST, MIDDLE_MCP, MIDDLE_PIP = 0, 9, 10
#: the reference bone used for normalisation (middle MCP -> PIP)
REF_BONE = (MIDDLE_MCP, MIDDLE_PIP)
#: extra lines drawn between MCPs (palm outline) by viewers
PALM_LINES: tuple[tuple[int, int], ...] = ((5, 9), (9, 13), (13, 17), (0, 17), (1, 5))

# ---------------------------------------------------------------------------------------------
# dataset conversions

#: RHD hand (21 points, wrist then each finger tip-first) -> mediapipe21 gather indices
_RHD_TO_MP = np.array([0] + [1 + 4 * f + (3 - k) for f in range(5) for k in range(4)])
#: STB (palm then pinky..thumb, each MCP-first) -> mediapipe21 gather indices (index 0 is the palm)
_STB_TO_MP = np.array([0] + [1 + 4 * (4 - f) + k for f in range(5) for k in range(4)])


def _inverse_perm(p: np.ndarray) -> np.ndarray:
    inv = np.empty_like(p)
    inv[p] = np.arange(len(p))
    return inv


def _check_joints(x: np.ndarray, n: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[-2] != n:
        raise ValueError(f"{what}: expected shape (..., {n}, D), got {x.shape}")
    return x


def from_rhd(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RHD's 42 points (left 0-20, right 21-41, each finger tip-first) -> (left, right) in mediapipe21."""
    kp = _check_joints(kp, 42, "RHD keypoints")
    return kp[..., :21, :][..., _RHD_TO_MP, :], kp[..., 21:, :][..., _RHD_TO_MP, :]


def to_rhd(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(left, right) mediapipe21 -> RHD's 42-point layout."""
    inv = _inverse_perm(_RHD_TO_MP)
    left, right = _check_joints(left, 21, "left"), _check_joints(right, 21, "right")
    return np.concatenate([left[..., inv, :], right[..., inv, :]], axis=-2)


def to_palm_root(joints: np.ndarray) -> np.ndarray:
    """Replace the wrist (joint 0) by the palm centre, (wrist + middle MCP) / 2."""
    j = _check_joints(joints, 21, "joints").copy()
    j[..., WRIST, :] = 0.5 * (j[..., WRIST, :] + j[..., MIDDLE_MCP, :])
    return j


def from_palm_root(joints: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_palm_root`: recover the wrist from the palm centre."""
    j = _check_joints(joints, 21, "joints").copy()
    j[..., WRIST, :] = 2.0 * j[..., WRIST, :] - j[..., MIDDLE_MCP, :]
    return j


def from_stb(kp: np.ndarray, *, millimetres: bool = True) -> np.ndarray:
    """STB (palm centre, then pinky..thumb MCP-first, mm) -> mediapipe21 with a wrist, in metres."""
    kp = _check_joints(kp, 21, "STB keypoints")
    j = kp[..., _STB_TO_MP, :]
    if millimetres and kp.shape[-1] == 3:
        j = j / 1000.0
    return from_palm_root(j)


def to_stb(joints: np.ndarray, *, millimetres: bool = True) -> np.ndarray:
    """mediapipe21 (metres) -> STB layout with the palm root (mm by default)."""
    j = to_palm_root(joints)[..., _inverse_perm(_STB_TO_MP), :]
    return j * 1000.0 if millimetres and j.shape[-1] == 3 else j


def from_freihand(kp: np.ndarray) -> np.ndarray:
    """FreiHAND already uses the mediapipe21 order."""
    return _check_joints(kp, 21, "FreiHAND keypoints").copy()


# ---------------------------------------------------------------------------------------------
# normalisation


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of the 20 bones, shape (..., 20)."""
    j = _check_joints(joints, 21, "joints")
    p = np.array([b[0] for b in BONES])
    c = np.array([b[1] for b in BONES])
    return np.linalg.norm(j[..., c, :] - j[..., p, :], axis=-1)


def reference_length(joints: np.ndarray) -> np.ndarray:
    """|middle MCP - middle PIP|, shape (...)."""
    j = _check_joints(joints, 21, "joints")
    return np.linalg.norm(j[..., MIDDLE_PIP, :] - j[..., MIDDLE_MCP, :], axis=-1)


def normalize(joints: np.ndarray, scale: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative (wrist) pose divided by the reference bone; returns (normalised, scale)."""
    j = _check_joints(joints, 21, "joints")
    s = reference_length(j) if scale is None else np.asarray(scale, dtype=np.float64)
    if np.any(s <= 0):
        raise ValueError("reference bone length must be positive")
    return (j - j[..., :1, :]) / s[..., None, None], s


def denormalize(norm: np.ndarray, scale: np.ndarray | float, root: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`normalize`: multiply by ``scale`` and add ``root`` (defaults to the origin)."""
    n = _check_joints(norm, 21, "normalised joints")
    out = n * np.asarray(scale, dtype=np.float64)[..., None, None]
    if root is not None:
        out = out + np.asarray(root, dtype=np.float64)[..., None, :]
    return out


def keypoint_extent(kp2d: np.ndarray) -> np.ndarray:
    """Side of the square box around 2D keypoints (max of width and height), shape (...)."""
    k = _check_joints(kp2d, 21, "2D keypoints")
    span = k.max(axis=-2) - k.min(axis=-2)
    return np.maximum(span.max(axis=-1), 1e-6)


#: how 2D keypoints are normalised for the 2D encoder (stored in checkpoints)
NORM_2D = "root_rel_div_extent"


def normalize_2d(kp2d: np.ndarray) -> np.ndarray:
    """2D encoder input: wrist-relative pixels divided by the keypoints' square extent (crop size)."""
    k = _check_joints(kp2d, 21, "2D keypoints")[..., :2]
    return (k - k[..., :1, :]) / keypoint_extent(k)[..., None, None]


#: left hands are mirrored to right hands (x negated in the root-relative frame) before the model and
#: mirrored back after it, so the model never meets the right/left depth-flip ambiguity
HANDEDNESS_CANON = "mirror_left"


def canonical_hand(x: np.ndarray, left: np.ndarray | bool) -> np.ndarray:
    """Negate the x coordinate of root-relative keypoints (2D or 3D) where ``left``; its own inverse."""
    out = np.array(x, dtype=np.float64, copy=True)
    sign = np.where(np.asarray(left, dtype=bool), -1.0, 1.0)
    out[..., 0] *= sign[..., None] if np.ndim(sign) else sign
    return out


def mirror_x(joints: np.ndarray) -> np.ndarray:
    """Mirror a pose across its x = 0 plane (turns a left hand into a right one and back)."""
    j = np.array(joints, dtype=np.float64, copy=True)
    j[..., 0] = -j[..., 0]
    return j
