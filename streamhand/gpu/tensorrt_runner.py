"""One deserialized TensorRT engine, run on torch CUDA tensors: named numpy inputs in, named numpy outputs out.

Input and output buffers are preallocated for the engine's largest batch; each call copies the inputs in, sets
the input shapes and every tensor's address (``set_input_shape`` / ``set_tensor_address``), runs
``execute_async_v3`` on a private stream and copies the outputs back. Used by the pose backend
(:mod:`streamhand.infer.tensorrt_backend`) and the hand networks (:mod:`streamhand.detect.gpu_hands`).
TensorRT is imported here, lazily, and only on a machine that has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class TensorRTRunner:
    def __init__(self, engine_path: str | Path, max_batch: int, shapes: dict[str, list]):
        """``shapes``: every I/O tensor's shape (batch first; the sidecar's)."""
        import tensorrt as trt
        import torch

        self._torch = torch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self._engine is None:
            raise RuntimeError(f"{engine_path}: TensorRT could not deserialize the engine")
        self._ctx = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self.max_batch = max_batch
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_in = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [n for n in names if is_in[n]]
        self.outputs = [n for n in names if not is_in[n]]
        dev = torch.device("cuda")
        self._buf: dict[str, Any] = {
            n: torch.empty((max_batch, *shapes[n][1:]), dtype=torch.float32, device=dev) for n in names
        }

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        b = len(next(iter(inputs.values())))
        if b > self.max_batch:
            step = self.max_batch
            parts = [self({k: v[i : i + step] for k, v in inputs.items()}) for i in range(0, b, step)]
            return {n: np.concatenate([p[n] for p in parts]) for n in self.outputs}
        with torch.cuda.stream(self._stream):
            for n in self.inputs:
                buf = self._buf[n][:b]
                buf.copy_(torch.from_numpy(np.ascontiguousarray(inputs[n], dtype=np.float32)), non_blocking=True)
                self._ctx.set_input_shape(n, tuple(buf.shape))
                self._ctx.set_tensor_address(n, int(buf.data_ptr()))
            for n in self.outputs:
                self._ctx.set_tensor_address(n, int(self._buf[n].data_ptr()))
            if not self._ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            out = {n: self._buf[n][:b].cpu() for n in self.outputs}
        self._stream.synchronize()
        return {n: t.numpy() for n, t in out.items()}
