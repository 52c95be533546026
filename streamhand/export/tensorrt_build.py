"""TensorRT engine building from an exported ONNX (TensorRT 10.x and 11.x; imported lazily).

- TensorRT 10: a weakly typed network; ``fp16`` and ``int8`` are builder flags, INT8 scales come from an
  entropy calibrator fed by rendered hands (:mod:`streamhand.export.calibration_data`), its cache is saved.
- TensorRT 11: networks are strongly typed; ``fp16`` comes from a half-precision ONNX with fp32 inputs and
  outputs (the caller passes that file); ``int8`` would need explicit quantize/dequantize nodes, which our
  exports do not have, so it is refused with a clear message.

One optimisation profile covers the batch range; the timing cache is loaded and written back, so later builds
are faster. Parser errors are reported one per line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class EngineBuildError(RuntimeError):
    """TensorRT could not build the engine (the message says why, one problem per line)."""


@dataclass
class EngineOptions:
    precision: str = "fp16"  # fp32 | fp16 | int8
    batch: tuple[int, int, int] = (1, 2, 8)  # min, opt, max
    workspace_mb: int = 1024
    timing_cache: Path | None = None
    calibration_batches: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def needs_half_onnx(major: int, precision: str) -> bool:
    """TensorRT 11 takes fp16 from the graph itself (strongly typed)."""
    return major >= 11 and precision == "fp16"


def check_precision(major: int, precision: str) -> None:
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineBuildError(f"precision {precision!r}: choose fp32, fp16 or int8")
    if major >= 11 and precision == "int8":
        raise EngineBuildError("INT8 with TensorRT 11 needs explicit quantize/dequantize nodes in the ONNX, which "
                               "streamhand's exports do not have; build fp16 or fp32, or use TensorRT 10")  # fmt: skip
    if major < 10:
        raise EngineBuildError(f"TensorRT {major}.x is not supported; install TensorRT 10 or 11")


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    opts: EngineOptions,
    calibration: Callable[[int], dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Build ``engine_path`` from ``onnx_path``; return the facts for the sidecar (I/O, versions, timing)."""
    import tensorrt as trt

    major = tensorrt_major(trt)
    check_precision(major, opts.precision)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if major >= 11 else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        lines = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError("the ONNX parser failed:\n" + "\n".join(lines or ["(no error text)"]))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    lo, opt, hi = opts.batch
    profile = builder.create_optimization_profile()
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    for t in inputs:
        rest = tuple(t.shape)[1:]
        profile.set_shape(t.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    if major < 11 and opts.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16 where faster
    calibrator = None
    if opts.precision == "int8":
        if calibration is None:
            raise EngineBuildError("INT8 needs calibration data")
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = _entropy_calibrator(trt, calibration, opts, engine_path.with_suffix(".calib"))
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    cache_bytes = opts.timing_cache.read_bytes() if opts.timing_cache and opts.timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, ignore_mismatch=False) and cache_bytes:  # another GPU's or TensorRT's
        log.warning("--timing-cache %s was made on another GPU or by another TensorRT: not used; a new one is made "
                    "and replaces it", opts.timing_cache)  # fmt: skip
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - t0
    if serialized is None:
        raise EngineBuildError("TensorRT could not build the engine (see the TensorRT messages above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_name(engine_path.name + ".tmp")
    tmp.write_bytes(bytes(memoryview(serialized)))
    tmp.replace(engine_path)
    if opts.timing_cache is not None:
        opts.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = opts.timing_cache.with_name(opts.timing_cache.name + ".tmp")  # a build cut short keeps the old cache
        tmp.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
        os.replace(tmp, opts.timing_cache)
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    return {
        "tensorrt": str(trt.__version__),
        "strongly_typed": major >= 11,
        "inputs": [_io(t) for t in inputs],
        "outputs": [_io(t) for t in outputs],
        "build_s": round(build_s, 2),
    }


def _io(t: Any) -> dict[str, Any]:
    return {"name": t.name, "shape": [int(d) for d in t.shape], "dtype": str(t.dtype).rsplit(".", 1)[-1].lower()}


def _entropy_calibrator(trt: Any, calibration: Callable[[int], dict[str, np.ndarray]], opts: EngineOptions,
                        cache_path: Path) -> Any:  # fmt: skip
    """An IInt8EntropyCalibrator2 over ``opts.calibration_batches`` batches of rendered hands (TensorRT 10)."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.batch = opts.batch[2]
            self.index = 0
            self.held: list[torch.Tensor] = []

        def get_batch_size(self) -> int:
            return self.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index >= opts.calibration_batches:
                return None
            data = calibration(self.index)
            self.index += 1
            self.held = [torch.from_numpy(np.ascontiguousarray(data[n], dtype=np.float32)).cuda() for n in names]
            return [int(t.data_ptr()) for t in self.held]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_path.write_bytes(bytes(cache))

    return Calibrator()
