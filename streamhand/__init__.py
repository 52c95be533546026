"""streamhand: real-time 3D hand pose from a camera to ZeroMQ topics.

The package follows the data's path: ``capture/`` (sources) -> ``detect/`` (MediaPipe) -> ``infer/`` (the model's
backends and the lifter) -> ``place/`` (metres, hand size, smoothing) -> ``stream/`` (schema, sockets, the typed
subscriber), with ``run/`` (the pipeline and its stages), ``app.py`` (one builder of a run) and ``cli.py`` on top;
``export/`` holds the build steps (ONNX, TensorRT, MediaPipe's networks), ``synth/`` the synthetic hands.
Subscribers need only ``from streamhand import PoseSubscriber``; poses in one's own loop, without a process or a
socket: ``from streamhand import HandTracker`` (:mod:`streamhand.hand_tracker`).
"""

from typing import Any

from streamhand.version import __version__

__all__ = ["Hand", "HandPose", "HandTracker", "PoseSubscriber", "SubscriberClosed", "__version__"]


def __getattr__(name: str) -> Any:  # each part's imports only when it is used
    if name in ("HandPose", "PoseSubscriber", "SubscriberClosed"):  # the client: pyzmq, msgspec
        from streamhand.stream import client

        return getattr(client, name)
    if name in ("Hand", "HandTracker"):  # the in-process tracker: MediaPipe and a model backend
        from streamhand import hand_tracker

        return getattr(hand_tracker, name)
    raise AttributeError(name)
