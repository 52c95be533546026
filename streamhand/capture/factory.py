"""Build the frame source a :class:`~streamhand.runtime_config.SourceConfig` describes."""

from __future__ import annotations

from streamhand.capture.base import FrameSource, SourceError
from streamhand.geometry import Intrinsics
from streamhand.runtime_config import SourceConfig


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
