"""The backend interface: batched model inputs (numpy) in, normalised 3D joints and spread out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class BackendOutput:
    joints: np.ndarray  # (B, 21, 3) normalised, canonical (right-hand) frame
    joint_std: np.ndarray  # (B, 21) normalised units
    #: (B, 21) how far the fused experts' own answers lie from the fused one (normalised units), or None
    disagreement: np.ndarray | None = None


class Backend(ABC):
    """One class per runtime (torch, onnxruntime, tensorrt); all take and return numpy arrays."""

    name: str = "base"
    modalities: tuple[str, ...] = ()  # encoders the loaded model has
    image_size: int = 0  # side of rgb/depth crops, if the model has image encoders
    cloud_points: int = 256  # points of the depth crop's cloud, if the model has a cloud expert
    crop_view: str = "box"  # the rgb/depth crops' view the model was trained on (streamhand/detect/crops.py)
    model_id: str = "unknown"
    #: per fused-expert set, the joint_std calibration stored with the model (:mod:`streamhand.uncertainty`)
    std_calibration: dict | None = None
    #: per fused-expert set, the error model stored with the model (:mod:`streamhand.error_model`)
    error_model: dict | None = None
    #: why this backend was chosen (set by :func:`streamhand.infer.select.make_backend`)
    reason: str = ""

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        """``inputs``: "2d" (B, 21, 2) float32; "rgb" (B, 3, S, S), "depth" (B, 1, S, S) in [-0.5, 0.5]; "cloud"
        (B, P, 3) (:func:`streamhand.codec.encode_cloud`)."""

    def warm_up(self, modalities: tuple[str, ...], batch_sizes: range) -> None:
        """Prepare now what a first call with these experts and batch sizes would prepare mid-run (CUDA graphs);
        by default there is nothing to prepare."""
        return None

    def describe(self) -> str:
        return f"{self.name} ({self.model_id}, encoders {','.join(self.modalities)})"
