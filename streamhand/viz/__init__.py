"""Drawing: the overlay and 3D skeleton views and the OpenCV windows of `run --show` and `streamhand view`."""
