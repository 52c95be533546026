"""Metric placement: the hand's root in the camera frame (perspective solve or depth), the user's hand size, and
the One Euro smoothing of each track."""
