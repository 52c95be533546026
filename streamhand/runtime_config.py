"""Runtime settings for ``streamhand run`` (YAML via ``--config``; command-line flags override).

Each setting is written once, here: a field with its type, default and range, and, where the command line may
set it, its option (:class:`streamhand.options.Flag`); ``streamhand run``'s options are made from these fields."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from streamhand.codec import IMAGE_DEPTH_WEIGHT
from streamhand.configio import Settings
from streamhand.modalities import InputModality
from streamhand.modalities import parse as parse_modalities
from streamhand.options import Flag
from streamhand.place import smoothing
from streamhand.place.placement import RAY_PULL
from streamhand.stream import protocol


def not_one_sample(n: int | None) -> int | None:
    """``n`` posterior samples, where it is not 1: one sample has no spread (``joint_std`` would be 0); a ValueError
    says so (``run``'s setting, ``bench`` and ``build-engine``'s options)."""
    if n == 1:
        raise ValueError("one posterior sample has no spread; give 0 (no sampling) or 2 or more")
    return n


class _Strict(Settings):
    pass


class SourceConfig(_Strict):
    kind: Annotated[Literal["demo", "camera", "video", "images", "realsense"], Flag("--source")] = "demo"
    camera: Annotated[str, Flag("--camera", "camera index, device path or stream URL (http://, rtsp://)")] = "0"
    video: Annotated[str | None, Flag("--video", "video file")] = None
    images: Annotated[str | None, Flag("--images", "image folder or glob pattern")] = None
    realsense_serial: Annotated[str | None, Flag("--serial", "RealSense serial number")] = None
    realsense_file: Annotated[str | None, Flag("--realsense-file", "play a RealSense recording (.bag, .db3)")] = None
    width: Annotated[int | None, Flag("--width", "frame width (pixels)")] = Field(None, ge=16, le=8192)
    height: Annotated[int | None, Flag("--height", "frame height (pixels)")] = Field(None, ge=16, le=8192)
    fps: Annotated[float | None, Flag("--fps", "camera fps / image sequence pace")] = Field(None, gt=0, le=1000)
    mirror: Annotated[bool, Flag("--mirror", "the camera delivers a selfie (mirrored) view", switch=True)] = False
    fov_deg: Annotated[float, Flag("--fov", "assumed field of view across the longer side (degrees, 10-170)")] = Field(
        60.0, ge=10, le=170  # the fields of view --intrinsics takes for a camera's (Intrinsics.check_plausible)
    )
    intrinsics: Annotated[str | None, Flag("--intrinsics", "JSON/YAML with width, height, fx, fy, cx, cy")] = None
    realtime: Annotated[bool, Flag("--no-realtime", "read files/demo as fast as possible", switch=False)] = True
    demo_hands: Annotated[int, Flag("--demo-hands", "hands in the demo clip (1-2)")] = Field(2, ge=1, le=2)
    demo_seed: Annotated[
        int, Flag("--demo-seed", "another demo clip: the same script with other hands and scene (0: the demo)")
    ] = Field(0, ge=0)
    demo_seconds: float = Field(4.0, gt=0, le=60)

    @field_validator("camera", mode="before")
    @classmethod
    def _camera_index(cls, v: object) -> object:
        """YAML reads ``camera: 0`` as a number: an index is a camera's name as much as a device path is."""
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


#: each source's own setting -> the source (``kind``) it names
SOURCE_SETTINGS = {"camera": "camera", "video": "video", "images": "images", "realsense_file": "realsense",
                   "realsense_serial": "realsense"}  # fmt: skip


def source_kind_from_settings(source: dict) -> str | None:
    """The source that a config file's ``source`` settings name without a ``kind`` (``video: clip.mp4``: video), as
    its option would; None where they name none; a ValueError (one line) where they name two. The command line
    applies it once the file and its options are merged (an option's source then counts as given)."""
    named = [k for k in SOURCE_SETTINGS if source.get(k) is not None]
    kinds = sorted({SOURCE_SETTINGS[k] for k in named})
    if len(kinds) > 1:
        raise ValueError(f"source: {', '.join(named)} set: the settings of {len(kinds)} sources; choose one source "
                         "(or set its kind)")  # fmt: skip
    return kinds[0] if kinds else None


def other_source_setting(source: dict) -> tuple[str, str] | None:
    """(setting, the source it names) of a setting set beside a ``kind`` that names another source (``kind: demo``
    with ``video: clip.mp4``, as an edited ``--print-config`` dump has it); None where there is none. ``camera:
    '0'``, every dump's, counts as unset."""
    for key, named in SOURCE_SETTINGS.items():
        value = source.get(key)
        if value is not None and named != source.get("kind") and not (key == "camera" and str(value) == "0"):
            return key, named
    return None


class DetectConfig(_Strict):
    max_hands: Annotated[int, Flag("--max-hands", "hands to track (1-4)")] = Field(2, ge=1, le=4)
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    model_complexity: int = Field(1, ge=0, le=1)
    crop_margin: float = Field(1.4, ge=1.0, le=3.0)  # streamhand.detect.crops.CROP_MARGIN
    #: "mediapipe": MediaPipe's own graph; "network": its palm and landmark networks run by our tracking on
    #: PyTorch or ONNX Runtime (a GPU path); "auto": the networks where there is a CUDA GPU, else MediaPipe
    detector: Annotated[
        Literal["auto", "mediapipe", "network"],
        Flag("--detector", "auto | mediapipe | network (MediaPipe's networks, GPU)"),
    ] = "auto"
    #: "auto": PyTorch (CUDA graphs) on a GPU, ONNX Runtime on a CPU; "tensorrt": `build-engine --hand-networks`
    network_runtime: Annotated[
        Literal["auto", "torch", "onnxruntime", "tensorrt"],
        Flag("--detector-runtime", "network: auto | torch | onnxruntime | tensorrt"),
    ] = "auto"
    #: read every hand twice, from its crop and the crop mirrored, and average (MediaPipe's networks only; "auto"
    #: takes them for it on a CPU too): a little more accurate 3D at twice the landmark network's work
    flip_average: Annotated[
        bool, Flag("--flip-average", "average each hand's landmarks with its mirrored crop's (network detector)",
                   switch=True)
    ] = False
    # MediaPipe's tracking (video) mode: "auto" = off for unrelated stills (an image folder), on for a
    # sequence (camera, video, RealSense, demo); "off" detects every frame on its own (static image mode)
    tracking: Annotated[
        Literal["auto", "on", "off"], Flag("--tracking", "auto | on | off (auto: off for images, else on)")
    ] = "auto"

    @field_validator("tracking", mode="before")
    @classmethod
    def _yaml_bool(cls, v: object) -> object:
        """YAML reads a bare ``on``/``off`` as a boolean."""
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    def tracking_for(self, stills: bool) -> bool:
        """Whether to track across frames for a source of unrelated ``stills`` or of a sequence."""
        return self.tracking == "on" or (self.tracking == "auto" and not stills)


class ModelSettings(_Strict):
    path: Annotated[
        str | None, Flag("--model", "checkpoint (.pt) or a shipped model's name (`info`) (default: default)")
    ] = None
    backend: Annotated[Literal["auto", "tensorrt", "onnxruntime", "torch"], Flag("--backend")] = "auto"
    #: where `streamhand build-engine` writes; searched by the tensorrt backend
    engine_dir: Annotated[str, Flag("--engines", "TensorRT engines folder")] = "engines"
    #: None: all the model and source support
    modalities: Annotated[
        list[InputModality] | None,
        Flag("--modalities", "comma list of 2d,world,rgb,depth,cloud", parse=parse_modalities),
    ] = None
    #: posterior samples for the model's own spread; None: 0 where the model's error model judges the fused set
    #: of experts (joint_std then comes from it, streamhand.error_model), else 16; 0: none (a model without an error
    #: model then publishes its calibrated floor and the experts' disagreement alone); one sample has no spread, so 1
    #: is refused
    n_samples: Annotated[int | None, Flag(
        "--samples", "posterior samples for joint_std's spread (0 or 2-256; default: 0 where the model's error model "
        "judges the fused experts, else 16)")
    ] = Field(None, ge=0, le=256)  # fmt: skip
    #: wrist crease to middle fingertip (m); None: the user's calibration (streamhand calibrate-hand), else 0.185
    #: the range is place.hand_size.HAND_LENGTH_RANGE_M (calibrate-hand --length takes the same)
    hand_length_m: Annotated[
        float | None, Flag("--hand-size", "your hand's length, wrist crease to middle fingertip (0.12-0.25 m)")
    ] = Field(None, ge=0.12, le=0.25)
    #: the share of MediaPipe's image landmarks' relative depth in the depth the world expert reads (the rest: its
    #: world landmarks' depth; streamhand.codec.world_with_image_depth); 0: the world landmarks' depth alone
    image_depth: Annotated[float, Flag(
        "--image-depth", "share of MediaPipe's image-landmark depth in the world expert's depth (0-1; 0: its world "
        "landmarks' alone)")] = Field(IMAGE_DEPTH_WEIGHT, ge=0.0, le=1.0)  # fmt: skip
    #: the share of the way each placed joint moves across the image toward the ray through its 2D landmark
    #: (streamhand.place.placement.pull_to_rays); 0: the lifted shape as placed
    ray_pull: Annotated[float, Flag(
        "--ray-pull", "share of the way each placed joint moves across the image toward its 2D landmark's ray (0-1; "
        "0: the lifted shape as placed)")] = Field(RAY_PULL, ge=0.0, le=1.0)  # fmt: skip
    threads: int = Field(1, ge=1, le=64)
    #: ONNX Runtime's graphs: auto = int8 fully connected layers on a CPU (streamhand.infer.int8), fp32 elsewhere
    precision: Annotated[Literal["auto", "fp32", "int8"], Flag(
        "--precision", "ONNX Runtime weights: auto (int8 on a CPU, fp32 on a GPU), fp32 or int8")] = "auto"

    @field_validator("engine_dir")
    @classmethod
    def _engines_folder(cls, v: str) -> str:
        """A folder of engines that was named must be one; the default may be missing (no engines built), whether
        left out or written down (``run --print-config``'s output given back as a file)."""
        if v != cls.model_fields["engine_dir"].default and not Path(v).is_dir():
            raise ValueError(f"{v!r} is not a folder (streamhand build-engine --out writes engines into one)")
        return v

    @field_validator("modalities", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        """``modalities: 2d,world`` in a YAML file, as the option is written, as well as a list (not an empty one:
        leaving the key out means all that the model and source support)."""
        if isinstance(v, list) and not v:
            parse_modalities("", "modalities")  # says what to do
        return parse_modalities(v, "modalities") if isinstance(v, str) else v

    @field_validator("n_samples")
    @classmethod
    def _not_one(cls, v: int | None) -> int | None:
        return not_one_sample(v)


class SmoothConfig(_Strict):
    """One Euro per joint per track. The defaults were chosen on rendered clips other than the demo's (each one
    steady recording) for the least error with no measurable lag, and of those the least jitter (docs/usage.md,
    "Smoothing")."""

    enabled: Annotated[bool, Flag("--no-smooth", "publish the unsmoothed poses", switch=False)] = True
    min_cutoff: Annotated[float, Flag("--smooth-min-cutoff", "One Euro cutoff at rest (Hz)")] = Field(
        smoothing.MIN_CUTOFF, gt=0
    )
    beta: Annotated[float, Flag("--smooth-beta", "One Euro cutoff added per m/s of joint speed (Hz)")] = Field(
        smoothing.BETA, ge=0
    )
    d_cutoff: Annotated[float, Flag("--smooth-d-cutoff", "One Euro speed estimate's cutoff (Hz)")] = Field(
        smoothing.D_CUTOFF, gt=0
    )


class PublishConfig(_Strict):
    bind: Annotated[str, Flag("--bind", "address to bind")] = "127.0.0.1"
    port: Annotated[int, Flag("--port", "PUB port")] = Field(protocol.DEFAULT_PUB_PORT, ge=1, le=65535)
    control_port: Annotated[int, Flag("--control-port", "control port")] = Field(
        protocol.DEFAULT_CONTROL_PORT, ge=1, le=65535
    )
    sndhwm: int = Field(100, ge=1, le=2**31 - 1)  # ZeroMQ's is a C int
    status_hz: float = Field(1.0, gt=0, le=50)
    #: publish by connecting to a ``streamhand proxy`` (``tcp://host:port``) instead of binding ``port``
    connect: Annotated[str | None, Flag("--connect", "publish through a `streamhand proxy` at tcp://HOST:PORT")] = None
    #: the ``camera.id`` every message carries (default: the source's own, e.g. ``demo``, ``camera:0``)
    #: printable, without spaces at either end
    camera_id: Annotated[str | None, Flag("--camera-id", "camera.id in every message (one per process)")] = Field(
        None, min_length=1, max_length=64
    )
    #: CurveZMQ (both or neither): this server's ``.key_secret`` and the folder of allowed clients' ``.key`` files
    curve_server_key: Annotated[str | None, Flag("--curve-server-key", "CurveZMQ: this server's .key_secret")] = None
    curve_allowed: Annotated[str | None, Flag("--curve-allowed", "CurveZMQ: folder of allowed clients' .key")] = None
    #: hands whose ``confidence`` (the error model's) is below this are withheld or flagged; 0: none
    min_confidence: Annotated[float, Flag("--min-confidence", "withhold or flag hands below this confidence (0-1)")] = (
        Field(0.0, ge=0.0, le=1.0))  # fmt: skip
    low_confidence: Annotated[
        Literal["withhold", "flag"], Flag("--low-confidence", "withhold | flag the hands below --min-confidence")
    ] = "withhold"

    @field_validator("connect")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"(tcp|ipc)://\S+", v):
            raise ValueError(f"{v!r}: a proxy's endpoint, tcp://HOST:PORT (or ipc://PATH)")
        return v

    @field_validator("camera_id")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and (v != v.strip() or not v.isprintable()):
            raise ValueError(f"{v!r}: printable characters, without spaces at either end")
        return v

    @model_validator(mode="after")
    def _curve_pair(self) -> PublishConfig:
        if (self.curve_server_key is None) != (self.curve_allowed is None):
            raise ValueError("--curve-server-key and --curve-allowed go together")
        return self

    @model_validator(mode="after")
    def _curve_not_through_proxy(self) -> PublishConfig:
        """CurveZMQ with ``--connect``: the proxy has none, so the run's encrypted handshake would never complete and
        nothing would get through it; refused before any work."""
        if self.connect is not None and (self.curve_server_key is not None or self.curve_allowed is not None):
            raise ValueError("--curve-server-key/--curve-allowed cannot go with --connect: a `streamhand proxy` has no "
                             "CurveZMQ and forwards in the clear, so nothing would get through it; publish directly "
                             "with the keys (--bind, without --connect), or keep the proxy and its subscribers on a "
                             "network you trust (an SSH tunnel or VPN to its --backend-port)")  # fmt: skip
        return self

    def curve(self) -> tuple[str, str] | None:
        return (self.curve_server_key, self.curve_allowed) if self.curve_server_key and self.curve_allowed else None

    @model_validator(mode="after")
    def _distinct(self) -> PublishConfig:
        if self.port == self.control_port and self.connect is None:  # through a proxy ``port`` is not bound
            raise ValueError(f"the PUB port (--port) and the control port (--control-port) are both "
                             f"{self.port}; give them different ports")  # fmt: skip
        return self


class RunConfig(_Strict):
    source: SourceConfig = Field(default_factory=SourceConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    model: ModelSettings = Field(default_factory=ModelSettings)
    smooth: SmoothConfig = Field(default_factory=SmoothConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    frames: Annotated[int | None, Flag("--frames", "stop after N frames")] = Field(None, ge=1)
    report: Annotated[str | None, Flag("--report", "write a JSON run report here")] = None
    save: Annotated[str | None, Flag("--save", "write the poses to a file: .jsonl, .csv or .mcap")] = None
    save_video: Annotated[str | None, Flag("--save-video", "write the overlay video (.mp4, .avi, .mkv)")] = None
    rerun: Annotated[str | None, Flag("--rerun", "log to Rerun: FILE.rrd, or `spawn` (a viewer)")] = None
    show: Annotated[bool, Flag("--show", "preview window with overlay", switch=True)] = False
    compare_mediapipe: Annotated[bool, Flag("--compare-mediapipe", "also time MediaPipe alone", switch=True)] = False
    #: a stage busy with one frame for longer than this is reported as stalled (``status`` and the error log)
    watchdog_s: float = Field(10.0, gt=0)
