"""Reader for a folder of one calibrated camera's frames (or hand crops cut from them) with 3D joint truth.

Layout of ``DIR``::

    DIR/labels.json
    DIR/images/<image>          (JPEG or PNG, named by each frame's ``image``)

``labels.json``: ``camera`` {width, height, fx, fy, cx, cy} of the full frame; ``layout`` "mediapipe21";
``units`` "mm"; ``frames``: a list of {``image``, ``joints_cam_mm`` (21x3, camera frame, OpenCV axes),
optional ``crop_box_xywh`` [x, y, w, h] (where the image was cut from the full frame, in pixels, before it
was scaled to its stored size), optional ``handedness`` "left" | "right"}.

Each frame is returned as a full camera frame so that the camera's real intrinsics apply: a crop is resized
back into its box on a blank (black) frame of the camera's size; an image of the camera's size without a
crop box is used as it is. Images are read when a frame is asked for, not all at once.

Handedness: the per-frame ``handedness`` label where given. Without one the evaluation takes the detector's
label (``--keypoints mediapipe``), or assumes a right hand where no detector runs (``--keypoints truth``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamhand.geometry import Intrinsics
from streamhand.skeleton import LAYOUT, NUM_JOINTS

__all__ = ["Frame", "FrameDataError", "FrameSet", "cut", "load_frames", "nearest_detection", "project", "uncrop"]


class FrameDataError(ValueError):
    """A frames folder that cannot be used; the message names the file and what is wrong, in one line."""


@dataclass
class Frame:
    index: int
    name: str  # the ``image`` entry
    rgb: np.ndarray  # (H, W, 3) uint8, the full camera frame
    joints_cam: np.ndarray  # (21, 3) metres, camera frame
    joints_2d: np.ndarray  # (21, 2) pixels: the truth's projection
    handedness: str | None  # "left" | "right" from the labels, None when not labelled


def uncrop(crop: np.ndarray, box: tuple[int, int, int, int], k: Intrinsics) -> np.ndarray:
    """A stored crop resized back into its ``box`` [x, y, w, h] on a black frame of the camera's size."""
    x, y, w, h = box
    big = cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((k.height, k.width, 3), np.uint8)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, k.width), min(y + h, k.height)
    canvas[y0:y1, x0:x1] = big[y0 - y : y1 - y, x0 - x : x1 - x]
    return canvas


def cut(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of a full frame inside ``box`` [x, y, w, h] (black where the box leaves the frame)."""
    x, y, w, h = box
    out = np.zeros((h, w, 3), rgb.dtype)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, rgb.shape[1]), min(y + h, rgb.shape[0])
    if x1 > x0 and y1 > y0:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = rgb[y0:y1, x0:x1]
    return out


def nearest_detection(detections: list[Any], joints_2d: np.ndarray) -> Any:
    """Of a frame's detections (each with ``landmarks_px`` (21, 2)), the one whose landmarks lie nearest the
    truth's projection ``joints_2d`` (mean joint distance): the one that counts against the frame's truth."""
    return min(detections, key=lambda d: float(np.linalg.norm(d.landmarks_px - joints_2d, axis=1).mean()))


def project(joints_cam: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Pinhole projection of (..., 3) camera-frame points to (..., 2) pixels."""
    j = np.asarray(joints_cam, np.float64)
    return j[..., :2] / j[..., 2:3] * np.array([k.fx, k.fy]) + np.array([k.cx, k.cy])


@dataclass
class FrameSet:
    root: Path
    intrinsics: Intrinsics
    joints_cam: np.ndarray  # (N, 21, 3) metres
    images: list[Path]
    crop_boxes: list[tuple[int, int, int, int] | None]
    handedness: list[str | None]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def joints_2d(self) -> np.ndarray:
        """(N, 21, 2) pixels: the exact projection of the truth."""
        return project(self.joints_cam, self.intrinsics)

    def stored(self, i: int) -> np.ndarray:
        """Frame ``i``'s image as stored (a crop at its file's size, or the full frame), RGB uint8."""
        path = self.images[i]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FrameDataError(f"cannot read image {path} (not a JPEG/PNG image?)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def image(self, i: int) -> np.ndarray:
        """Frame ``i`` as a full camera frame, RGB uint8 (height, width, 3)."""
        rgb, box, k = self.stored(i), self.crop_boxes[i], self.intrinsics
        if box is None:
            if rgb.shape[:2] != (k.height, k.width):
                raise FrameDataError(f"{self.images[i]}: image is {rgb.shape[1]}x{rgb.shape[0]}, not the camera's "
                                     f"{k.width}x{k.height}, and its frame has no crop_box_xywh")  # fmt: skip
            return rgb
        return uncrop(rgb, box, k)

    def frame(self, i: int) -> Frame:
        name = self.images[i].relative_to(self.root / "images").as_posix()
        return Frame(i, name, self.image(i), self.joints_cam[i], self.joints_2d[i], self.handedness[i])

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self.frame(i)


def _camera(cam: object, where: Path) -> Intrinsics:
    keys = ("width", "height", "fx", "fy", "cx", "cy")
    if not isinstance(cam, dict) or any(k not in cam for k in keys):
        raise FrameDataError(f"{where}: 'camera' needs {', '.join(keys)}")
    try:
        k = Intrinsics(int(cam["width"]), int(cam["height"]), *(float(cam[n]) for n in keys[2:]))
    except (TypeError, ValueError):
        raise FrameDataError(f"{where}: 'camera' values must be numbers") from None
    if min(k.width, k.height) <= 0 or min(k.fx, k.fy) <= 0 or not np.isfinite([k.fx, k.fy, k.cx, k.cy]).all():
        raise FrameDataError(f"{where}: 'camera' needs a positive width, height, fx and fy")
    return k


def _crop_box(f: dict, k: Intrinsics, where: str) -> tuple[int, int, int, int] | None:
    box = f.get("crop_box_xywh")
    if box is None:
        return None
    try:
        x, y, w, h = (int(round(float(v))) for v in box)
    except (TypeError, ValueError):
        raise FrameDataError(f"{where}: crop_box_xywh must be 4 numbers [x, y, w, h]") from None
    if w <= 0 or h <= 0 or x >= k.width or y >= k.height or x + w <= 0 or y + h <= 0:
        raise FrameDataError(f"{where}: crop_box_xywh {box} is empty or outside the {k.width}x{k.height} frame")
    return x, y, w, h


def load_frames(root: str | Path, limit: int | None = None) -> FrameSet:
    """Read ``root/labels.json`` and check that every image it names exists (images are decoded lazily)."""
    root = Path(root)
    if not root.is_dir():
        raise FrameDataError(f"frames folder not found: {root}")
    lab_path = root / "labels.json"
    if not lab_path.is_file():
        raise FrameDataError(f"labels not found: {lab_path} (expected labels.json beside images/)")
    try:
        lab = json.loads(lab_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FrameDataError(f"{lab_path}: not valid JSON ({e})") from None
    if not isinstance(lab, dict):
        raise FrameDataError(f"{lab_path}: expected a JSON object with camera, layout, units and frames")
    k = _camera(lab.get("camera"), lab_path)
    if lab.get("layout") != LAYOUT:
        raise FrameDataError(f"{lab_path}: layout {lab.get('layout')!r} is not supported; expected {LAYOUT!r}")
    if lab.get("units") != "mm":
        raise FrameDataError(f"{lab_path}: units {lab.get('units')!r} are not supported; expected 'mm'")
    frames = lab.get("frames")
    if not isinstance(frames, list) or not frames:
        raise FrameDataError(f"{lab_path}: no frames (expected a non-empty list 'frames')")
    frames = frames[:limit] if limit else frames
    joints, images, boxes, hands = [], [], [], []
    for i, f in enumerate(frames):
        where = f"{lab_path}: frame {i}"
        if not isinstance(f, dict) or not isinstance(f.get("image"), str) or not f["image"]:
            raise FrameDataError(f"{where}: needs 'image' (a file name under images/)")
        where = f"{where} ({f['image']})"
        try:
            j = np.asarray(f.get("joints_cam_mm"), dtype=np.float64)
        except (TypeError, ValueError):
            j = np.zeros(0)
        if j.shape != (NUM_JOINTS, 3) or not np.isfinite(j).all():
            raise FrameDataError(f"{where}: joints_cam_mm must be {NUM_JOINTS}x3 finite numbers")
        if (j[:, 2] <= 0).any():
            raise FrameDataError(f"{where}: joints_cam_mm has joints at or behind the camera (z <= 0)")
        hand = f.get("handedness")
        if hand is not None and hand not in ("left", "right"):
            raise FrameDataError(f"{where}: handedness {hand!r} must be 'left' or 'right'")
        path = root / "images" / f["image"]
        if not path.is_file():
            raise FrameDataError(f"image not found: {path} (named by {where})")
        joints.append(j / 1000.0)
        images.append(path)
        boxes.append(_crop_box(f, k, where))
        hands.append(hand)
    return FrameSet(root, k, np.stack(joints), images, boxes, hands)
