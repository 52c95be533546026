"""The hand's skin: one smooth template surface around the kinematic hand, and its skinning to any pose.

The template is our own geometry (no scanned or licensed model): a signed distance field of the reference
right hand in a slightly spread pose -- phalanges as tapered capsules with palmar finger pads, nails, dorsal
knuckles, a palm slab with thenar and hypothenar eminences and a distal pad, the thumb's web, a wrist and a
forearm -- joined by smooth minima (so no seams) and polygonised once by marching cubes
(:func:`build_template`, which needs scikit-image). The result ships as ``hand_mesh.npz`` beside this module and
loads without scikit-image (:func:`template`).

Skinning (:func:`pose_mesh`) is linear blend skinning from joints alone: every bone gets a frame (palm: wrist,
knuckle line and palm normal; each phalanx: carried down its finger by minimal rotations from the palm, the
way a hinge turns it), and a vertex follows a weighted blend of the affine maps that take each rest bone onto
the posed one (length along the bone, the hand's scale across it). Weights come from distances to the bones'
axes, restricted to a bone, its parent and its children, so that fingers never pull on their neighbours.
Left hands are the mirror image of right hands (the caller mirrors joints and the result).

Per-vertex attributes for shading: ``part`` (0 palm and forearm, 1 + 3 f + k the phalanx k of finger f, thumb
first), ``along`` (position along that bone, 0-1; for the palm, metres from the wrist toward the fingers),
``nail`` (0-1), ``side`` (-1 dorsal .. +1 palmar) and the rest position itself (procedural skin detail).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamhand.skeleton import FINGER_CHAINS, WRIST
from streamhand.synth.hand import NUM_ANGLES, SEGMENT_RADII, forward_kinematics

#: bump when the template's geometry or attributes change (``build_template`` writes it into the file)
MESH_VERSION = 1
MESH_FILE = Path(__file__).with_name("hand_mesh.npz")
#: forearm length of the template (metres below the wrist); longer forearms stretch its lower part
TEMPLATE_FOREARM = 0.12
#: the forearm's rigid top (metres below the wrist) that is never stretched
FOREARM_FIXED = 0.05
_D = np.deg2rad


def template_angles() -> np.ndarray:
    """The template's pose: flat fingers spread a little apart (so that each finger's surface is its own) and
    the thumb away from the palm."""
    a = np.zeros(NUM_ANGLES)
    a[0], a[1], a[2], a[4] = _D(8), _D(38), _D(8), _D(6)
    a[6], a[10], a[14], a[18] = _D(9), _D(0), _D(-9), _D(-20)
    return a


def template_joints() -> np.ndarray:
    """Rest joints (21, 3) of the template: the reference right hand in :func:`template_angles`."""
    return forward_kinematics(template_angles()[None])[0]


# ------------------------------------------------------------------------------------------------- bone frames
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def palm_frame(j: np.ndarray) -> np.ndarray:
    """Rotation (3, 3), columns (x toward the thumb side, y toward the knuckles, z out of the palm), of joints
    (21, 3) of a right hand."""
    mcp = (j[5] + j[9] + j[13] + j[17]) / 4
    y = _unit(mcp - j[WRIST])
    x = j[5] - j[17]
    x = _unit(x - np.dot(x, y) * y)
    return np.stack([x, y, np.cross(x, y)], 1)


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` onto unit vector ``b``."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -0.999999:  # opposite: any half turn about an axis normal to a
        axis = _unit(np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0]))
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def bone_frames(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of the 16 skinning bones of right-hand joints (21, 3): rotations (16, 3, 3) (column y along the
    bone), origins (16, 3) and lengths (16,). Bone 0 is the palm (origin the wrist, length the wrist-knuckle
    distance); bone 1 + 3 f + k is phalanx k of finger f (thumb first; the thumb's first is its metacarpal)."""
    rots = np.zeros((16, 3, 3))
    origins = np.zeros((16, 3))
    lengths = np.zeros(16)
    palm = palm_frame(j)
    rots[0], origins[0] = palm, j[WRIST]
    lengths[0] = np.linalg.norm((j[5] + j[9] + j[13] + j[17]) / 4 - j[WRIST])
    for f, chain in enumerate(FINGER_CHAINS):
        frame = palm
        for k in range(3):
            a, b = j[chain[k]], j[chain[k + 1]]
            d = _unit(b - a)
            frame = _min_rotation(frame[:, 1], d) @ frame
            i = 1 + 3 * f + k
            rots[i], origins[i], lengths[i] = frame, a, np.linalg.norm(b - a)
    return rots, origins, lengths


#: each bone's parent (-1: none) for the skinning weights' chain restriction
BONE_PARENT = np.array([-1] + [0 if k == 0 else 1 + 3 * f + k - 1 for f in range(5) for k in range(3)])


# ------------------------------------------------------------------------------------------------- the template
@dataclass(frozen=True)
class HandTemplate:
    vertices: np.ndarray  # (V, 3) float32, rest pose, right hand, hand frame, metres
    faces: np.ndarray  # (F, 3) int32, outward counter-clockwise
    bones: np.ndarray  # (V, 3) int32, skinning bones
    weights: np.ndarray  # (V, 3) float32, summing to 1
    part: np.ndarray  # (V,) float32
    along: np.ndarray  # (V,) float32
    nail: np.ndarray  # (V,) float32
    side: np.ndarray  # (V,) float32
    rest_joints: np.ndarray  # (21, 3)

    @property
    def forearm_y(self) -> np.ndarray:
        """Each vertex's height along the palm axis relative to the wrist (negative on the forearm)."""
        return (self.vertices - self.rest_joints[WRIST]) @ palm_frame(self.rest_joints)[:, 1]


def _seg(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of points (N, 3) to segment a-b and their clamped parameter along it."""
    ba = b - a
    t = np.clip(((p - a) @ ba) / max(ba @ ba, 1e-12), 0, 1)
    return np.linalg.norm(p - a - t[:, None] * ba, axis=1), t


def _capsule(p, a, b, ra, rb):
    d, t = _seg(p, a, b)
    return d - (ra + (rb - ra) * t)


def _ellipsoid(p, c, axes, radii):
    q = ((p - c) @ axes) / radii
    k = np.linalg.norm(q, axis=1)
    return (k - 1.0) * radii.min()


def _round_box(p, c, axes, half, r):
    q = np.abs((p - c) @ axes) - (half - r)
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0) - r


def _smin(a, b, k):
    h = np.maximum(k - np.abs(a - b), 0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _finger_radii(f: int) -> np.ndarray:
    """Radii at the four joints of finger f (base, two middle joints, tip), metres."""
    r = SEGMENT_RADII[f] / 1.2 * 1.08
    return np.array([r[0], 0.5 * (r[0] + r[1]), 0.5 * (r[1] + r[2]), 0.86 * r[2]])


def hand_sdf(p: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Signed distance (metres, approximate) of points (N, 3) to the template hand around joints ``j``."""
    frame = palm_frame(j)
    x, y, z = frame.T
    w = j[WRIST]
    mcp = (j[5] + j[9] + j[13] + j[17]) / 4
    ly = np.linalg.norm(mcp - w)
    lx = np.linalg.norm(j[5] - j[17])
    rel = p - w
    py = rel @ y
    # palm: a slab, narrower toward the wrist, thicker on the thumb side
    taper = 1.0 + 0.22 * np.clip((0.55 * ly - py) / ly, 0, 1)
    pp = p.copy()
    pp -= np.outer((rel @ x) * (1 - 1 / taper), x)
    c = w + 0.5 * ly * y + 0.06 * lx * x + 0.001 * z
    d = _round_box(pp, c, frame, np.array([0.5 * lx + 0.013, 0.5 * ly + 0.004, 0.0135]), 0.011)
    # thenar and hypothenar eminences, distal palmar pad, thumb metacarpal and web
    ax_t = _unit(j[2] - j[1])
    thenar_axes = np.stack([_unit(np.cross(ax_t, z)), ax_t, z], 1)
    d = _smin(d, _ellipsoid(p, 0.55 * j[1] + 0.45 * w + 0.006 * z + 0.004 * x, thenar_axes,
                            np.array([0.017, 0.030, 0.014])), 0.012)  # fmt: skip
    d = _smin(d, _ellipsoid(p, w + 0.45 * ly * y - (0.5 * lx + 0.004) * x + 0.006 * z, frame,
                            np.array([0.014, 0.032, 0.011])), 0.010)  # fmt: skip
    d = _smin(d, _ellipsoid(p, mcp - 0.008 * y + 0.008 * z + 0.03 * lx * x, frame,
                            np.array([0.5 * lx + 0.006, 0.011, 0.009])), 0.008)  # fmt: skip
    d = _smin(d, _capsule(p, j[1] - 0.004 * z, j[2], 0.0125, 0.0118), 0.016)
    # wrist and forearm: an elliptic cylinder, wider across than deep
    fa = np.stack([x * 1.0, y, z * 1.38], 1)  # squash z so a circle becomes an ellipse
    q = (p - w) @ fa
    dq, t = _seg(q, np.array([0.0, -0.004, 0.0]), np.array([0.0, -TEMPLATE_FOREARM, 0.0]))
    d = _smin(d, (dq - (0.0285 + 0.012 * t)) / 1.2, 0.014)
    # fingers: tapered capsules, palmar pads, dorsal knuckles, nails
    for f, chain in enumerate(FINGER_CHAINS):
        r = _finger_radii(f)
        dfing = np.full(len(p), np.inf)
        for k in range(3):
            a, b = j[chain[k]], j[chain[k + 1]]
            u = _unit(b - a)
            lat = _unit(x - np.dot(x, u) * u)
            palmar = np.cross(lat, u)
            if k == 2:  # the surface ends at the fingertip landmark
                b = b - u * r[3] * 0.9
            dfing = _smin(dfing, _capsule(p, a, b, r[k], r[k + 1]), 0.004)
            seg_len = np.linalg.norm(b - a)
            pad_c = a + u * (0.58 if k < 2 else 0.55) * seg_len + palmar * 0.32 * r[k]
            pad = _ellipsoid(p, pad_c, np.stack([lat, u, palmar], 1),
                             np.array([0.82 * r[k], 0.36 * seg_len + 0.002, 0.72 * r[k]]))  # fmt: skip
            dfing = _smin(dfing, pad, 0.004)
            if k == 2:  # a nail plate: a flat bump on the back of the last phalanx
                nc = a + u * 0.62 * seg_len - palmar * 0.74 * r[k + 1]
                nail = _ellipsoid(p, nc, np.stack([lat, u, palmar], 1),
                                  np.array([0.66 * r[k + 1], 0.34 * seg_len, 0.22 * r[k + 1]]))  # fmt: skip
                dfing = _smin(dfing, nail, 0.002)
            if f > 0 and k < 2:  # knuckles (MCP, PIP) on the back
                kn = a - palmar * 0.42 * r[k] - u * 0.002
                dfing = _smin(dfing, np.linalg.norm(p - kn, axis=1) - 0.72 * r[k], 0.005)
        d = _smin(d, dfing, 0.0075 if f > 0 else 0.010)
    return d


def _nail_weight(p: np.ndarray, j: np.ndarray) -> np.ndarray:
    """0-1 nail coverage of points on the template's surface."""
    x = palm_frame(j)[:, 0]
    out = np.zeros(len(p))
    for f, chain in enumerate(FINGER_CHAINS):
        a, b = j[chain[2]], j[chain[3]]
        u = _unit(b - a)
        lat = _unit(x - np.dot(x, u) * u)
        palmar = np.cross(lat, u)
        r = _finger_radii(f)[3]
        seg = np.linalg.norm(b - a)
        q = p - a
        t, s, n = (q @ u) / seg, (q @ lat) / r, (q @ palmar) / r
        inside = np.clip((0.95 - np.abs(s)) / 0.15, 0, 1) * np.clip((t - 0.36) / 0.06, 0, 1)
        inside *= np.clip((-n - 0.25) / 0.2, 0, 1) * np.clip((1.08 - t) / 0.05, 0, 1)
        out = np.maximum(out, inside)
    return out


def _skin_weights(p: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bones (V, 3), weights (V, 3), part (V,) and along (V,) of rest vertices."""
    n = len(p)
    rots = bone_frames(j)[0]
    dist = np.full((n, 16), np.inf)
    surf = np.full((n, 16), np.inf)
    along = np.zeros((n, 16))
    # the palm: distance to the lines from the wrist's base to each knuckle and the thumb's base
    w = j[WRIST]
    for m in (1, 5, 9, 13, 17):
        d, _ = _seg(p, w + 0.4 * (j[m] - w) if m == 1 else w, j[m])
        dist[:, 0] = np.minimum(dist[:, 0], d)
    dist[:, 0] = np.minimum(dist[:, 0], _seg(p, w, w - 0.3 * rots[0][:, 1])[0])
    surf[:, 0] = dist[:, 0] - 0.016
    along[:, 0] = (p - w) @ rots[0][:, 1]
    for f, chain in enumerate(FINGER_CHAINS):
        r = _finger_radii(f)
        for k in range(3):
            i = 1 + 3 * f + k
            d, t = _seg(p, j[chain[k]], j[chain[k + 1]])
            dist[:, i], along[:, i] = d, t
            surf[:, i] = d - (r[k] + (r[k + 1] - r[k]) * t)
    # the thumb's metacarpal lies inside the thenar: it competes as a thicker bone
    surf[:, 1] -= 0.006
    best = np.argmin(surf, axis=1)
    cand = np.stack([best, BONE_PARENT[best], np.zeros(n, int)], 1)
    # a bone's only child in a finger (the next phalanx); none after the last, the palm has five
    child = np.where((best > 0) & ((best - 1) % 3 < 2), best + 1, -1)
    cand[:, 2] = child
    dd = np.take_along_axis(dist, np.maximum(cand, 0), axis=1)
    wts = np.where(cand >= 0, 1.0 / np.maximum(dd, 1e-4) ** 6, 0.0)
    # the palm near a knuckle blends with that finger's first phalanx
    palm_rows = best == 0
    if palm_rows.any():
        firsts = np.array([1 + 3 * f for f in range(5)])
        nearest = firsts[np.argmin(dist[palm_rows][:, firsts], axis=1)]
        cand[palm_rows, 1] = nearest
        cand[palm_rows, 2] = -1
        dn = dist[palm_rows, nearest]
        wts[palm_rows, 1] = 1.0 / np.maximum(dn, 1e-4) ** 6
        wts[palm_rows, 2] = 0.0
        wts[palm_rows, 0] = 1.0 / np.maximum(dist[palm_rows, 0], 1e-4) ** 6
    # the thenar: the palm and the thumb's metacarpal share it, the metacarpal's share growing along it from the
    # base (all palm) to the thumb's knuckle (a split by distance folds the thenar when the thumb turns)
    thenar = ((cand[:, 0] == 0) & (cand[:, 1] == 1)) | (cand[:, 0] == 1)
    if thenar.any():
        t1 = np.clip((along[thenar, 1] - 0.1) / 0.8, 0, 1)
        share = t1 * t1 * (3 - 2 * t1)
        rows = np.flatnonzero(thenar)
        own = cand[rows, 0] == 1  # bone 1 itself: candidates (1, 0, 2)
        w12 = wts[rows][:, [0, 2]]
        w12 = w12 / np.maximum(w12.sum(1, keepdims=True), 1e-30)
        wts[rows, 0] = np.where(own, share * w12[:, 0], 1 - share)
        wts[rows, 1] = np.where(own, 1 - share, share)
        wts[rows, 2] = np.where(own, share * w12[:, 1], 0.0)
    wts = wts / wts.sum(axis=1, keepdims=True)
    cand = np.maximum(cand, 0)
    part = best.astype(np.float32)
    al = along[np.arange(n), best]
    return cand.astype(np.int32), wts.astype(np.float32), part, al.astype(np.float32)


def build_template(voxel: float = 0.0015, target_faces: int = 6000) -> HandTemplate:
    """Polygonise :func:`hand_sdf` around the template joints (marching cubes, scikit-image), simplify it to
    about ``target_faces`` triangles (quadric decimation, fast-simplification; 0 keeps every one) and compute
    the skinning weights and shading attributes. About 20-30 s; the result ships as :data:`MESH_FILE`."""
    from skimage.measure import marching_cubes

    j = template_joints()
    frame = palm_frame(j)
    lo = np.minimum(j.min(0), j[WRIST] - (TEMPLATE_FOREARM + 0.01) * frame[:, 1]) - 0.035
    hi = j.max(0) + 0.035
    axes = [np.arange(lo[i], hi[i] + voxel, voxel) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    vals = np.concatenate([hand_sdf(c, j) for c in np.array_split(grid, max(1, len(grid) // 200_000))])
    vol = vals.reshape(len(axes[0]), len(axes[1]), len(axes[2]))
    verts, faces, _, _ = marching_cubes(vol, 0.0, spacing=(voxel,) * 3)
    verts = verts + lo
    # keep the largest connected piece (stray specks of the field would float around the hand)
    faces = _largest_component(len(verts), faces)
    used = np.unique(faces)
    remap = np.full(len(verts), -1)
    remap[used] = np.arange(len(used))
    verts, faces = verts[used], remap[faces]
    if target_faces and len(faces) > target_faces:
        import fast_simplification

        verts, faces = fast_simplification.simplify(verts, faces.astype(np.int32), target_count=target_faces, agg=5)
    # marching cubes winds toward increasing field (outward); check with the signed volume
    vol6 = np.einsum("ij,ij->i", verts[faces[:, 0]], np.cross(verts[faces[:, 1]], verts[faces[:, 2]])).sum()
    if vol6 < 0:
        faces = faces[:, ::-1]
    bones, weights, part, along = _skin_weights(verts, j)
    rel = verts - j[WRIST]
    side = np.clip(_side(verts, j, part), -1, 1)
    palm_along = (rel @ frame[:, 1]).astype(np.float32)
    along = np.where(part == 0, palm_along, along).astype(np.float32)
    return HandTemplate(verts.astype(np.float32), faces.astype(np.int32), bones, weights, part, along,
                        _nail_weight(verts, j).astype(np.float32), side.astype(np.float32), j)  # fmt: skip


def _side(p: np.ndarray, j: np.ndarray, part: np.ndarray) -> np.ndarray:
    """-1 (back of the hand) .. +1 (palmar side) of each vertex, about its own bone."""
    rots, origins, _ = bone_frames(j)
    b = part.astype(int)
    rel = np.einsum("nij,ni->nj", rots[b], p - origins[b])
    r = np.where(b == 0, 0.012, 0.008)
    return rel[:, 2] / r


def _largest_component(n: int, faces: np.ndarray) -> np.ndarray:
    """The faces of the largest vertex-connected component."""
    parent = np.arange(n)

    def find(a: np.ndarray) -> np.ndarray:
        while True:
            pa = parent[a]
            if np.all(pa == a):
                return a
            parent[a] = parent[pa]
            a = parent[a]

    for _ in range(64):  # label propagation over edges until stable
        changed = False
        for e0, e1 in ((0, 1), (1, 2), (2, 0)):
            ra, rb = find(faces[:, e0]), find(faces[:, e1])
            lo = np.minimum(ra, rb)
            hi = np.maximum(ra, rb)
            m = lo != hi
            if m.any():
                changed = True
                np.minimum.at(parent, hi[m], lo[m])
        if not changed:
            break
    roots = find(np.arange(n))
    counts = np.bincount(roots[faces[:, 0]], minlength=n)
    keep = roots[faces[:, 0]] == np.argmax(counts)
    return faces[keep]


def save_template(t: HandTemplate, path: Path = MESH_FILE) -> None:
    np.savez_compressed(path, version=np.array(MESH_VERSION), vertices=t.vertices, faces=t.faces, bones=t.bones,
                        weights=t.weights, part=t.part, along=t.along, nail=t.nail, side=t.side,
                        rest_joints=t.rest_joints)  # fmt: skip


@functools.lru_cache(maxsize=1)
def template() -> HandTemplate:
    """The shipped template (:data:`MESH_FILE`); a missing or stale file is a RuntimeError naming the command
    that rebuilds it."""
    try:
        with np.load(MESH_FILE) as z:
            if int(z["version"]) != MESH_VERSION:
                raise RuntimeError(f"{MESH_FILE.name} is version {int(z['version'])}, expected {MESH_VERSION}")
            t = HandTemplate(**{k: z[k] for k in HandTemplate.__dataclass_fields__})
    except (OSError, KeyError) as e:
        msg = f"hand mesh {MESH_FILE} unreadable ({e}); rebuild it: python -m streamhand.synth.hand_mesh"
        raise RuntimeError(msg) from e
    return t


@dataclass(frozen=True)
class _Rest:
    """What skinning needs of the template, computed once."""

    rots: np.ndarray
    origins: np.ndarray
    lengths: np.ndarray
    weights: np.ndarray  # (V, 16) float32, dense
    normals: np.ndarray  # (V, 3) float32
    palm_axis: np.ndarray  # (3,) the palm's y axis
    forearm_shift: np.ndarray  # (V,) metres below the forearm's rigid top (0 above it)


@functools.lru_cache(maxsize=1)
def _rest() -> _Rest:
    t = template()
    rots, origins, lengths = bone_frames(t.rest_joints)
    dense = np.zeros((len(t.vertices), 16), np.float32)
    for c in range(3):
        np.add.at(dense, (np.arange(len(t.vertices)), t.bones[:, c]), t.weights[:, c])
    normals = vertex_normals(t.vertices.astype(np.float64), t.faces).astype(np.float32)
    shift = np.minimum(t.forearm_y + FOREARM_FIXED, 0.0).astype(np.float32)
    return _Rest(rots, origins, lengths, dense, normals, rots[0][:, 1].copy(), shift)


def pose_mesh(joints: np.ndarray, scale: float = 1.0, forearm_length: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Skin the template to right-hand joints (21, 3) (any rigid placement, e.g. the camera frame): vertices
    (V, 3) and unit normals (V, 3), float32. ``scale`` sets the thickness (the hand's size factor); lengths
    come from the joints. ``forearm_length`` (metres below the wrist) stretches the forearm."""
    t = template()
    rest = _rest()
    j = np.asarray(joints, dtype=np.float64)
    rots, origins, lengths = bone_frames(j)
    # per bone: v' = o' + R' S R^T (v - o), S = diag(scale, length ratio, scale) in the bone's frame
    ratio = lengths / np.maximum(rest.lengths, 1e-9)
    s_across = np.full(16, float(scale))
    s_across[0] = ratio[0]  # the palm scales as a whole with its length
    lin = np.einsum("bij,bj,bkj->bik", rots, np.stack([s_across, ratio, s_across], 1), rest.rots)
    aff = np.concatenate([lin, (origins - np.einsum("bij,bj->bi", lin, rest.origins))[:, :, None]], 2)
    rot = np.einsum("bij,bkj->bik", rots, rest.rots)  # the rotation part, for normals
    w = rest.weights
    blend = (w @ aff.reshape(16, 12).astype(np.float32)).reshape(-1, 3, 4)
    v = t.vertices
    stretch = (forearm_length / ratio[0] - FOREARM_FIXED) / (TEMPLATE_FOREARM - FOREARM_FIXED)
    if stretch != 1.0:
        v = v + np.outer(rest.forearm_shift, rest.palm_axis * (stretch - 1)).astype(np.float32)
    out = np.einsum("nij,nj->ni", blend[:, :, :3], v) + blend[:, :, 3]
    nrm = np.einsum("nij,nj->ni", (w @ rot.reshape(16, 9).astype(np.float32)).reshape(-1, 3, 3), rest.normals)
    return out.astype(np.float32), _unit(nrm).astype(np.float32)


#: the palm's thickness as capsules (half thickness, metres, reference hand) from part way up each metacarpal
PALM_RADIUS = 0.012
#: how far (metres from a surface) a nearby part of the hand still shades a vertex
CAVITY_REACH = 0.012


@functools.lru_cache(maxsize=1)
def _cavity_exclusions() -> np.ndarray:
    """(V, 19) True where occluder segment s cannot shade template vertex v: the segment is the vertex's own bone (the
    one weighing most in its skinning), that bone's parent or one of its children (the neighbours on its own
    surface; their creases are drawn)."""
    seg_bone = np.array([1 + 3 * f + k for f in range(5) for k in range(3)] + [0] * 4)
    ex = np.zeros((16, len(seg_bone)), bool)
    for b in range(16):
        near = {b, int(BONE_PARENT[b])} | {c for c in range(16) if BONE_PARENT[c] == b}
        ex[b] = np.isin(seg_bone, list(near))
    t = template()
    return ex[t.bones[np.arange(len(t.bones)), np.argmax(t.weights, 1)]]


def cavity_occlusion(joints: np.ndarray, verts: np.ndarray, normals: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """How open each vertex is to the room's light (V,) in 0.15-1: 1 where nothing of the hand is near in front of
    it, less in the gaps between fingers and where curled fingers meet the palm (ambient occlusion, from the
    phalanges and the palm as capsules). ``joints`` (21, 3) and the surface in the same frame."""
    j = np.asarray(joints, np.float64)
    a, b, r = [], [], []
    for f, chain in enumerate(FINGER_CHAINS):
        for k in range(3):
            a.append(j[chain[k]])
            b.append(j[chain[k + 1]])
            r.append(SEGMENT_RADII[f, k] / 1.2 * scale)
    for f in range(1, 5):
        mcp = j[FINGER_CHAINS[f][0]]
        a.append(j[WRIST] + 0.35 * (mcp - j[WRIST]))
        b.append(mcp)
        r.append(PALM_RADIUS * scale)
    a, b, rad = np.array(a), np.array(b), np.array(r)
    v = np.asarray(verts, np.float64)[:, None, :]
    ab = b - a
    t = np.clip(np.einsum("vsk,sk->vs", v - a, ab) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    d = a + t[..., None] * ab - v  # vertex -> nearest point of each axis
    dist = np.linalg.norm(d, axis=2)
    front = np.einsum("vsk,vk->vs", d, np.asarray(normals, np.float64)) / np.maximum(dist, 1e-9)
    gap = dist - rad
    occ = np.clip(1.0 - gap / CAVITY_REACH, 0.0, 1.0) ** 2 * np.clip(front, 0.0, 1.0)
    occ[_cavity_exclusions()] = 0.0
    return np.clip(1.0 - 0.8 * occ.sum(1), 0.15, 1.0).astype(np.float32)


def vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle mesh."""
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros_like(v)
    for c in range(3):
        np.add.at(n, faces[:, c], fn)
    return _unit(n)


if __name__ == "__main__":  # rebuild the shipped template
    import time

    t0 = time.perf_counter()
    tpl = build_template()
    save_template(tpl)
    print(f"{MESH_FILE.name}: {len(tpl.vertices)} vertices, {len(tpl.faces)} faces, {time.perf_counter() - t0:.1f} s")
