"""Palm detection decoding and hand regions, as MediaPipe's hand graphs compute them (numpy only).

It owns the geometry around MediaPipe's two hand networks, reproduced from the graphs of mediapipe 0.10.21
(``palm_detection_cpu``, ``palm_detection_detection_to_roi``, ``hand_landmark_landmarks_to_roi`` and
``hand_landmark_cpu``):

* the palm detector's input: the image letterboxed (aspect kept, zero border) to 192x192, RGB in [0, 1];
* its SSD anchors (4 layers, strides 8/16/16/16, offset 0.5, fixed size: 2016 anchors), raw box decoding
  (scale 192), sigmoid scores (clipped at +-100), weighted non-max suppression (IoU 0.3), 7 keypoints;
* detection -> hand region: rotation from keypoint 0 (wrist) to keypoint 2 (middle finger MCP) to 90 degrees,
  then scale 2.6, shift_y -0.5, square on the long side;
* landmarks -> next region: the 12 stable landmarks (0-3, 5, 6, 9, 10, 13, 14, 17, 18), rotation from the wrist
  to the mean of the index/middle/ring MCPs (as HandLandmarksToRectCalculator weighs them), the bounding box in
  that rotated frame, then scale 2.0, shift_y -0.1, square on the long side;
* the rotated crop (the region's corners to the output's corners, bilinear) and its inverse for landmarks.

Regions here are in pixels (MediaPipe keeps them normalised by the image size: the same numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

PALM_INPUT = 192
LANDMARK_INPUT = 224
NUM_KEYPOINTS = 7
#: SsdAnchorsCalculator options of palm_detection_cpu (192x192 "full" model)
ANCHOR_STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
#: TensorsToDetectionsCalculator / NonMaxSuppressionCalculator options
BOX_SCALE = 192.0
SCORE_CLIP = 100.0
NMS_IOU = 0.3
#: regions (RectTransformationCalculator options)
PALM_SCALE, PALM_SHIFT_Y = 2.6, -0.5
LANDMARK_SCALE, LANDMARK_SHIFT_Y = 2.0, -0.1
#: AssociationNormRectCalculator: a palm region overlapping a tracked one by more than this IoU is dropped
ASSOCIATION_IOU = 0.5
#: landmarks that HandLandmarksToRectCalculator uses, and within them: wrist, index / middle / ring MCP
PARTIAL_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
_P_WRIST, _P_INDEX, _P_MIDDLE, _P_RING = 0, 4, 6, 8
#: TensorsToLandmarksCalculator's normalize_z for the hand landmark model
NORMALIZE_Z = 0.4


@dataclass
class PalmDetection:
    """One palm, in image pixels."""

    score: float
    box: np.ndarray  # (4,) xmin, ymin, xmax, ymax
    keypoints: np.ndarray  # (7, 2) x, y


@dataclass
class Region:
    """A rotated rectangle in image pixels (MediaPipe's NormalizedRect times the image size)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float  # radians; positive turns the crop's axes clockwise on the image (y down)


def normalize_radians(angle: float) -> float:
    """``angle`` wrapped into [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def ssd_anchors(
    input_size: int = PALM_INPUT, strides: tuple[int, ...] = ANCHOR_STRIDES, offset: float = ANCHOR_OFFSET
) -> np.ndarray:
    """(N, 2) anchor centres (x, y), normalised, in the model's output order (fixed-size anchors, aspect 1).

    Consecutive layers with one stride share a feature map; each layer adds two anchors per cell (aspect
    ratio 1 and the interpolated scale), so 4 layers with strides 8/16/16/16 give 24*24*2 + 12*12*6 = 2016.
    """
    out = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = 2 * (last - layer)
        fm = math.ceil(input_size / strides[layer])
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        centres = np.stack([(xs + offset) / fm, (ys + offset) / fm], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        layer = last
    return np.concatenate(out).astype(np.float32)


def decode_palms(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw palm outputs (N, 18) and (N,) or (N, 1) -> (scores (M,), boxes (M, 4) xyxy, keypoints (M, 7, 2)),
    normalised to the model's input, for the anchors whose score reaches ``min_score``."""
    raw_boxes = np.asarray(raw_boxes, np.float32).reshape(-1, 4 + 2 * NUM_KEYPOINTS)
    raw = np.clip(np.asarray(raw_scores, np.float32).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    if raw_boxes.shape[0] != anchors.shape[0] or raw.shape[0] != anchors.shape[0]:
        raise ValueError(f"expected {anchors.shape[0]} boxes and scores, got {raw_boxes.shape[0]} and {raw.shape[0]}")
    scores = 1.0 / (1.0 + np.exp(-raw))
    keep = np.flatnonzero(scores >= min_score)
    b, a = raw_boxes[keep], anchors[keep]
    cx = b[:, 0] / BOX_SCALE + a[:, 0]  # fixed-size anchors: w = h = 1
    cy = b[:, 1] / BOX_SCALE + a[:, 1]
    w, h = b[:, 2] / BOX_SCALE, b[:, 3] / BOX_SCALE
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    kps = b[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) / BOX_SCALE + a[:, None, :]
    return scores[keep], boxes, kps


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box ``a`` with each of ``b`` (M, 4); 0 where they do not overlap."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED non-max suppression: each kept detection is the score-weighted mean of the boxes
    and keypoints overlapping the best remaining one by more than ``iou`` (itself included), with the best
    one's score; in descending score order."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        top = order[0]
        overlap = box_iou(boxes[top], boxes[order]) > iou
        cand = order[overlap]
        cand = cand if cand.size else order[:1]
        wts = scores[cand][:, None]
        total = float(wts.sum())
        box = (boxes[cand] * wts).sum(0) / total
        kps = (keypoints[cand] * wts[:, :, None]).sum(0) / total
        out.append((float(scores[top]), box, kps))
        order = order[~overlap] if overlap.any() else order[1:]
    return out


def letterbox_matrix(width: int, height: int, size: int = PALM_INPUT) -> np.ndarray:
    """2x3 map from the letterboxed model input's pixels to the image's (the image centred, aspect kept)."""
    return region_matrix(Region(width / 2, height / 2, max(width, height), max(width, height), 0.0), size)


def region_matrix(region: Region, size: int) -> np.ndarray:
    """2x3 map from a ``size`` x ``size`` crop's pixel coordinates to the image's: the crop's corners
    (0, 0) .. (size, size) are the region's corners, as MediaPipe's ImageToTensorCalculator warps."""
    c, s = math.cos(region.rotation), math.sin(region.rotation)
    sx, sy = region.width / size, region.height / size
    return np.array(
        [
            [c * sx, -s * sy, region.cx - c * region.width / 2 + s * region.height / 2],
            [s * sx, c * sy, region.cy - s * region.width / 2 - c * region.height / 2],
        ],
        np.float64,
    )


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int, zero_border: bool) -> np.ndarray:
    """The ``size`` x ``size`` uint8 crop sampled (bilinear) through ``matrix`` (crop pixel -> image pixel)."""
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REPLICATE
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border, borderValue=(0, 0, 0))  # fmt: skip


def apply_matrix(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(..., 2) points through a 2x3 matrix."""
    pts = np.asarray(pts, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def palms_from_outputs(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    letterbox: np.ndarray,
    min_score: float = 0.5,
    size: int = PALM_INPUT,
) -> list[PalmDetection]:
    """One image's raw palm outputs -> palms in image pixels (after NMS, best first)."""
    scores, boxes, kps = decode_palms(raw_boxes, raw_scores, anchors, min_score)
    out = []
    for score, box, kp in weighted_nms(scores, boxes, kps):
        corners = apply_matrix(letterbox, box.reshape(2, 2) * size)
        out.append(PalmDetection(score, corners.reshape(4), apply_matrix(letterbox, kp * size)))
    return out


def transform_region(region: Region, scale: float, shift_x: float = 0.0, shift_y: float = 0.0) -> Region:
    """RectTransformationCalculator with square_long: shift along the region's own axes (in its own size),
    square on the long side, scale."""
    c, s = math.cos(region.rotation), math.sin(region.rotation)
    w, h = region.width, region.height
    cx = region.cx + w * shift_x * c - h * shift_y * s
    cy = region.cy + w * shift_x * s + h * shift_y * c
    side = max(w, h)
    return Region(cx, cy, side * scale, side * scale, region.rotation)


def rotation_to_target(p0: np.ndarray, p1: np.ndarray, target: float = math.pi / 2) -> float:
    """The rotation that turns the vector ``p0 -> p1`` (image pixels, y down) to ``target`` (90 deg: up)."""
    return normalize_radians(target - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0]))


def palm_to_region(palm: PalmDetection) -> Region:
    """PalmDetectionDetectionToRoi: the palm box, rotated wrist -> middle MCP to upright, grown to the hand."""
    x0, y0, x1, y1 = palm.box
    rot = rotation_to_target(palm.keypoints[0], palm.keypoints[2])
    raw = Region((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rot)
    return transform_region(raw, PALM_SCALE, 0.0, PALM_SHIFT_Y)


def landmarks_to_region(landmarks_px: np.ndarray) -> Region:
    """HandLandmarkLandmarksToRoi: the next frame's region from this frame's (21, 2) landmarks (pixels)."""
    pts = np.asarray(landmarks_px, np.float64)[list(PARTIAL_LANDMARKS), :2]
    mid = ((pts[_P_INDEX] + pts[_P_RING]) / 2 + pts[_P_MIDDLE]) / 2
    rot = rotation_to_target(pts[_P_WRIST], mid)
    centre = (pts.max(0) + pts.min(0)) / 2
    back = normalize_radians(-rot)
    c, s = math.cos(back), math.sin(back)
    d = pts - centre
    proj = np.stack([d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c], -1)
    pc = (proj.max(0) + proj.min(0)) / 2
    size = proj.max(0) - proj.min(0)
    cr, sr = math.cos(rot), math.sin(rot)
    cx = pc[0] * cr - pc[1] * sr + centre[0]
    cy = pc[0] * sr + pc[1] * cr + centre[1]
    return transform_region(Region(cx, cy, size[0], size[1], rot), LANDMARK_SCALE, 0.0, LANDMARK_SHIFT_Y)


def region_iou(a: Region, b: Region) -> float:
    """IoU of two regions' axis-aligned boxes (rotation ignored, as AssociationNormRectCalculator does)."""
    ba = np.array([a.cx - a.width / 2, a.cy - a.height / 2, a.cx + a.width / 2, a.cy + a.height / 2])
    bb = np.array([[b.cx - b.width / 2, b.cy - b.height / 2, b.cx + b.width / 2, b.cy + b.height / 2]])
    return float(box_iou(ba, bb)[0])


def associate(*streams: list[Region], threshold: float = ASSOCIATION_IOU) -> list[Region]:
    """AssociationNormRectCalculator: regions of all streams, a later one replacing any earlier one it
    overlaps by more than ``threshold`` (so tracked regions, passed last, win over new palm regions)."""
    out: list[Region] = []
    for stream in streams:
        for r in stream:
            out = [o for o in out if region_iou(o, r) <= threshold]
            out.append(r)
    return out
