"""Encoders, decoders, the product of Gaussian experts and :class:`HandPoseModel`."""

from streamhand.models.config import ModelConfig
from streamhand.models.hand_pose_model import HandPoseModel, PoseOutput
from streamhand.models.poe import product_of_experts

__all__ = ["HandPoseModel", "ModelConfig", "PoseOutput", "product_of_experts"]
