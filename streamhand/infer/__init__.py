"""Inference backends behind one interface (PyTorch here; ONNX Runtime and TensorRT plug in beside it)
and the lifter that turns detections into metric root-relative 3D with uncertainty."""

from streamhand.infer.base import Backend, BackendOutput
from streamhand.infer.lifter import Lifter, LiftResult
from streamhand.infer.torch_backend import TorchBackend

__all__ = ["Backend", "BackendOutput", "LiftResult", "Lifter", "TorchBackend"]
