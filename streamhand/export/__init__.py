"""Build steps (they need PyTorch): the inference graph exported to ONNX with embedded metadata, MediaPipe's hand
networks converted, TensorRT engines built with their JSON sidecars. The runtime reads what these write through
:mod:`streamhand.model_files` and :mod:`streamhand.sidecar` (both torch-free) and never imports the rest."""

from typing import Any

__all__ = ["ExportError", "InferenceGraph", "OnnxArtifact", "export_onnx", "read_onnx_metadata"]


def __getattr__(name: str) -> Any:  # imported on demand, so that the torch-free sidecar module loads alone
    if name == "InferenceGraph":
        from streamhand.export.graph import InferenceGraph

        return InferenceGraph
    if name in ("ExportError", "OnnxArtifact", "export_onnx", "read_onnx_metadata"):
        from streamhand.export import onnx_export

        return getattr(onnx_export, name)
    raise AttributeError(name)
