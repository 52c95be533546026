"""streamhand: real-time 3D hand pose from a camera to ZeroMQ topics."""

__version__ = "0.1.0"
