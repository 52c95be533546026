"""``streamhand build-engine``: the ONNX export, then (where TensorRT and a GPU are present) the engine and
its sidecar. Without TensorRT or a GPU the ONNX is still written and the result says what is missing."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from streamhand.checkpoint import Checkpoint, load_checkpoint
from streamhand.error_model import default_samples
from streamhand.export.calibration_data import model_inputs
from streamhand.export.graph import INPUT_NAMES, ordered
from streamhand.export.onnx_export import default_onnx_name, export_onnx, file_sha256
from streamhand.export.tensorrt_build import EngineOptions, build_engine, check_precision, needs_half_onnx
from streamhand.sidecar import Machine, this_machine, write_sidecar

log = logging.getLogger(__name__)
TENSORRT_HINT = "pip install 'streamhand[tensorrt]' (NVIDIA's TensorRT 10 or 11 wheels) on a machine with an NVIDIA GPU"


@dataclass
class BuildResult:
    onnx: list[Path] = field(default_factory=list)
    engine: Path | None = None
    sidecar: Path | None = None
    missing: str | None = None  # why no engine was built (None when one was)


def missing_for_engines(here: Machine) -> str | None:
    """What this machine lacks to build TensorRT engines (None: nothing)."""
    if here.tensorrt is None:
        return f"TensorRT is not installed: {TENSORRT_HINT}"
    if here.gpu is None:
        return "no CUDA GPU is visible to PyTorch (TensorRT engines are built on the GPU that runs them)"
    return None


def _machine_facts(here: Machine) -> dict[str, Any]:
    """What every sidecar records of the machine that built the engine, and when."""
    return {"gpu": here.gpu, "compute_capability": here.compute_capability, "cuda": torch.version.cuda,
            "torch": torch.__version__, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip


def _tensorrt() -> tuple[Any, int]:
    import tensorrt as trt

    return trt, int(str(trt.__version__).split(".")[0])


def output_name(model_id: str, modalities: tuple[str, ...], precision: str, n_samples: int, suffix: str) -> str:
    """``<model id>_<modalities>[_k<samples>]_<precision><suffix>``: graphs and engines of another sample count
    (``--samples 16`` beside the default 0) side by side, not one over the other."""
    name = default_onnx_name(model_id, modalities, precision).removesuffix(".onnx")
    return (name.removesuffix(f"_{precision}") + f"_k{n_samples}_{precision}" if n_samples else name) + suffix


def build(
    checkpoint: str | Path | Checkpoint | None,
    modalities: tuple[str, ...] | None,
    opts: EngineOptions,
    out_dir: Path,
    n_samples: int | None = None,
) -> BuildResult:
    """The model's ONNX graph for ``modalities`` and, where TensorRT and a GPU are present, its engine; ``n_samples``
    None: as a run takes them (0 where the model's error model judges these experts, else 16)."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    mods = ordered(modalities or tuple(m for m in ckpt.model.modalities if m in INPUT_NAMES))
    if n_samples is None:
        n_samples = default_samples(ckpt.meta.get("error_model") or (), mods)
    lo, opt, hi = opts.batch
    if not 1 == lo <= opt <= hi:  # a frame may hold one hand: every engine takes a batch of 1
        raise ValueError(f"--batch {lo},{opt},{hi}: needs 1 = MIN <= OPT <= MAX (MIN 1: a frame may hold one hand)")
    max_batch = max(256, hi)
    res = BuildResult()
    fp32 = export_onnx(ckpt, mods, out_dir / output_name(ckpt.model_id, mods, "fp32", n_samples, ".onnx"), n_samples,
                       max_batch)  # fmt: skip
    res.onnx.append(fp32.path)
    here = this_machine()
    res.missing = missing_for_engines(here)
    if res.missing:
        return res
    _, major = _tensorrt()
    check_precision(major, opts.precision)
    src = fp32
    if needs_half_onnx(major, opts.precision):
        src = export_onnx(ckpt, mods, out_dir / output_name(ckpt.model_id, mods, "fp16", n_samples, ".onnx"),
                          n_samples, max_batch, precision="fp16")  # fmt: skip
        res.onnx.append(src.path)
    engine = out_dir / output_name(ckpt.model_id, mods, opts.precision, n_samples, ".engine")
    size = ckpt.model.cfg.image_size

    def calibration(i: int) -> dict:
        x = model_inputs(mods, hi, size, seed=1000 + i, cloud_points=ckpt.model.cfg.cloud_points)
        return {INPUT_NAMES[m]: v for m, v in x.items()}

    facts = build_engine(src.path, engine, opts, calibration)
    res.engine = engine
    res.sidecar = write_sidecar(
        engine,
        {
            **facts,
            "model_id": ckpt.model_id,
            "checkpoint_sha256": fp32.metadata["checkpoint_sha256"],
            "modalities": list(mods),
            **_machine_facts(here),
            "precision": opts.precision,
            "batch": list(opts.batch),
            "onnx": src.path.name,
            "onnx_sha256": src.sha256,
            "onnx_metadata": fp32.metadata,
            "options": {
                "workspace_mb": opts.workspace_mb,
                "timing_cache": str(opts.timing_cache or ""),
                "n_samples": n_samples,
            },
        },
    )
    return res


def hand_engine_name(network: str, precision: str) -> str:
    return f"{network}_{precision}.engine"


def build_hand_networks(opts: EngineOptions, out_dir: Path, max_hands: int = 4) -> BuildResult:
    """MediaPipe's palm detector and hand landmark network: converted (cached), then TensorRT engines in
    ``out_dir`` where TensorRT and a GPU are present (palm at batch 1; landmarks at 1..``max_hands``)."""
    from streamhand.detect.gpu_hands import LANDMARK_MODEL, PALM_MODEL, mediapipe_version
    from streamhand.export.hand_networks import prepare_hand_networks

    models = prepare_hand_networks()
    res = BuildResult(onnx=[models / f"{PALM_MODEL}.onnx", models / f"{LANDMARK_MODEL}.onnx"])
    here = this_machine()
    res.missing = missing_for_engines(here)
    if res.missing:
        return res
    trt, major = _tensorrt()
    precision = opts.precision
    if major >= 11 and precision != "fp32":  # strongly typed: the converted graphs are fp32
        log.warning("TensorRT %s: the hand networks are built fp32 (their ONNX is fp32)", trt.__version__)
        precision = "fp32"
    if precision == "int8":
        raise ValueError("int8 is not offered for the hand networks; use fp16 or fp32")
    for net, batch in ((PALM_MODEL, (1, 1, 1)), (LANDMARK_MODEL, (1, min(2, max_hands), max_hands))):
        onnx_path = models / f"{net}.onnx"
        engine = out_dir / hand_engine_name(net, precision)
        o = EngineOptions(precision, batch, opts.workspace_mb, opts.timing_cache)
        facts = build_engine(onnx_path, engine, o)
        write_sidecar(engine, {
            **facts, **_machine_facts(here), "model_id": net, "modalities": ["image"], "precision": precision,
            "batch": list(batch), "onnx": onnx_path.name, "onnx_sha256": file_sha256(onnx_path),
            "mediapipe": mediapipe_version(), "options": {"workspace_mb": opts.workspace_mb},
        })  # fmt: skip
        res.engine = res.engine or engine
    return res
