"""Seeing hands: the overlay and 3D skeleton drawings and the OpenCV windows of `run --show` and `streamhand view`
(viewer.py), the stream in Rerun (rerun_log.py) and Foxglove (foxglove_bridge.py), what those two share (sink.py),
and each hand's colour."""

#: each hand's colour (RGB, 0-255), the same in every view: the windows, Rerun, Foxglove
HAND_RGB = {"left": (60, 160, 255), "right": (255, 200, 60)}
