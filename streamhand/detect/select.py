"""Detector choice: MediaPipe's own graph, or MediaPipe's networks run by our tracking logic
(:class:`streamhand.detect.gpu_hands.NetworkHands`) on PyTorch (CPU or CUDA), ONNX Runtime or TensorRT.

``auto`` takes the networks on PyTorch CUDA where PyTorch sees a GPU (MediaPipe's Python package has no GPU
path on Linux), and MediaPipe's graph on a CPU-only machine, where it is the faster of the two (see README,
"Measured figures"). Flip averaging (``--flip-average``) reads mirrored crops, which only the networks can: it
makes ``auto`` take them on a CPU too, and is refused with MediaPipe's graph.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
DETECTORS = ("auto", "mediapipe", "network")
RUNTIMES = ("auto", "torch", "onnxruntime", "tensorrt")


@dataclass
class DetectorChoice:
    kind: str  # mediapipe | network
    runtime: str  # "" for mediapipe; torch | onnxruntime
    device: str  # cpu | cuda
    reason: str
    flip_average: bool = False

    @property
    def label(self) -> str:
        if self.kind == "mediapipe":
            return "mediapipe"
        return f"network-{self.runtime}-{self.device}" + ("+flip" if self.flip_average else "")


def choose_detector(kind: str, runtime: str, cuda: bool, flip_average: bool = False) -> DetectorChoice:
    """Pure: what to make for ``kind`` / ``runtime`` on a machine with or without a CUDA GPU."""
    if kind not in DETECTORS:
        raise ValueError(f"unknown detector {kind!r}; choose from {', '.join(DETECTORS)}")
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown detector runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if flip_average and kind == "mediapipe":
        raise ValueError("--flip-average reads mirrored hand crops, which only MediaPipe's networks take: use "
                         "--detector network (or auto)")  # fmt: skip
    if kind == "mediapipe" or (kind == "auto" and not cuda and not flip_average):
        why = "requested" if kind == "mediapipe" else "no CUDA GPU: MediaPipe's graph is the faster on a CPU"
        return DetectorChoice("mediapipe", "", "cpu", why)
    rt = runtime if runtime != "auto" else "torch" if cuda else "onnxruntime"
    device = "cuda" if cuda and rt in ("torch", "tensorrt") else "cpu"
    if kind == "network":
        why = "requested"
    elif cuda:
        why = "a CUDA GPU: MediaPipe's networks run there with our tracking"
    else:
        why = "--flip-average: only MediaPipe's networks read mirrored crops"
    return DetectorChoice("network", rt, device, why, flip_average)


def make_detector(
    d: Any, tracking: bool, kind: str | None = None, engines_dir: str = "engines"
) -> tuple[Any, DetectorChoice]:
    """The detector for the run's ``DetectConfig`` ``d`` (``kind`` overrides ``d.detector`` and, being a
    comparison's, leaves out ``d.flip_average``)."""
    from streamhand.sidecar import cuda_available

    cuda = cuda_available()
    c = choose_detector(kind or d.detector, d.network_runtime, cuda, d.flip_average and kind is None)
    if c.kind == "mediapipe":
        from streamhand.detect import MediaPipeHands

        det: Any = MediaPipeHands(d.max_hands, tracking, d.min_detection_confidence, d.min_tracking_confidence,
                                  d.model_complexity)  # fmt: skip
    else:
        from streamhand.detect.gpu_hands import NetworkHands

        det = NetworkHands(d.max_hands, tracking, d.min_detection_confidence, d.min_tracking_confidence,
                           runtime=c.runtime, device=c.device, engines_dir=engines_dir,
                           flip_average=c.flip_average)  # fmt: skip
    det.label, det.reason = c.label, c.reason  # for the status topic and the run report
    log.info("detector: %s (%s: %s)", c.label, kind or d.detector, c.reason)
    return det, c
