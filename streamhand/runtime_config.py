"""Runtime settings for ``streamhand run`` (YAML via ``--config``; command-line flags override)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streamhand.modalities import InputModality
from streamhand.stream import protocol


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    kind: Literal["demo", "camera", "video", "images", "realsense"] = "demo"
    camera: str = "0"
    video: str | None = None
    images: str | None = None
    realsense_serial: str | None = None
    width: int | None = Field(None, ge=16, le=8192)
    height: int | None = Field(None, ge=16, le=8192)
    fps: float | None = Field(None, gt=0, le=1000)
    mirror: bool = False
    fov_deg: float = Field(60.0, gt=1, lt=179)
    intrinsics: str | None = None
    realtime: bool = True
    demo_hands: int = Field(2, ge=1, le=2)
    demo_seconds: float = Field(4.0, gt=0, le=60)


class DetectConfig(_Strict):
    max_hands: int = Field(2, ge=1, le=4)
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    model_complexity: int = Field(1, ge=0, le=1)
    crop_margin: float = Field(1.4, ge=1.0, le=3.0)  # streamhand.detect.crops.CROP_MARGIN
    #: "mediapipe": MediaPipe's own graph; "network": its palm and landmark networks run by our tracking on
    #: PyTorch or ONNX Runtime (a GPU path); "auto": the networks where there is a CUDA GPU, else MediaPipe
    detector: Literal["auto", "mediapipe", "network"] = "auto"
    #: "auto": PyTorch (CUDA graphs) on a GPU, ONNX Runtime on a CPU; "tensorrt": `build-engine --hand-networks`
    network_runtime: Literal["auto", "torch", "onnxruntime", "tensorrt"] = "auto"
    # MediaPipe's tracking (video) mode: "auto" = off for unrelated stills (an image folder), on for a
    # sequence (camera, video, RealSense, demo); "off" detects every frame on its own (static image mode)
    tracking: Literal["auto", "on", "off"] = "auto"

    @field_validator("tracking", mode="before")
    @classmethod
    def _yaml_bool(cls, v: object) -> object:
        """YAML reads a bare ``on``/``off`` as a boolean."""
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    def tracking_for(self, stills: bool) -> bool:
        """Whether to track across frames for a source of unrelated ``stills`` or of a sequence."""
        return self.tracking == "on" or (self.tracking == "auto" and not stills)


class ModelSettings(_Strict):
    path: str | None = None  # default: the shipped model
    backend: Literal["auto", "tensorrt", "onnxruntime", "torch"] = "auto"
    engine_dir: str = "engines"  # where `streamhand build-engine` writes; searched by the tensorrt backend
    modalities: list[InputModality] | None = None  # None: all the model and source support
    n_samples: int = Field(16, ge=0, le=256)
    #: wrist crease to middle fingertip (m); None: the user's calibration (streamhand calibrate-hand), else 0.185
    hand_length_m: float | None = Field(None, ge=0.05, le=0.4)
    threads: int = Field(1, ge=1, le=64)


class SmoothConfig(_Strict):
    enabled: bool = True
    min_cutoff: float = Field(1.5, gt=0)
    beta: float = Field(0.5, ge=0)


class PublishConfig(_Strict):
    bind: str = "127.0.0.1"
    port: int = Field(protocol.DEFAULT_PUB_PORT, ge=1, le=65535)
    control_port: int = Field(protocol.DEFAULT_CONTROL_PORT, ge=1, le=65535)
    sndhwm: int = Field(100, ge=1)
    status_hz: float = Field(1.0, gt=0, le=50)
    #: publish by connecting to a ``streamhand proxy`` (``tcp://host:port``) instead of binding ``port``
    connect: str | None = Field(None, pattern=r"^(tcp|ipc)://\S+$")
    #: the ``camera.id`` every message carries (default: the source's own, e.g. ``demo``, ``camera:0``)
    camera_id: str | None = Field(None, min_length=1, max_length=64)
    #: CurveZMQ (both or neither): this server's ``.key_secret`` and the folder of allowed clients' ``.key`` files
    curve_server_key: str | None = None
    curve_allowed: str | None = None

    @model_validator(mode="after")
    def _curve_pair(self) -> PublishConfig:
        if (self.curve_server_key is None) != (self.curve_allowed is None):
            raise ValueError("--curve-server-key and --curve-allowed go together")
        return self

    def curve(self) -> tuple[str, str] | None:
        return (self.curve_server_key, self.curve_allowed) if self.curve_server_key and self.curve_allowed else None

    @field_validator("control_port")
    @classmethod
    def _distinct(cls, v: int, info) -> int:
        if info.data.get("port") == v:
            raise ValueError("control port must differ from the PUB port")
        return v


class RunConfig(_Strict):
    source: SourceConfig = Field(default_factory=SourceConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    model: ModelSettings = Field(default_factory=ModelSettings)
    smooth: SmoothConfig = Field(default_factory=SmoothConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    frames: int | None = Field(None, ge=1)
    report: str | None = None
    show: bool = False
    compare_mediapipe: bool = False
    #: a stage busy with one frame for longer than this is reported as stalled (``status`` and the error log)
    watchdog_s: float = Field(10.0, gt=0)
