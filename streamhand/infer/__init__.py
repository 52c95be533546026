"""Inference: backends behind one interface (ONNX Runtime, PyTorch, TensorRT; one class each), how one is chosen,
and the lifter that turns detections into metric root-relative 3D with uncertainty. Only the PyTorch backend
imports torch, and only when it is asked for."""

from typing import Any

from streamhand.infer.base import Backend, BackendOutput
from streamhand.infer.lifter import Lifter, LiftResult

__all__ = ["Backend", "BackendOutput", "LiftResult", "Lifter", "TorchBackend"]


def __getattr__(name: str) -> Any:
    if name == "TorchBackend":  # imported on demand: the runtime runs without torch
        from streamhand.infer.torch_backend import TorchBackend

        return TorchBackend
    raise AttributeError(name)
