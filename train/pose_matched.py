"""Renders of real frames' poses: each real frame's hand drawn by our renderer in the frame's own 3D pose, seen
by the frame's camera from where the photograph's hand was, and stored as the photograph is (cut to its crop box
and resized to its file's size, then put back into the full frame), then read by MediaPipe as the photographs
are. Pose, view, camera and framing are the photograph's and only the look is the renderer's, so MediaPipe's
figures on these renders beside its figures on the photographs measure the renders' look alone, apart from the
poses and views the sampler draws (``python -m train synth-report --frames DIR``; docs/renders.md).

Only figures come out: nothing is kept of the renders, so frames licensed for measuring stay measured only."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from streamhand.skeleton import reference_length
from streamhand.synth.hand_mesh import template_joints
from streamhand.synth.render import render
from train.datasets.frames import FrameSet, cut, nearest_detection, uncrop
from train.progress import track
from train.world_depth import depth_reading

#: seeds of the frames' renders (scene, light, skin, camera effects): frame i is drawn with SEED + i
SEED = 4100


def render_frame_pose(frames: FrameSet, i: int, left: bool, seed: int = SEED) -> np.ndarray:
    """Frame ``i``'s hand (its truth, a ``left`` or right hand, the hand's size from its bones) drawn by the
    renderer through the frames' camera, stored as the frame's image is: a full frame (H, W, 3) RGB uint8."""
    j = frames.joints_cam[i]
    scale = float(reference_length(j) / reference_length(template_joints()))
    rgb = render(np.random.default_rng(seed + i), [j], frames.intrinsics, [scale], left=[left]).rgb
    box = frames.crop_boxes[i]
    if box is None:
        return rgb
    h, w = frames.stored(i).shape[:2]
    return uncrop(cv2.resize(cut(rgb, box), (w, h), interpolation=cv2.INTER_AREA), box, frames.intrinsics)


def pose_matched_figures(
    frames: FrameSet, hands: list[str | None], detector: Any, progress: bool = True
) -> dict[str, Any]:
    """MediaPipe (``detector``: rgb -> detections) on the renders of the frames' poses: the frames whose hand is
    known (``hands[i]``: "left" / "right", the labels' or MediaPipe's on the photograph; others are not drawn)
    are rendered (``rendered_n``), and of those: the share found (of several detections, the one nearest the
    truth counts), the share found with the hand drawn (``handedness_accuracy``), the landmarks' median error
    against the truth's projection (px; each hand's median joint distance) and the depth reading of MediaPipe's
    world landmarks (:func:`train.world_depth.depth_reading`), and how hand-like MediaPipe's networks find
    each render's hand where its truth is (``likeness``, :func:`train.hand_likeness.likeness_figures`). Rates and
    errors are None where nothing was found."""
    from train.hand_likeness import HandLikeness

    todo = [i for i, h in enumerate(hands) if h in ("left", "right")]
    found = hand_ok = 0
    likeness = HandLikeness()
    lm_err: list[float] = []
    worlds: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    for i in track(todo, description="renders of the frames' poses + MediaPipe", disable=not progress):
        uv = frames.joints_2d[i]
        rgb = render_frame_pose(frames, i, hands[i] == "left")
        likeness(rgb, uv)
        dets = detector(rgb)
        if not dets:
            continue
        d = nearest_detection(dets, uv)
        found += 1
        hand_ok += d.handedness == hands[i]
        lm_err.append(float(np.median(np.linalg.norm(d.landmarks_px - uv, axis=1))))
        worlds.append(d.world)
        truths.append(frames.joints_cam[i])
    likeness.close()
    n = len(todo)
    return {
        "rendered_n": n,
        "detection_rate": found / n if n else None,
        "handedness_accuracy": hand_ok / found if found else None,
        "landmark_error_px_median": float(np.median(lm_err)) if lm_err else None,
        "world_depth": depth_reading(np.array(worlds), np.array(truths)),
        "likeness": likeness.figures(),
    }
