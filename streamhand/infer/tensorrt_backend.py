"""TensorRT backend: a serialized engine from ``streamhand build-engine``, checked against its sidecar.

The sidecar must match this GPU and TensorRT version (:func:`streamhand.sidecar.compatibility_problems`),
else :class:`EngineUnusable` says why and the caller falls back. The engine runs through
:class:`streamhand.gpu.tensorrt_runner.TensorRTRunner` (preallocated CUDA buffers, ``execute_async_v3``);
one warm-up call runs at load. An engine serves its own
modality set; other sets (a frame without world landmarks, say) go to the ``fallback`` backend. How the answers
are judged (``std_calibration``, ``error_model``) is the installed model's, read from the fallback where there is
one: an engine is found by model id (the weights' hash) and keeps the metadata of the day it was built, which a
later refit of the calibration or error model (same weights, same id) would leave stale.
TensorRT is imported here only, lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamhand.gpu.tensorrt_runner import TensorRTRunner
from streamhand.infer.base import Backend, BackendOutput
from streamhand.modalities import ordered
from streamhand.sidecar import SidecarError, compatibility_problems, read_sidecar, this_machine

log = logging.getLogger(__name__)


def judging_metadata(engine_meta: dict, fallback: Backend | None) -> tuple[dict | None, dict | None]:
    """``(std_calibration, error_model)`` for an engine whose ONNX metadata is ``engine_meta``: the installed
    model's (``fallback``, made from its checkpoint) where there is one, else the engine's own."""
    if fallback is not None:
        return fallback.std_calibration, fallback.error_model
    return engine_meta.get("std_calibration"), engine_meta.get("error_model")


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
        meta = side.get("onnx_metadata", {})
        self.sidecar, self.fallback, self.path = side, fallback, path
        self.model_id = side["model_id"]
        self.image_size = int(meta.get("image_size", 0))
        self.cloud_points = int(meta.get("cloud_points", 256))
        self.crop_view = str(meta.get("crop_view", "box"))
        self.std_calibration, self.error_model = judging_metadata(meta, fallback)
        if (self.std_calibration, self.error_model) != judging_metadata(meta, None):
            log.info("tensorrt: %s was built with another calibration or error model than the installed model's; "
                     "using the installed one", path.name)  # fmt: skip
        self.engine_modalities = ordered(tuple(side["modalities"]))
        self.modalities = tuple(fallback.modalities) if fallback is not None else self.engine_modalities
        shapes = {t["name"]: t["shape"] for t in side["inputs"] + side["outputs"]}
        self._names = [t["name"] for t in side["inputs"]]  # in the modalities' order
        try:  # an engine that does not load or run (a damaged file, a driver's refusal) is one to fall back from
            self._runner = TensorRTRunner(path, int(side["batch"][2]), shapes)
            self._run({m: np.zeros((1, *shapes[n][1:]), np.float32)
                       for m, n in zip(self.engine_modalities, self._names)})  # fmt: skip
        except (RuntimeError, OSError, KeyError, ValueError, TypeError) as e:
            raise EngineUnusable(f"{path.name}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
                                 ) from None  # fmt: skip
        log.info("tensorrt: %s loaded and warmed up (%s, batch %s)", path.name, side["precision"], side["batch"])

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._runner({n: inputs[m] for m, n in zip(self.engine_modalities, self._names)})

    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        if ordered(tuple(inputs)) != self.engine_modalities:
            if self.fallback is None:
                raise KeyError(f"the engine takes {','.join(self.engine_modalities)}, not {','.join(inputs)}")
            return self.fallback.infer(inputs)
        out = self._run(inputs)  # the runner splits batches over the engine's largest
        return BackendOutput(out["joints"], out["joint_std"], out["disagreement"])

    def describe(self) -> str:
        return f"{self.name}[{self.sidecar['precision']}] ({self.model_id}, engine {','.join(self.engine_modalities)})"
