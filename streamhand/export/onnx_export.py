"""ONNX export of the inference graph (:mod:`streamhand.export.graph`) for one modality set.

Dynamic batch (1 to the graph's ``max_batch``), opset 17 or newer, named inputs and outputs, and metadata
embedded in the file (``streamhand.*`` keys: model id, checkpoint sha256, layout, z size, input shapes,
conventions, joint_std calibration) so that a backend can run the file alone and check what it loads.
``precision="fp16"`` writes a half-precision graph with fp32 inputs and outputs (TensorRT 11's strongly typed
networks take their precision from the ONNX).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from streamhand.checkpoint import SKELETON_INFO, Checkpoint, load_checkpoint
from streamhand.export.graph import InferenceGraph
from streamhand.infer.noise import DEFAULT_SEED, posterior_noise
from streamhand.modalities import ordered
from streamhand.model_files import (
    CONVENTIONS,
    INPUT_NAMES,
    ONNX_FORMAT,
    OUTPUT_NAMES,
    ExportError,
    default_onnx_name,
    file_sha256,
    modality_tag,
    read_onnx_metadata,
    write_onnx_metadata,
)
from streamhand.models.config import input_shape
from streamhand.outputs import private_folder, remove_abandoned
from streamhand.version import __version__

__all__ = ["FORMAT", "ExportError", "OnnxArtifact", "default_onnx_name", "export_onnx", "file_sha256", "modality_tag",
           "prepare_graph", "read_onnx_metadata"]
log = logging.getLogger(__name__)
FORMAT = ONNX_FORMAT
MIN_OPSET = 17
PRECISIONS = ("fp32", "fp16")


class Unwritable(ExportError):
    """The graph's folder cannot be made or the graph written there (read-only, full, a file in the way)."""


@dataclass
class OnnxArtifact:
    path: Path
    sha256: str
    metadata: dict[str, Any]

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.metadata["inputs"]]


def export_onnx(
    checkpoint: str | Path | Checkpoint | None,
    modalities: tuple[str, ...] | list[str],
    out: str | Path,
    n_samples: int = 16,
    max_batch: int = 256,
    precision: str = "fp32",
    opset: int = MIN_OPSET,
    seed: int = DEFAULT_SEED,
) -> OnnxArtifact:
    """Write the graph for ``modalities`` to ``out`` atomically and check it with ``onnx.checker``: nothing is left
    half-written by a failure or an interrupt, and a path that cannot be written is :class:`ExportError`."""
    import onnx

    if precision not in PRECISIONS:
        raise ExportError(f"ONNX precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is below {MIN_OPSET}")
    if not 1 <= max_batch <= 4096:
        raise ExportError(f"max batch {max_batch} is outside 1-4096")
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    model = ckpt.model
    mods = ordered(tuple(modalities))
    noise = posterior_noise(n_samples, max_batch, model.cfg.z_dim, seed)
    # a copy of the model, so that fp16 export leaves the caller's fp32 model alone
    clone = type(model)(model.cfg)
    clone.load_state_dict(model.state_dict())
    try:
        graph = InferenceGraph(clone, mods, noise, half=precision == "fp16").eval()
    except ValueError as e:
        raise ExportError(str(e)) from None
    examples = tuple(torch.zeros(input_shape(model.cfg, m, 2)) for m in mods)
    in_names = [INPUT_NAMES[m] for m in mods]
    dyn = {n: {0: "batch"} for n in (*in_names, *OUTPUT_NAMES)}
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out}: is a folder, not a file the ONNX graph can be written to")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Unwritable(f"{out.parent}: cannot make the folder ({e.strerror or type(e).__name__})") from None
    remove_abandoned(out)  # the part files of exports killed before they could remove their own
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # two processes exporting the same graph do not share it
    meta = _metadata(ckpt, mods, n_samples, seed, max_batch, precision, opset)
    t0 = time.perf_counter()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # K and the modality set are fixed per graph
            # the exporter's notes on its own constant folding (an image expert's slices): nothing a user can act on
            warnings.filterwarnings("ignore", "Constant folding", UserWarning)
            torch.onnx.export(graph, examples, str(tmp), input_names=in_names, output_names=list(OUTPUT_NAMES),
                              dynamic_axes=dyn, opset_version=opset, dynamo=False,
                              do_constant_folding=True)  # fmt: skip
        proto = onnx.load(str(tmp))
        write_onnx_metadata(proto, meta)
        proto.doc_string = f"streamhand {ckpt.model_id}: {modality_tag(mods)} -> 3D joints with spread"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(out)
    except OSError as e:  # a full disk, a read-only folder, a folder in the way
        raise Unwritable(f"{out}: cannot write the ONNX graph ({e.strerror or type(e).__name__})") from None
    finally:
        tmp.unlink(missing_ok=True)  # a failure or an interrupt (KeyboardInterrupt is raised on) leaves no part file
    log.info("exported %s (%s, %s) in %.1f s", out, modality_tag(mods), precision, time.perf_counter() - t0)
    return OnnxArtifact(out, file_sha256(out), meta)


def _metadata(ckpt: Checkpoint, mods: tuple[str, ...], n_samples: int, seed: int, max_batch: int, precision: str,
              opset: int) -> dict[str, Any]:  # fmt: skip
    """The ``streamhand.*`` metadata of the graph of ``ckpt`` for ``mods``."""
    model = ckpt.model
    ckpt_sha = file_sha256(ckpt.path) if ckpt.path is not None else "unsaved"
    return {
        "format": FORMAT,
        "model_id": ckpt.model_id,
        "checkpoint_sha256": ckpt_sha,
        "modalities": list(mods),
        "encoders": list(model.cfg.encoders),
        "inputs": [
            {"name": INPUT_NAMES[m], "modality": m, "shape": list(input_shape(model.cfg, m)), "dtype": "float32"}
            for m in mods
        ],
        "outputs": [
            {"name": "joints", "shape": ["B", model.cfg.num_joints, 3], "dtype": "float32"},
            {"name": "joint_std", "shape": ["B", model.cfg.num_joints], "dtype": "float32"},
            {"name": "disagreement", "shape": ["B", model.cfg.num_joints], "dtype": "float32"},
        ],
        "layout": SKELETON_INFO["layout"],
        "conventions": CONVENTIONS,
        "z_dim": model.cfg.z_dim,
        "image_size": model.cfg.image_size,
        "cloud_points": model.cfg.cloud_points,
        "crop_view": model.cfg.crop_view,
        "n_samples": n_samples,
        "noise_seed": seed,
        "max_batch": max_batch,
        "precision": precision,
        "opset": opset,
        "std_calibration": ckpt.meta.get("std_calibration"),
        "error_model": ckpt.meta.get("error_model"),
        "torch": torch.__version__,
        "streamhand": __version__,
    }


def prepare_graph(ckpt: Checkpoint, mods: tuple[str, ...], sha: str | None, n_samples: int,
                  folder: str | Path | None = None) -> tuple[Path, dict]:  # fmt: skip
    """The build step behind a checkpoint's first run on ONNX Runtime: export the graph for ``mods`` into the
    cache (by the checkpoint's sha256; an unsaved checkpoint into a private temporary folder), or into ``folder``
    (a caller's own, e.g. a benchmark's throw-away checkpoints: ``functools.partial(prepare_graph, folder=...)``)."""
    from streamhand.model_files import cached_graph_path

    if folder is not None:
        path = Path(folder) / cached_graph_path(sha or "unsaved", ckpt.model_id, mods, n_samples).name
    elif sha is not None:
        path = cached_graph_path(sha, ckpt.model_id, mods, n_samples)
    else:
        try:
            path = private_folder("streamhand-onnx-") / default_onnx_name(ckpt.model_id, mods)
        except OSError as e:
            raise ExportError(f"no temporary folder for the ONNX graph ({e.strerror or type(e).__name__})") from None
    log.info("preparing the ONNX graph of %s for %s (first use; cached in %s)", ckpt.model_id, modality_tag(mods),
             path.parent)  # fmt: skip
    try:
        art = export_onnx(ckpt, mods, path, n_samples=n_samples)
    except Unwritable as e:  # the cache read-only or full: where it can be moved (as for the hand networks)
        if folder is not None or sha is None:
            raise
        raise ExportError(f"{e}; point STREAMHAND_CACHE at a writable folder (the ONNX graphs are cached there)"
                          ) from None  # fmt: skip
    return art.path, art.metadata
