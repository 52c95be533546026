"""Training recipe schema (YAML, validated by pydantic; unknown keys are errors with a suggestion)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from streamhand.configio import Settings
from streamhand.models.config import ModelConfig


class _Strict(Settings):
    pass


class NoiseConfig(_Strict):
    """2D keypoint noise shaped like a hand detector's: proportional to the hand's size in pixels."""

    #: per-sample sigma as a fraction of the hand extent (the least and the most)
    rel_sigma: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]] = (0.008, 0.035)
    hidden_extra: float = Field(1.5, ge=0)  # occluded joints get this much more noise
    outlier_prob: float = Field(0.03, ge=0, le=1)  # per joint: a large displacement (a detector's wrong finger)
    outlier_rel: float = Field(0.15, ge=0)
    min_px: float = Field(0.5, ge=0)


class WorldNoiseConfig(_Strict):
    """Simulated detector 3D (like MediaPipe's world landmarks) for samples without a real detector's output:
    the true wrist-relative joints turned by a small random rotation, each bone stretched a little, and
    per-joint noise, larger along the camera's viewing axis (the depth a monocular detector guesses). The
    defaults give about 23 mm mean wrist-relative error, the level of MediaPipe's world landmarks on real
    photographs (21-27 mm); on our renders MediaPipe's own is worse (about 48 mm: they are not real skin)."""

    rot_deg: float = Field(12.0, ge=0)  # sigma of the global rotation error
    bone_rel: float = Field(0.1, ge=0)  # sigma of each bone's relative length error
    joint_rel: float = Field(0.07, ge=0)  # sigma of per-joint noise, as a fraction of the palm size (x, y)
    depth_extra: float = Field(2.0, ge=1)  # the same along the viewing axis, times this


class DataConfig(_Strict):
    #: "synthetic": hands from streamhand.synth; "rhd", "stb", "rhd+stb": the published datasets' 3D labels and
    #: 2D keypoints (2D -> 3D; train on RHD's training split and STB's B2-B6, evaluate on RHD's evaluation
    #: split and STB's B1), read from ``rhd_root`` / ``stb_root``
    kind: Literal["synthetic", "rhd", "stb", "rhd+stb"] = "synthetic"
    rhd_root: str = "data/RHD_published_v2"
    stb_root: str = "data/STB"
    #: rendered crops for the image experts and decoders (set by the trainer from the model's encoders and
    #: decoders: rgb / depth crops, the depth crop's point cloud, the keypoints' heatmaps), the crops' side in
    #: pixels (the model's image_size), the box margin (the runtime's detect.crop_margin), the heatmaps' side
    #: and the cloud's points (the model's heatmap_size and cloud_points)
    crops: list[Literal["rgb", "depth", "cloud", "heatmap"]] = Field(default_factory=list)
    crop_size: int = Field(128, ge=16, le=512)
    crop_margin: float = Field(1.4, ge=1.0, le=3.0)  # streamhand.detect.crops.CROP_MARGIN
    heatmap_size: int = Field(32, ge=8, le=256)
    cloud_points: int = Field(256, ge=16, le=4096)
    crop_view: Literal["box", "turned"] = "box"  # set from the model's crop_view
    #: a published dataset's crop augmentation: "spurr" (shift, rotation +-45 degrees, scale, flips, colour
    #: jitter) or "yang" (Yang et al.: scale 1-1.2, shift +-20 px, rotation +-180 degrees, hue +-0.1)
    augment: Literal["spurr", "yang"] = "spurr"
    width: int = Field(640, ge=64, le=8192)
    height: int = Field(480, ge=64, le=8192)
    #: the nearest and farthest wrist distances sampled, metres
    depth_range: tuple[Annotated[float, Field(gt=0.05)], Annotated[float, Field(le=20)]] = (0.25, 0.9)
    facing_fraction: float = Field(0.7, ge=0, le=1)
    gesture_fraction: float = Field(0.5, ge=0, le=1)
    chunk: int = Field(16384, ge=64)  # samples generated at once
    #: 0: every batch is new data. N: the first N samples (whole batches) are made once and replayed, reshuffled
    #: every pass: for image experts whose crops cost far more than a step (a frozen trunk's features are then
    #: computed once per crop and kept instead of the crop: ``image_encoder: mediapipe``)
    pool_samples: int = Field(0, ge=0)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    world_noise: WorldNoiseConfig = Field(default_factory=WorldNoiseConfig)
    mediapipe_pairs: int = Field(0, ge=0)  # rendered hands to label with MediaPipe (0: none)
    #: where the MediaPipe-labelled hands come from: "renders" (``mediapipe_pairs`` of them) or "frames": your own
    #: folder in the real-frames format at ``root`` (images + labels.json with 3D truth), MediaPipe's 2D and world
    #: landmarks computed on your images (fine-tuning a shipped model on your camera and hands)
    dataset: Literal["renders", "frames"] = "renders"
    root: str | None = None
    mediapipe_fraction: float = Field(0.5, ge=0, le=1)  # share of each batch taken from them
    mediapipe_seed: int = 4242
    mediapipe_shards: int = Field(1, ge=1)  # made as this many caches (seeds mediapipe_seed + i), in parallel
    #: where the labelled renders are cached (``python -m train mediapipe-pairs --cache``'s default; ``--out-dir``
    #: does not move it, so a run elsewhere reuses the pairs already made)
    mediapipe_cache: str = "runs/cache"
    mediapipe_augment: bool = True  # turn each labelled render about the optical axis by a random angle
    #: share of MediaPipe-labelled samples whose world input is MediaPipe's own (the rest: simulated from the
    #: truth), since MediaPipe's 3D on renders is worse than on real hands and would teach the world expert
    #: to distrust it
    mediapipe_world_fraction: float = Field(0.3, ge=0, le=1)


class LossConfig(_Strict):
    #: poe: unimodal + fused ELBOs (Yang et al. S4); cross: one ELBO per encoder (Spurr et al.; Yang's S1/S2 by
    #: the decoders); align: a joint rgb+cloud encoder's and the RGB encoder's ELBOs + their KL (Yang's S3)
    objective: Literal["poe", "cross", "align"] = "poe"
    fused_kl: bool = True  # the fused posteriors' KL to the prior (Yang et al.'s Eq. 4 leaves it out)
    beta: float = Field(1e-3, ge=0)
    warmup_steps: int = Field(2000, ge=0)
    weight_3d: float = Field(1.0, ge=0)
    weight_2d: float = Field(0.5, ge=0)
    weight_heatmap: float = Field(0.01, ge=0)  # Yang et al.'s lambda_heat
    weight_cloud: float = Field(1.0, ge=0)  # Yang et al.'s lambda_cloud (Chamfer + Earth Mover's distance)
    #: 3D reconstruction term: "squared" (Gaussian likelihood, the papers') or "euclidean" (per-joint
    #: distance, the EPE itself: a conditional median rather than a mean where 2D is ambiguous)
    recon_3d: Literal["squared", "euclidean"] = "squared"


#: the fields of a :class:`TrainConfig` that say on what machine a run trained, not what it trained: another value
#: is the same recipe (``precision`` too: bf16 is recorded as fp32 where a CPU trained in fp32)
MACHINE_FIELDS = ("device", "workers", "precision")


class TrainConfig(_Strict):
    #: the run's folder under ``out_dir``: a plain name (letters, digits, ``._-``), not a path
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    seed: int = 0
    steps: int = Field(20000, ge=1)
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1e-4, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    weight_decay: float = Field(0.0, ge=0)
    #: matrix products in bfloat16 (autocast; weights, optimiser and evaluation stay float32): about
    #: twice the steps per second on CPUs with AVX512-BF16 and on GPUs; a CPU without bf16 arithmetic at speed
    #: (AVX2 alone) trains in fp32 instead (train.fit.precision_here)
    precision: Literal["fp32", "bf16"] = "fp32"
    #: where to train: "auto" takes a CUDA GPU when there is one. Under torchrun each process takes the GPU of
    #: its LOCAL_RANK and the model is wrapped in DistributedDataParallel (batch_size is per process)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: processes that make synthetic batches ahead of the training loop (0: made in the loop)
    workers: int = Field(0, ge=0, le=64)
    #: semi-supervision: the share of each batch that keeps its 3D labels; the rest train through the 2D
    #: reconstruction (or the cloud, heatmap and image ones) only (their 3D is neither encoded nor decoded)
    labelled_fraction: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _image_experts_on_renders(self) -> TrainConfig:
        m = self.model
        takes = {part for e in m.encoders for part in e.split("+")} | set(m.decoders)  # a joint encoder's two
        images = [x for x in ("rgb", "depth", "cloud", "heatmap") if x in takes]
        if images and self.data.dataset == "frames" and images != ["rgb"]:
            raise ValueError(f"your frames give colour crops only: {', '.join(x for x in images if x != 'rgb')} "
                             "train on renders or a published dataset's images")  # fmt: skip
        if images and self.data.dataset == "renders" and self.data.mediapipe_pairs:
            raise ValueError("image experts and decoders (rgb, depth, cloud, heatmap) train on synthetic renders, "
                             "a published dataset's images or your own frames, without mediapipe_pairs")  # fmt: skip
        if "stb" in self.data.kind and {"depth", "cloud"} & set(images):
            raise ValueError("STB has no depth images: depth and point-cloud experts train on RHD or synthetic "
                             "renders")  # fmt: skip
        self.data.crops, self.data.crop_size = images, m.image_size
        self.data.heatmap_size, self.data.cloud_points = m.heatmap_size, m.cloud_points
        self.data.crop_view = m.crop_view
        if self.data.kind != "synthetic" and images and m.crop_view == "turned":
            raise ValueError("turned crops train on renders: a published dataset's crops are Spurr's boxes")
        return self

    @model_validator(mode="after")
    def _ranges_in_order(self) -> TrainConfig:
        for name, (lo, hi) in (
            ("data.depth_range", self.data.depth_range),
            ("data.noise.rel_sigma", self.data.noise.rel_sigma),
        ):
            if lo > hi:
                raise ValueError(f"{name} [{lo:g}, {hi:g}]: the first is the least, the second the most")
        return self

    @model_validator(mode="after")
    def _frames_need_a_root(self) -> TrainConfig:
        d = self.data
        if d.dataset == "frames":
            if not d.root:
                raise ValueError("data.dataset frames needs data.root: the frames folder (images/ + labels.json)")
            if d.mediapipe_fraction == 0:
                raise ValueError("data.dataset frames with data.mediapipe_fraction 0 would never use the frames")
        return self

    @model_validator(mode="after")
    def _semi_needs_a_2d_target(self) -> TrainConfig:
        if self.labelled_fraction < 1.0 and not set(self.model.decoders) - {"3d"}:
            raise ValueError("labelled_fraction < 1 needs a 2d decoder (or a cloud, heatmap or image decoder: "
                             "model.decoders) for the unlabelled samples")  # fmt: skip
        return self

    eval_every: int = Field(2000, ge=1)
    eval_n: int = Field(1000, ge=10)
    checkpoint_every: int = Field(5000, ge=1)
    out_dir: str = "runs"
    #: start from this checkpoint's weights (a path or a shipped model's name: a fine-tuning stage); experts
    #: the checkpoint lacks start fresh
    init_from: str | None = None
    #: parts kept as they are (parameter-name prefixes: "encoders.2d", "decoders.3d", ...), e.g. to teach a new
    #: image expert the latent space of a trained model without moving it
    frozen: list[str] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
