"""Detections -> metric, root-relative 3D joints with per-joint spread, through any backend.

The hand scale (reference bone length, metres) comes from the configured hand length (wrist to middle
fingertip along the finger) unless a caller supplies one (ground truth in evaluation, depth at runtime).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamhand.codec import (
    IMAGE_DEPTH_WEIGHT,
    decode_3d,
    encode_2d,
    encode_cloud,
    encode_world,
    mirror_crops,
    world_with_image_depth,
)
from streamhand.infer.base import Backend
from streamhand.place.hand_size import DEFAULT_HAND_LENGTH_M, chain_length
from streamhand.uncertainty import apply_calibration, modality_key

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_HAND_LENGTH_M", "LiftResult", "Lifter", "chain_length"]


@dataclass
class LiftResult:
    joints_norm: np.ndarray  # (B, 21, 3) normalised, in the hand's own handedness, camera axes
    joints_rel: np.ndarray  # (B, 21, 3) wrist-relative metres
    joint_std: np.ndarray  # (B, 21) metres, calibrated where the model carries a calibration
    scale: np.ndarray  # (B,) reference bone length used (metres)
    disagreement: np.ndarray | None = None  # (B, 21) metres: the fused experts' distance from the fused answer
    experts: str = ""  # the fused set of experts ("2d+world"): which error model judges the answer


class Lifter:
    def __init__(self, backend: Backend, hand_length_m: float = DEFAULT_HAND_LENGTH_M,
                 image_depth: float = IMAGE_DEPTH_WEIGHT):  # fmt: skip
        if not 0.05 <= hand_length_m <= 0.4:
            raise ValueError(f"hand length {hand_length_m} m is outside 0.05-0.4 m")
        if not 0.0 <= image_depth <= 1.0:
            raise ValueError(f"image depth weight {image_depth} is outside 0-1")
        self.backend = backend
        self.hand_length_m = hand_length_m
        #: the share of the detector's image-landmark depth in the world expert's depth (codec.world_with_image_depth)
        self.image_depth = image_depth
        self._unjudged: set[str] = set()  # sets of experts without a calibration, already warned of

    def __call__(
        self,
        landmarks_px: np.ndarray,
        left: np.ndarray,
        k: Any,
        scale: np.ndarray | None = None,
        images: dict[str, np.ndarray] | None = None,
        world: np.ndarray | None = None,
        modalities: tuple[str, ...] | None = None,
        landmarks_z: np.ndarray | None = None,
    ) -> LiftResult:
        """``k``: the camera's intrinsics (fx, fy, cx, cy; scalars or one per hand). ``world``: the detector's
        metric 3D landmarks (B, 21, 3), used where the model has a ``world`` expert; ``landmarks_z`` (B, 21): the
        detector's image landmarks' relative depth (``Detection.landmarks_z``), where given mixed into the world
        landmarks' depth (:func:`~streamhand.codec.world_with_image_depth`, ``image_depth``). ``modalities``: the
        experts to fuse (default: every one the model has and the inputs give)."""
        left = np.asarray(left, dtype=bool)
        use = set(self.backend.modalities if modalities is None else modalities) & set(self.backend.modalities)
        x2d, rot = encode_2d(landmarks_px, left, k)
        inputs = {"2d": x2d} if "2d" in use else {}
        if world is not None and "world" in use:
            if landmarks_z is not None:
                world = world_with_image_depth(world, landmarks_px, landmarks_z, self.image_depth)
            inputs["world"] = encode_world(world, left, rot)
        for m, v in (images or {}).items():
            if m == "cloud" and m in use:  # camera-frame points, turned and mirrored like the keypoints
                inputs[m] = encode_cloud(v, left, rot)
            elif m in use:  # crops of left hands are mirrored like their keypoints
                inputs[m] = mirror_crops(v, left)
        out = self.backend.infer(inputs)
        norm = decode_3d(out.joints, left, 1.0, rot)
        s = self.hand_length_m / np.maximum(chain_length(norm), 1e-6) if scale is None else np.asarray(scale, float)
        key = modality_key(inputs)
        cal = self.backend.std_calibration or {}
        if cal and key not in cal and key not in (self.backend.error_model or {}) and key not in self._unjudged:
            self._unjudged.add(key)  # said once: a model calibrated for other sets of experts only
            log.warning("the model has no calibration or error model for the experts %s: their joint_std is only the "
                        "posterior spread (0 without sampling); fit one with python -m train calibrate-std and "
                        "fit-error-model", key)  # fmt: skip
        std = apply_calibration(out.joint_std, cal.get(key), out.disagreement)
        dis = None if out.disagreement is None else out.disagreement * s[:, None]
        return LiftResult(norm, norm * s[:, None, None], std * s[:, None], s, dis, key)
