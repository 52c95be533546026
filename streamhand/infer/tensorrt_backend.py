"""TensorRT backend: a serialized engine from ``streamhand build-engine``, checked against its sidecar.

The sidecar must match this GPU and TensorRT version (:func:`streamhand.export.sidecar.compatibility_problems`),
else :class:`EngineUnusable` says why and the caller falls back. Inputs and outputs are torch CUDA tensors
bound with ``set_tensor_address`` and run with ``execute_async_v3`` on a private stream; outputs are
preallocated for the engine's largest batch, and one warm-up call runs at load. An engine serves its own
modality set; other sets (a frame without world landmarks, say) go to the ``fallback`` backend.
TensorRT is imported here only, lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from streamhand.export.graph import ordered
from streamhand.export.sidecar import SidecarError, compatibility_problems, read_sidecar, this_machine
from streamhand.infer.base import Backend, BackendOutput

log = logging.getLogger(__name__)


class EngineUnusable(RuntimeError):
    """This engine cannot run here (wrong GPU or TensorRT version, no GPU, unreadable files)."""


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, engine_path: str | Path, fallback: Backend | None = None):
        path = Path(engine_path)
        try:
            side = read_sidecar(path)
        except SidecarError as e:
            raise EngineUnusable(str(e)) from None
        problems = compatibility_problems(side, this_machine())
        if problems:
            raise EngineUnusable(f"{path.name}: " + "; ".join(problems))
        if not path.is_file():
            raise EngineUnusable(f"{path}: engine file not found")
        import tensorrt as trt
        import torch

        meta = side.get("onnx_metadata", {})
        self.sidecar, self.fallback, self.path = side, fallback, path
        self.model_id = side["model_id"]
        self.image_size = int(meta.get("image_size", 0))
        self.std_calibration = meta.get("std_calibration")
        self.engine_modalities = ordered(tuple(side["modalities"]))
        self.modalities = tuple(fallback.modalities) if fallback is not None else self.engine_modalities
        self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._logger)
        self._engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise EngineUnusable(f"{path}: TensorRT could not deserialize the engine")
        self._ctx = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self._max = int(side["batch"][2])
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_in = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self._inputs = [n for n in names if is_in[n]]
        self._outputs = [n for n in names if not is_in[n]]
        shapes = {t["name"]: t["shape"] for t in side["inputs"] + side["outputs"]}
        dev = torch.device("cuda")
        self._in_buf = {n: torch.empty((self._max, *shapes[n][1:]), dtype=torch.float32, device=dev)
                        for n in self._inputs}  # fmt: skip
        self._out_buf = {n: torch.empty((self._max, *shapes[n][1:]), dtype=torch.float32, device=dev)
                         for n in self._outputs}  # fmt: skip
        self._run({m: np.zeros((1, *shapes[n][1:]), np.float32) for m, n in zip(self.engine_modalities, self._inputs)})
        log.info("tensorrt: %s loaded and warmed up (%s, batch %s)", path.name, side["precision"], side["batch"])

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        b = len(next(iter(inputs.values())))
        with torch.cuda.stream(self._stream):
            for m, n in zip(self.engine_modalities, self._inputs):
                buf = self._in_buf[n][:b]
                buf.copy_(torch.from_numpy(np.ascontiguousarray(inputs[m], dtype=np.float32)), non_blocking=True)
                self._ctx.set_input_shape(n, tuple(buf.shape))
                self._ctx.set_tensor_address(n, int(buf.data_ptr()))
            for n in self._outputs:
                self._ctx.set_tensor_address(n, int(self._out_buf[n].data_ptr()))
            if not self._ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            out = {n: self._out_buf[n][:b].cpu() for n in self._outputs}
        self._stream.synchronize()
        return {n: t.numpy() for n, t in out.items()}

    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        if ordered(tuple(inputs)) != self.engine_modalities:
            if self.fallback is None:
                raise KeyError(f"the engine takes {','.join(self.engine_modalities)}, not {','.join(inputs)}")
            return self.fallback.infer(inputs)
        b = len(next(iter(inputs.values())))
        parts: list[dict[str, Any]] = []
        for i in range(0, b, self._max):
            parts.append(self._run({m: v[i : i + self._max] for m, v in inputs.items()}))
        j, s, d = (np.concatenate([p[k] for p in parts]) for k in ("joints", "joint_std", "disagreement"))
        return BackendOutput(j, s, d)

    def describe(self) -> str:
        return f"{self.name}[{self.sidecar['precision']}] ({self.model_id}, engine {','.join(self.engine_modalities)})"
