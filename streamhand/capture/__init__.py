"""Frame sources: camera, video file, image folder, RealSense, and the synthetic demo."""

from streamhand.capture.base import Frame, FrameSource, SourceError, SourceLost

__all__ = ["Frame", "FrameSource", "SourceError", "SourceLost"]
