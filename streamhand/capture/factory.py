"""Build the frame source a :class:`~streamhand.runtime_config.SourceConfig` describes, and say which of its
settings that source does not use (:func:`unused_settings`)."""

from __future__ import annotations

from streamhand.capture.base import FrameSource, SourceError
from streamhand.geometry import Intrinsics
from streamhand.runtime_config import SourceConfig


def unused_settings(cfg: SourceConfig) -> list[str]:
    """A warning for each setting given that the chosen source does not use (a setting at its default counts as
    not given): the options, and why they have no effect."""
    defaults = SourceConfig()
    given = {o: v for o, v, default in (
        ("--width", cfg.width, None), ("--height", cfg.height, None), ("--fps", cfg.fps, None),
        ("--intrinsics", cfg.intrinsics, None), ("--mirror", cfg.mirror, False),
        ("--fov", cfg.fov_deg, defaults.fov_deg), ("--no-realtime", not cfg.realtime, False),
        ("--demo-hands", cfg.demo_hands, defaults.demo_hands), ("--demo-seed", cfg.demo_seed, defaults.demo_seed),
    ) if v is not None and v != default}  # fmt: skip
    recording = cfg.kind == "realsense" and cfg.realsense_file
    why = {  # option -> (the sources it has no effect on, why)
        "--mirror": (cfg.kind == "demo", "the demo renders a true view through its own camera"),
        "--intrinsics": (cfg.kind in ("demo", "realsense"), f"the {cfg.kind} gives its own camera"),
        "--fov": ("--intrinsics" in given or cfg.kind in ("demo", "realsense"), "the camera's intrinsics are given"),
        "--width": (cfg.kind in ("video", "images") or recording, "its frames come at their own size"),
        "--height": (cfg.kind in ("video", "images") or recording, "its frames come at their own size"),
        "--fps": (cfg.kind == "video" or recording, "it is timed by its own frame rate"),
        "--no-realtime": (cfg.kind == "camera", "a camera delivers at its own pace"),
        "--demo-hands": (cfg.kind != "demo", "only the demo renders hands"),
        "--demo-seed": (cfg.kind != "demo", "only the demo renders hands"),
    }
    said: dict[str, list[str]] = {}
    for option in given:
        unused, reason = why[option]
        if unused:
            said.setdefault(reason, []).append(option)
    return [f"{' and '.join(options)}: no effect on this {cfg.kind} source ({reason})" for reason, options in
            said.items()]  # fmt: skip


def make_source(cfg: SourceConfig) -> FrameSource:
    override = None
    if cfg.intrinsics:
        try:
            override = Intrinsics.from_file(cfg.intrinsics)
        except (OSError, ValueError) as e:
            raise SourceError(f"--intrinsics: {e}") from None
        if cfg.mirror:
            override = override.mirrored()
    if cfg.kind == "demo":
        from streamhand.capture.demo import DemoSource

        return DemoSource(width=cfg.width or 640, height=cfg.height or 480, fps=cfg.fps or 30.0,
                          seconds=cfg.demo_seconds, hands=cfg.demo_hands, realtime=cfg.realtime,
                          seed=cfg.demo_seed)  # fmt: skip
    if cfg.kind == "camera":
        from streamhand.capture.camera import CameraSource

        return CameraSource(cfg.camera, cfg.width, cfg.height, cfg.fps, cfg.mirror, cfg.fov_deg, override)
    if cfg.kind == "video" and not cfg.video:
        raise SourceError("--source video needs --video FILE")
    if cfg.kind == "images" and not cfg.images:
        raise SourceError("--source images needs --images FOLDER, PATTERN or FILE")
    if cfg.kind == "video":
        from streamhand.capture.files import VideoSource

        return VideoSource(cfg.video or "", cfg.realtime, cfg.fov_deg, override, cfg.mirror)
    if cfg.kind == "images":
        from streamhand.capture.files import ImageSource

        return ImageSource(cfg.images or "", cfg.fps if cfg.realtime else None, cfg.fov_deg, override, cfg.mirror,
                           rate=cfg.fps)  # fmt: skip
    if cfg.kind == "realsense":
        from streamhand.capture.realsense import RealSenseSource

        if cfg.realsense_file is not None:  # a recording: its own streams, intrinsics, depth scale and rate
            return RealSenseSource(mirror=cfg.mirror, file=cfg.realsense_file, realtime=cfg.realtime)
        return RealSenseSource(cfg.realsense_serial, cfg.width or 640, cfg.height or 480, int(cfg.fps or 30),
                               cfg.mirror)  # fmt: skip
    raise SourceError(f"unknown source {cfg.kind!r}")
