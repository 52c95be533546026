"""Model hyper-parameters (stored inside every checkpoint)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from streamhand.configio import Settings
from streamhand.modalities import Modality

__all__ = ["Encoder", "Modality", "ModelConfig", "Target", "input_shape"]
#: encoders: one per modality, or "rgb+cloud", one joint encoder of the RGB crop and the depth crop's point cloud
#: (Yang et al.'s strategy S3), which stands in for the RGB expert when both inputs are given
Encoder = Literal["2d", "world", "3d", "rgb", "depth", "cloud", "rgb+cloud"]
Target = Literal["3d", "2d", "rgb", "depth", "cloud", "heatmap"]


class ModelConfig(Settings):
    """Which encoders and decoders a :class:`HandPoseModel` has, and their sizes."""

    z_dim: int = Field(64, ge=2, le=1024)
    hidden: int = Field(512, ge=16, le=4096)
    hidden_layers: int = Field(2, ge=1, le=8)  # Linear(hidden)+ReLU blocks (supplementary Table 1)
    encoders: list[Encoder] = Field(default_factory=lambda: ["2d", "3d"])
    decoders: list[Target] = Field(default_factory=lambda: ["3d", "2d"])
    image_size: int = Field(128, ge=32, le=512)  # square crops for rgb/depth encoders
    #: the rgb/depth encoders: "resnet18" (the papers'), "compact" (a small strided CNN; power-of-two crops) or
    #: "mediapipe" (rgb only: MediaPipe's landmark network's trunk, frozen, and a head; 224-pixel crops;
    #: streamhand/models/mediapipe_trunk.py)
    image_encoder: Literal["resnet18", "compact", "mediapipe"] = "resnet18"
    #: the rgb/depth crops' view: "box" (the image's square box around the hand) or "turned" (the virtual camera the
    #: 2D is encoded in; streamhand/detect/crops.py). The runtime crops as the model was trained.
    crop_view: Literal["box", "turned"] = "box"
    #: image encoders per image modality whose answers are pooled into that modality's one expert (the mean of
    #: their Gaussians, moment-matched): several training runs' image experts over one set of keypoint experts
    #: (``python -m train ensemble``), at one image encoder's cost each
    image_ensemble: int = Field(1, ge=1, le=8)
    image_decoder_channels: list[int] = Field(default_factory=lambda: [128, 64, 32, 16, 8])
    cloud_points: int = Field(256, ge=16, le=4096)  # points sampled from the depth crop (the cloud expert's input)
    heatmap_size: int = Field(32, ge=8, le=256)  # side of the heatmap decoder's maps
    num_joints: int = 21
    #: "poe": the cross-modal VAE with a product of experts (Spurr et al., Yang et al.); "dcmls": the
    #: disentangled cross-modal latent space (Gu et al.; streamhand/models/dcmls.py)
    architecture: Literal["poe", "dcmls"] = "poe"
    pose_ratio: float = Field(0.5, gt=0.0, lt=1.0)  # dcmls: the hand-pose part's share of z (gamma_z)
    disentangle: bool = True  # dcmls: split z into pose and context (off: z is all pose, no translator)
    pose_discriminator: bool = True  # dcmls: D_h aligns the two pose parts
    context_discriminator: bool = True  # dcmls: D_c judges the translated context

    @model_validator(mode="after")
    def _image_decoders_make_the_crop_size(self) -> ModelConfig:
        if self.image_ensemble > 1 and self.architecture != "poe":
            raise ValueError(f"image_ensemble {self.image_ensemble}: ensembles of image encoders are built for the "
                             "product-of-experts architecture (poe), not dcmls")  # fmt: skip
        if self.image_encoder == "mediapipe":
            from streamhand.models.mediapipe_trunk import TRUNK_INPUT

            if self.image_size != TRUNK_INPUT:
                raise ValueError(f"image_encoder mediapipe reads {TRUNK_INPUT}x{TRUNK_INPUT} crops: set image_size "
                                 f"{TRUNK_INPUT}, not {self.image_size}")  # fmt: skip
            if any(m in ("depth", "rgb+cloud") for m in self.encoders) or self.architecture != "poe":
                raise ValueError("image_encoder mediapipe is an RGB expert of the product-of-experts model: "
                                 "no depth or rgb+cloud encoder, architecture poe")  # fmt: skip
        made = 4 * 2 ** (len(self.image_decoder_channels) + 1)
        if any(t in ("rgb", "depth") for t in self.decoders) and made != self.image_size:
            n = (self.image_size // 4).bit_length() - 2
            raise ValueError(f"image decoders make {made}x{made} images but crops are {self.image_size}x"
                             f"{self.image_size}: give image_decoder_channels {n} entries")  # fmt: skip
        side = round(self.cloud_points**0.5)
        if "cloud" in self.decoders and side * side != self.cloud_points:
            raise ValueError(f"the cloud decoder folds a square grid: cloud_points must be a square (e.g. "
                             f"{side * side} or {(side + 1) ** 2}), got {self.cloud_points}")  # fmt: skip
        return self


def input_shape(cfg: ModelConfig, modality: str, batch: int | str = "B") -> tuple:
    """The shape of a model's input of ``modality``: "2d" (B, 21, 2), "world" (B, 21, 3), "rgb" (B, 3, S, S),
    "depth" (B, 1, S, S), "cloud" (B, P, 3)."""
    s, j, p = cfg.image_size, cfg.num_joints, cfg.cloud_points
    return {"2d": (batch, j, 2), "world": (batch, j, 3), "rgb": (batch, 3, s, s), "depth": (batch, 1, s, s),
            "cloud": (batch, p, 3)}[modality]  # fmt: skip
