"""Encoders, decoders, the product of Gaussian experts, :class:`HandPoseModel` and the DCMLS model, built from
a :class:`ModelConfig` by :func:`build_model`."""

from streamhand.models.config import ModelConfig
from streamhand.models.hand_pose_model import HandPoseModel, PoseOutput
from streamhand.models.poe import product_of_experts


def build_model(cfg: ModelConfig):
    """The model ``cfg.architecture`` names."""
    if cfg.architecture == "dcmls":
        from streamhand.models.dcmls import DisentangledModel

        return DisentangledModel(cfg)
    return HandPoseModel(cfg)


__all__ = ["HandPoseModel", "ModelConfig", "PoseOutput", "build_model", "product_of_experts"]
