"""Image samples of the published datasets, prepared as Spurr et al.: the hand crop (centred on the keypoints,
side twice their extent, kept inside the image, resized to 256x256), augmentation (shift, rotation, scale,
horizontal flip with the handedness swapped, colour jitter) and images in [-0.5, 0.5].

* RHD v2 (``<split>/color/%05d.png``, ``depth/%05d.png`` — depth in metres = (R * 256 + G) / 65535 * 5 —,
  ``mask/%05d.png``): one hand per image, the side whose mask covers more pixels (mask ids 2-17 left, 18-33
  right), as Spurr's protocol.
* STB (``<sequence>/SK_color_%d.png``), the labels of :func:`train.datasets.real.load_stb`.
* FreiHAND (``<split>/rgb/%08d.jpg``; the training images repeat the 32 560 labels for each background).

A missing file is named in the error. Keypoints stay in mediapipe21 order; 3D joints in metres, camera frame.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamhand.skeleton import from_rhd
from train.datasets.real import HandSet, _project, load_freihand, load_stb

RHD_LEFT_IDS, RHD_RIGHT_IDS = range(2, 18), range(18, 34)
CROP_SIZE = 256


class ImageDataError(FileNotFoundError):
    """A dataset folder that lacks a file the format requires (the message names it)."""


@dataclass
class ImageHandSet:
    hands: HandSet
    images: list[Path]
    depths: list[Path | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def _need(p: Path) -> Path:
    if not p.is_file():
        raise ImageDataError(f"expected {p}")
    return p


def read_rhd_depth(path: str | Path) -> np.ndarray:
    """RHD's depth PNG -> metres (H, W) float32: the top 8 bits in red, the bottom 8 in green, 5 m full scale."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDataError(f"unreadable depth image {path}")
    r, g = bgr[..., 2].astype(np.float32), bgr[..., 1].astype(np.float32)
    return (r * 256.0 + g) / 65535.0 * 5.0


def rhd_hand_side(mask: np.ndarray) -> bool:
    """True (left) where the left hand's mask ids cover more pixels than the right's."""
    ids = np.bincount(mask.ravel().astype(np.int64), minlength=34)
    return int(ids[list(RHD_LEFT_IDS)].sum()) > int(ids[list(RHD_RIGHT_IDS)].sum())


def load_rhd_images(root: str | Path, split: str = "training") -> ImageHandSet:
    """One hand per RHD image (the larger by mask area), with its colour and depth files."""
    base = Path(root) / split
    anno_p = _need(base / f"anno_{split}.pickle")
    with anno_p.open("rb") as f:
        anno = pickle.load(f)
    cams, uvs, lefts, ks, images, depths = [], [], [], [], [], []
    for key in sorted(anno):
        a = anno[key]
        mask = cv2.imread(str(_need(base / "mask" / f"{key:05d}.png")), cv2.IMREAD_UNCHANGED)
        left = rhd_hand_side(mask if mask.ndim == 2 else mask[..., 0])
        lj, rj = from_rhd(np.asarray(a["xyz"], float))
        j = lj if left else rj
        cams.append(j)
        uvs.append(_project(j, a["K"]))
        lefts.append(left)
        ks.append(np.asarray(a["K"], float))
        images.append(_need(base / "color" / f"{key:05d}.png"))
        depths.append(_need(base / "depth" / f"{key:05d}.png"))
    hands = HandSet(np.array(cams).reshape(-1, 21, 3), np.array(uvs).reshape(-1, 21, 2), np.array(lefts, bool),
                    "rhd", np.array(ks).reshape(-1, 3, 3))  # fmt: skip
    return ImageHandSet(hands, images, depths)


def load_stb_images(root: str | Path, sequences: tuple[str, ...] = ("B1Counting", "B1Random")) -> ImageHandSet:
    hands = load_stb(root, sequences)
    per = len(hands) // len(sequences)
    images = [_need(Path(root) / seq / f"SK_color_{i}.png") for seq in sequences for i in range(per)]
    return ImageHandSet(hands, images, [None] * len(images))


def load_freihand_images(root: str | Path, split: str = "training") -> ImageHandSet:
    hands = load_freihand(root, split)
    images = [_need(Path(root) / split / "rgb" / f"{i:08d}.jpg") for i in range(len(hands))]
    return ImageHandSet(hands, images, [None] * len(images))


IMAGE_LOADERS = {"rhd": load_rhd_images, "stb": load_stb_images, "freihand": load_freihand_images}


def crop_transform(kp2d: np.ndarray, width: int, height: int, size: int = CROP_SIZE, scale: float = 2.0) -> np.ndarray:
    """The 2x3 affine from the image to Spurr's square crop: centred on the keypoints' box, side ``scale`` x
    its longer extent (at most the image's shorter side), shifted to lie inside the image."""
    lo, hi = kp2d.min(0), kp2d.max(0)
    side = float(min(max(scale * float((hi - lo).max()), 8.0), min(width, height)))
    c = 0.5 * (lo + hi)
    x0 = float(np.clip(c[0] - side / 2, 0, width - side))
    y0 = float(np.clip(c[1] - side / 2, 0, height - side))
    s = size / side
    return np.array([[s, 0, -s * x0], [0, s, -s * y0]])


@dataclass
class AugmentConfig:
    shift_px: float = 20.0  # in pixels of a 256x256 crop (scaled with the crop's side)
    rotation_deg: float = 45.0
    scale: tuple[float, float] = (1.0, 1.2)
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue_deg: float = 10.0


#: the papers' augmentations by name (``DataConfig.augment``): Spurr et al.'s, and Yang et al.'s (hue +-0.1 of
#: the colour circle, no other colour change, no flips)
AUGMENTATIONS = {
    "spurr": AugmentConfig(),
    "yang": AugmentConfig(rotation_deg=180.0, flip=False, brightness=0.0, contrast=0.0, saturation=0.0, hue_deg=36.0),
}


def augmentation(rng: np.random.Generator, cfg: AugmentConfig, size: int = CROP_SIZE) -> tuple[np.ndarray, bool, float]:
    """A random 2x3 affine about the crop centre (shift, rotation, scale, flip), whether it flips, its angle."""
    ang = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    sc = rng.uniform(*cfg.scale)
    flip = bool(cfg.flip and rng.random() < 0.5)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), ang, sc)
    shift = cfg.shift_px * size / CROP_SIZE
    m[:, 2] += rng.uniform(-shift, shift, 2)
    if flip:
        m = np.array([[-1, 0, size], [0, 1, 0]]) @ np.vstack([m, [0, 0, 1]])
    return m, flip, float(ang)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 affine doing ``b`` then ``a``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def colour_jitter(rgb: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue, on a float RGB image in [0, 1]."""
    x = rgb * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    x = (x - x.mean()) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + x.mean()
    grey = x.mean(-1, keepdims=True)
    x = grey + (x - grey) * (1 + rng.uniform(-cfg.saturation, cfg.saturation))
    hsv = cv2.cvtColor(np.clip(x, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_deg, cfg.hue_deg)) % 360
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def image_sample(ds: ImageHandSet, i: int, rng: np.random.Generator | None = None,
                 aug: AugmentConfig | None = None, size: int = CROP_SIZE) -> dict[str, np.ndarray]:  # fmt: skip
    """Sample ``i``: ``rgb`` (3, S, S) in [-0.5, 0.5], ``depth`` (1, S, S) in metres or absent, ``kp2d`` (21, 2) in
    crop pixels, ``joints_cam`` (21, 3) (turned with the crop's rotation about the optical axis and mirrored
    with a flip), ``left`` (after a flip), ``k`` the crop's intrinsics (fx, fy, cx, cy): ``joints_cam`` seen
    through them is ``kp2d``."""
    bgr = cv2.imread(str(ds.images[i]), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDataError(f"unreadable image {ds.images[i]}")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    h, w = rgb.shape[:2]
    kp = ds.hands.joints_2d[i]
    m = crop_transform(kp, w, h, size)
    joints, left, flip, ang = ds.hands.joints_cam[i].copy(), bool(ds.hands.left[i]), False, 0.0
    if rng is not None and aug is not None:
        a, flip, ang = augmentation(rng, aug, size)
        m = compose(a, m)
    out_rgb = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if rng is not None and aug is not None:
        out_rgb = colour_jitter(out_rgb, rng, aug)
    kp_c = kp @ m[:, :2].T + m[:, 2]
    t = np.deg2rad(ang)  # cv2's positive angle turns the image anticlockwise: image y points down
    rot = np.array([[np.cos(t), np.sin(t), 0], [-np.sin(t), np.cos(t), 0], [0, 0, 1]])
    joints = joints @ rot.T
    if flip:
        joints[:, 0] *= -1
        left = not left
    k = ds.hands.k[i]
    s = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # the crop's uniform scale (a flip changes the sign only)
    c = m @ np.array([k[0, 2], k[1, 2], 1.0])  # the principal point in the crop
    out = {"rgb": (np.clip(out_rgb, 0, 1) - 0.5).transpose(2, 0, 1).astype(np.float32), "kp2d": kp_c,
           "joints_cam": joints, "left": np.array(left),
           "k": np.array([s * k[0, 0], s * k[1, 1], c[0], c[1]])}  # fmt: skip
    if ds.depths and ds.depths[i] is not None:
        d = read_rhd_depth(ds.depths[i])
        out["depth"] = cv2.warpAffine(d, m, (size, size), flags=cv2.INTER_NEAREST)[None].astype(np.float32)
    return out
