"""Exported artifacts: the inference graph as ONNX (with embedded metadata), TensorRT engines and their
JSON sidecars. Runtime backends read these; converters and builders are used at build time only."""

from streamhand.export.graph import InferenceGraph
from streamhand.export.onnx_export import ExportError, OnnxArtifact, export_onnx, read_onnx_metadata

__all__ = ["ExportError", "InferenceGraph", "OnnxArtifact", "export_onnx", "read_onnx_metadata"]
