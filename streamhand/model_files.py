"""The torch-free contract between a model's files and the runtime: where the shipped models live, which
checkpoint a name means, the conventions every artifact must carry, and the exported ONNX graphs' names,
inputs, embedded metadata and where prepared graphs are found.

A checkpoint (``.pt``) is what training writes; the runtime runs ONNX graphs exported from it (one per
modality set), found beside the shipped checkpoint (``weights/onnx/<name>/``) or in the cache where the first
use of another checkpoint prepares them. Reading either needs no PyTorch; making a graph does
(:mod:`streamhand.export.onnx_export`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from streamhand.codec import VIEW, WORLD_NORM
from streamhand.modalities import INPUTS, key, ordered
from streamhand.skeleton import HANDEDNESS_CANON, LAYOUT, NORM_2D, NUM_JOINTS, REF_BONE

log = logging.getLogger(__name__)
FORMAT_VERSION = 1  # of checkpoints
ONNX_FORMAT = "streamhand-onnx/1"
SKELETON_INFO = {
    "layout": LAYOUT,
    "root": "wrist",
    "norm_3d": "root_rel_div_ref_bone",
    "ref_bone": list(REF_BONE),
    "norm_2d": NORM_2D,
    "handedness": HANDEDNESS_CANON,
    "view": VIEW,
}
WORLD_CONVENTION = WORLD_NORM
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.pt"
#: the shipped models' runtime graphs: ``SHIPPED_GRAPHS / <name> / <set>.onnx`` (+ one shared weights file)
SHIPPED_GRAPHS = WEIGHTS_DIR / "onnx"
INPUT_NAMES = {"2d": "keypoints_2d", "world": "world_landmarks", "rgb": "rgb_crop", "depth": "depth_crop",
               "cloud": "point_cloud"}  # fmt: skip
OUTPUT_NAMES = ("joints", "joint_std", "disagreement")
assert tuple(INPUT_NAMES) == INPUTS
#: the conventions every graph's metadata must carry (``conventions``: what this version writes)
CONVENTIONS = {k: v for k, v in SKELETON_INFO.items() if k != "layout"}
ONNX_PRECISIONS = ("fp32", "fp16", "int8")
CROP_VIEWS = ("box", "turned")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, unreadable or of another format)."""


class GraphsNotPrepared(CheckpointError):
    """A checkpoint whose ONNX graph for a modality set and sample count is not prepared (the runtime does not
    export; :func:`streamhand.export.onnx_export.prepare_graph` does, and ``streamhand run`` calls it at first use)."""


class ExportError(ValueError):
    """An export that cannot be made or an exported file that cannot be used."""


def shipped_models() -> dict[str, Path]:
    """The models shipped with the package, by name (``default``, ...): ``streamhand/weights/<name>.pt``."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.pt"))}


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A shipped model's name or a checkpoint path -> the file (a path that exists wins over a name)."""
    if name_or_path is None:
        return DEFAULT_WEIGHTS
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = shipped_models()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    if p.is_dir():
        raise CheckpointError(f"{p}: a folder; give the checkpoint file in it (e.g. {p / 'last.pt'})")
    raise CheckpointError(f"checkpoint not found: {p} (shipped models by name: {', '.join(shipped) or 'none'})")


def file_sha256(path: str | Path) -> str:
    """The file's sha256, hashed once per version of the file (its size and modification time) in a process: the
    model's choice and its backend both identify a checkpoint by it at start-up."""
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def modality_tag(modalities: Iterable[str]) -> str:
    """The name of a run-time modality set (as the joint_std calibration names it), e.g. ``2d+world``."""
    return key(ordered(modalities))


def default_onnx_name(model_id: str, modalities: Iterable[str], precision: str = "fp32") -> str:
    return f"{model_id}_{modality_tag(modalities).replace('+', '-')}_{precision}.onnx"


def write_onnx_metadata(proto: Any, meta: dict[str, Any]) -> None:
    """Replace an ONNX model's metadata with ``meta`` as ``streamhand.*`` JSON entries (what
    :func:`read_onnx_metadata` reads back)."""
    del proto.metadata_props[:]
    for k, v in meta.items():
        p = proto.metadata_props.add()
        p.key, p.value = f"streamhand.{k}", json.dumps(v)


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The ``streamhand.*`` metadata of an exported file (ExportError if it is not one of ours)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"ONNX file not found: {p}")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise ExportError(f"{p}: not a readable ONNX file ({type(e).__name__})") from None
    meta: dict[str, Any] = {}
    for prop in proto.metadata_props:
        if prop.key.startswith("streamhand."):
            try:
                meta[prop.key[len("streamhand.") :]] = json.loads(prop.value)
            except json.JSONDecodeError:
                raise ExportError(f"{p}: metadata {prop.key} is not JSON") from None
    if meta.get("format") != ONNX_FORMAT:
        raise ExportError(f"{p}: not a streamhand export (format {meta.get('format')!r}, expected {ONNX_FORMAT!r})")
    if meta.get("layout") != SKELETON_INFO["layout"]:
        raise ExportError(f"{p}: joint layout differs from this streamhand's")
    problem = _metadata_problem(meta) or _graph_problem(meta, proto.graph)
    if problem:
        raise ExportError(f"{p}: {problem}")
    return meta


def _is_int(v: Any, least: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _metadata_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the values of a graph's ``streamhand.*`` metadata that the runtime relies on (None:
    nothing); optional keys (missing in older exports) are checked where present."""
    mods = meta.get("modalities")
    if not (isinstance(mods, list) and mods and all(m in INPUT_NAMES for m in mods) and len(set(mods)) == len(mods)):
        return f"metadata modalities {mods!r} is not a list of {', '.join(INPUT_NAMES)}"
    if not isinstance(meta.get("model_id"), str):
        return f"metadata model_id {meta.get('model_id')!r} is not a name"
    if "image_size" not in meta:
        return "metadata has no image_size"
    for k, least in (("image_size", 1), ("z_dim", 1), ("cloud_points", 1), ("max_batch", 1), ("n_samples", 0),
                     ("opset", 1), ("noise_seed", 0)):  # fmt: skip
        if k in meta and not _is_int(meta[k], least):
            return f"metadata {k} {meta[k]!r} is not an integer of at least {least}"
    if meta.get("conventions") != CONVENTIONS:
        return "its conventions (root, normalisation, handedness, view) differ from this streamhand's"
    if meta.get("precision", "fp32") not in ONNX_PRECISIONS:
        return f"metadata precision {meta['precision']!r} is not one of {', '.join(ONNX_PRECISIONS)}"
    if meta.get("crop_view", "box") not in CROP_VIEWS:
        return f"metadata crop_view {meta['crop_view']!r} is not one of {', '.join(CROP_VIEWS)}"
    enc = meta.get("encoders", [])
    if not (isinstance(enc, list) and all(isinstance(e, str) for e in enc)):
        return f"metadata encoders {enc!r} is not a list of names"
    if not isinstance(meta.get("checkpoint_sha256", ""), str):
        return f"metadata checkpoint_sha256 {meta['checkpoint_sha256']!r} is not a string"
    for k in ("std_calibration", "error_model"):  # per set of experts (``2d+world``), a dict each
        v = meta.get(k)
        if v is not None and not (isinstance(v, dict) and all(isinstance(e, dict) for e in v.values())):
            return f"metadata {k} is not a table of expert sets"
    return None


def _graph_problem(meta: dict[str, Any], graph: Any) -> str | None:
    """Where the graph itself contradicts its metadata (inputs, their shapes, the posterior noise table): read from
    the graph's structure, not its weights."""
    mods, s, pts = meta["modalities"], meta["image_size"], meta.get("cloud_points", 256)
    init = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init]
    want = [INPUT_NAMES[m] for m in mods]
    if [i.name for i in inputs] != want:
        return f"inputs {[i.name for i in inputs]} do not match its metadata {mods}"
    shapes = {"2d": [NUM_JOINTS, 2], "world": [NUM_JOINTS, 3], "rgb": [3, s, s], "depth": [1, s, s], "cloud": [pts, 3]}
    for i, m in zip(inputs, mods):
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in i.type.tensor_type.shape.dim]
        if dims[1:] != shapes[m]:
            return f"input {i.name} has shape {dims}, its metadata says [B, {', '.join(map(str, shapes[m]))}]"
    noise = init.get("noise")
    if noise is not None and all(k in meta for k in ("n_samples", "max_batch", "z_dim")):
        want_dims = [meta["n_samples"], meta["max_batch"], meta["z_dim"]]
        if list(noise.dims) != want_dims:
            return f"its noise table is {list(noise.dims)}, its metadata says {want_dims} (samples, max batch, z)"
    return None


def _graph_folders(sha: str) -> Iterator[Path]:
    """Where graphs exported from the checkpoint with this sha256 may be: the shipped folders, then the cache."""
    from streamhand.cache import cache_dir
    from streamhand.outputs import sweep_abandoned

    if SHIPPED_GRAPHS.is_dir():
        yield from sorted(p for p in SHIPPED_GRAPHS.iterdir() if p.is_dir())
    cached = cache_dir("onnx", sha[:16])
    if cached.is_dir():
        sweep_abandoned(cached)  # the part files of exports and quantizations that were killed
    yield cached


def prepared_graphs(sha: str) -> list[tuple[Path, dict]]:
    """Every prepared graph of the checkpoint with this sha256 (shipped, then cached) with its metadata, each file
    read once; graphs of other checkpoints, unreadable files and exports older than the ``encoders`` key are left
    out."""
    out = []
    for folder in _graph_folders(sha):
        for p in sorted(folder.glob("*.onnx")):
            try:
                meta = read_onnx_metadata(p)
            except ExportError as e:  # made by an earlier version, or damaged: prepared again where it can be
                log.info("skipping %s", e)
                continue
            if meta.get("checkpoint_sha256") == sha and "encoders" in meta:
                out.append((p, meta))
    return out


def pick_graph(graphs: list[tuple[Path, dict]], modalities: Iterable[str], n_samples: int,
               precision: str = "fp32") -> tuple[Path, dict] | None:  # fmt: skip
    """Of :func:`prepared_graphs`, the graph of this precision for exactly this modality set and sample count (None:
    none)."""
    mods = list(ordered(modalities))
    return next(((p, m) for p, m in graphs if m.get("modalities") == mods and m.get("n_samples") == n_samples
                 and m.get("precision", "fp32") == precision), None)  # fmt: skip


def cached_graph_path(sha: str, model_id: str, modalities: Iterable[str], n_samples: int) -> Path:
    """Where the first use of a checkpoint writes its graph for a modality set."""
    from streamhand.cache import cache_dir

    return cache_dir("onnx", sha[:16]) / f"k{n_samples}_{default_onnx_name(model_id, modalities)}"


def model_summary(name_or_path: str | Path | None) -> dict[str, Any] | None:
    """A model's file, id, encoders and sha256 without PyTorch, where a graph of it is prepared (else None)."""
    path = resolve_model(name_or_path)
    sha = file_sha256(path)
    graphs = prepared_graphs(sha)
    if not graphs:
        return None
    meta = graphs[0][1]
    return {"path": path, "sha256": sha, "model_id": meta["model_id"], "encoders": meta["encoders"],
            "error_model": meta.get("error_model")}
