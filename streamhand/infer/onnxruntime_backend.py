"""ONNX Runtime backend: one exported graph per modality set, on the best provider installed.

Graphs are found by the checkpoint's sha256 — shipped beside the package's models, or prepared by an earlier run
in the cache (:mod:`streamhand.model_files`) — or given explicitly. Running them needs no PyTorch; a graph not
prepared yet is made by the ``prepare`` build step the caller passes (``streamhand run`` passes
:func:`streamhand.export.onnx_export.prepare_graph`, which needs PyTorch, at first use; cached).
Each file's embedded metadata is checked at load (format, layout, conventions, the values the backend relies on,
checkpoint, sample count). A cached graph that ONNX Runtime refuses to load (damaged) is prepared again with a
warning; a shipped or given one is a one-line :class:`~streamhand.model_files.ExportError`. Providers are tried
in the order TensorRT, CUDA, CPU, filtered by what this onnxruntime build has.
"""

from __future__ import annotations

import functools
import itertools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamhand.infer.base import Backend, BackendOutput
from streamhand.infer.int8 import PRECISION_CHOICES, all_keypoints, current_int8, int8_graph
from streamhand.modalities import has_expert, ordered
from streamhand.model_files import (
    INPUT_NAMES,
    CheckpointError,
    ExportError,
    GraphsNotPrepared,
    file_sha256,
    modality_tag,
    pick_graph,
    prepared_graphs,
    read_onnx_metadata,
    resolve_model,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from streamhand.checkpoint import Checkpoint

    #: (checkpoint, modality set, its file's sha256 or None, posterior samples) -> (graph file, its metadata)
    Prepare = Callable[[Checkpoint, tuple[str, ...], str | None, int], tuple[Path, dict]]

log = logging.getLogger(__name__)
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class _Remake(Exception):
    """A graph this program prepared in the cache that ONNX Runtime refused; the file is removed and is made again."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def _sound(path: Path) -> bool:
    """Whether ONNX Runtime's CPU provider loads ``path`` (a file another provider refused may be sound)."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


def in_cache(path: Path) -> bool:
    """Whether ``path`` is a graph this program prepared in its cache (it can make it again)."""
    from streamhand.cache import cache_dir

    return Path(path).resolve().is_relative_to(cache_dir("onnx").resolve())


def available_providers() -> list[str]:
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return [p for p in PROVIDER_ORDER if p in have]


def subsets(modalities: tuple[str, ...]) -> list[tuple[str, ...]]:
    mods = ordered(modalities)
    return [c for r in range(len(mods), 0, -1) for c in itertools.combinations(mods, r)]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        checkpoint: str | Path | Checkpoint | None = None,
        modalities: tuple[str, ...] | None = None,
        n_samples: int = 16,
        threads: int = 1,
        providers: list[str] | None = None,
        files: list[str | Path] | None = None,
        prepare: Prepare | None = None,
        precision: str = "fp32",
    ):
        """Serve every non-empty subset of ``modalities`` (default: the model's run-time encoders), or exactly
        the graphs in ``files``. ``prepare`` makes a graph that is not prepared yet (a build step:
        :func:`streamhand.export.onnx_export.prepare_graph`); without it a missing graph is
        :class:`~streamhand.model_files.GraphsNotPrepared`. ``precision``: ``fp32``, ``int8`` (the fully connected
        layers' weights in 8 bits, :mod:`streamhand.infer.int8`) or ``auto`` (int8 on the CPU provider, else fp32);
        ``files`` are run as they are."""
        self._prepare = prepare
        import onnxruntime as ort

        if precision not in PRECISION_CHOICES:
            raise ValueError(f"precision {precision!r}: choose from {', '.join(PRECISION_CHOICES)}")
        have = available_providers()
        self.providers = [p for p in (providers or have) if p in have]
        if not self.providers:
            raise ValueError(f"none of the providers {providers} is in this onnxruntime build ({', '.join(have)})")
        self._explicit_int8 = precision == "int8"
        on_cpu = self.providers[0] == "CPUExecutionProvider"
        self.precision = "int8" if precision == "int8" or (precision == "auto" and on_cpu) else "fp32"
        self._opts = ort.SessionOptions()
        self._opts.intra_op_num_threads = max(1, threads)
        self._opts.inter_op_num_threads = 1
        self._opts.log_severity_level = 3
        self._sessions: dict[tuple[str, ...], tuple[object, list[str], int]] = {}  # session, inputs, max batch
        self.files: dict[tuple[str, ...], Path] = {}  # the graph file each modality set runs
        self._loaded_precision: dict[tuple[str, ...], str] = {}
        if files:
            metas = [read_onnx_metadata(f) for f in files]
            for f, m in zip(files, metas):
                self._load(Path(f), m)
            self.precision = str(metas[0].get("precision", "fp32"))
            self._describe_model({k: v for k, v in metas[0].items() if k != "encoders"})  # serves these sets only
            return
        if checkpoint is not None and not isinstance(checkpoint, (str, Path)):  # a Checkpoint object in memory
            self._from_checkpoint(checkpoint, modalities, n_samples, None)
            return
        path = resolve_model(checkpoint)
        sha = file_sha256(path)
        if not self._prepared(sha, modalities, n_samples):
            self._from_checkpoint(path, modalities, n_samples, sha)

    def _prepared(self, sha: str, modalities: tuple[str, ...] | None, n_samples: int) -> bool:
        """Load every graph of the checkpoint with this ``sha`` from prepared files; False if one is missing."""
        graphs = prepared_graphs(sha)
        if not graphs:
            return False
        encoders = graphs[0][1]["encoders"]
        mods = ordered(modalities or (m for e in encoders for m in e.split("+") if m in INPUT_NAMES))
        chosen = []
        for s in subsets(mods):
            hit = pick_graph(graphs, s, n_samples)
            if hit is None:
                if not has_expert(encoders, s):  # no expert for this subset: no graph either
                    continue
                return False
            chosen.append(hit)
        if not chosen:
            return False
        for hit in chosen:
            if not self._load_prepared(hit, graphs, sha, None):  # a damaged cached graph: made from the checkpoint
                return False
        self._describe_model(chosen[0][1])
        return True

    def _describe_model(self, meta: dict) -> None:
        self.model_id, self.image_size = meta["model_id"], int(meta["image_size"])
        self.cloud_points = int(meta.get("cloud_points", 256))
        self.crop_view = str(meta.get("crop_view", "box"))
        self.std_calibration = meta.get("std_calibration")
        self.error_model = meta.get("error_model")
        enc = meta.get("encoders")
        self.modalities = (tuple(m for e in enc for m in e.split("+")) if enc
                           else tuple(sorted({m for s in self._sessions for m in s})))  # fmt: skip

    def _from_checkpoint(self, checkpoint, modalities, n_samples: int, sha: str | None) -> None:
        """Load the graphs of a checkpoint (PyTorch reads it), preparing those not prepared yet."""
        try:
            from streamhand.checkpoint import Checkpoint, load_checkpoint
        except ImportError:
            wanted = f" for {modality_tag(modalities)}" if modalities else ""
            raise CheckpointError(f"{checkpoint}: no prepared ONNX graph{wanted} with {n_samples} posterior samples, "
                                  "and reading the checkpoint needs PyTorch (pip install 'streamhand[torch]')"
                                  ) from None  # fmt: skip
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        mods = ordered(modalities or tuple(m for m in ckpt.model.modalities if m in INPUT_NAMES))
        if sha is None and ckpt.path is not None:
            sha = file_sha256(ckpt.path)
        known = prepared_graphs(sha) if sha is not None else []
        for s in (s for s in subsets(mods) if has_expert(list(ckpt.model.encoders), s)):
            hit = pick_graph(known, s, n_samples)
            remake = None if self._prepare is None else functools.partial(self._prepare, ckpt, s, sha, n_samples)
            if hit is None and remake is not None:
                hit = remake()
            if hit is None or not self._load_prepared(hit, known, sha, remake):  # False: damaged, and no remake
                raise GraphsNotPrepared(f"{ckpt.path or ckpt.model_id}: its ONNX graph for {modality_tag(s)} with "
                                        f"{n_samples} posterior samples is not prepared")  # fmt: skip
        self._describe_model({"model_id": ckpt.model_id, "image_size": ckpt.model.cfg.image_size,
                              "cloud_points": ckpt.model.cfg.cloud_points, "crop_view": ckpt.model.cfg.crop_view,
                              "std_calibration": ckpt.meta.get("std_calibration"),
                              "error_model": ckpt.meta.get("error_model"),
                              "encoders": list(ckpt.model.cfg.encoders)})  # fmt: skip

    def _load_prepared(self, hit: tuple[Path, dict], graphs: list[tuple[Path, dict]], sha: str | None,
                       remake: Callable[[], tuple[Path, dict]] | None) -> bool:  # fmt: skip
        """Load the prepared graph ``hit`` at the run's precision. A cached file ONNX Runtime refuses is removed and
        made once more: an int8 one quantized again, an fp32 one by ``remake`` (False where there is none)."""
        for last in (False, True):
            try:
                self._load(*self._at_precision(*hit, graphs, sha, remake=not last), remake=not last)
                return True
            except _Remake as e:
                graphs = [g for g in graphs if g[0] != e.path]
                if e.path == hit[0]:  # the fp32 graph itself
                    if remake is None:
                        return False
                    hit = remake()
        raise AssertionError("unreachable")  # the last try raises ExportError instead of _Remake

    def _at_precision(self, path: Path, meta: dict, graphs: list[tuple[Path, dict]], sha: str | None,
                      remake: bool = False) -> tuple[Path, dict]:  # fmt: skip
        """The fp32 graph ``path`` or, for an int8 run, its int8 version: prepared already, or quantized now (and
        cached). ``auto`` quantizes only keypoint graphs (there the fully connected layers are the whole cost; an
        image expert's convolutions stay fp32, so only a shipped int8 graph is taken). A graph that cannot be
        quantized runs in fp32 unless int8 was asked for by name; one that ONNX Runtime cannot load either is
        damaged (:meth:`_open`, with ``remake``)."""
        if self.precision != "int8":
            return path, meta
        hit = pick_graph(graphs, meta["modalities"], int(meta["n_samples"]), "int8")
        if hit is not None and current_int8(hit[1]):
            return hit
        if not self._explicit_int8 and not all_keypoints(meta["modalities"]):
            return path, meta
        try:
            return int8_graph(path, meta, sha)
        except (ExportError, OSError) as e:  # OSError: the cache could not be written (full, read-only)
            if isinstance(e, ExportError):
                self._open(path, remake)  # the fp32 graph itself may be damaged: made again, or said so
            if self._explicit_int8:
                raise ExportError(f"--precision int8: {e}") from None
            log.warning("%s; running it in fp32", e)
            return path, meta

    def _load(self, path: Path, meta: dict, remake: bool = False) -> None:
        """Serve the modality set of ``path`` (its metadata ``meta``, as :func:`read_onnx_metadata` reads it) with its
        own batch limit; a file ONNX Runtime refuses: :meth:`_open`."""
        mods = tuple(meta["modalities"])
        max_batch = meta.get("max_batch", 256)  # a positive int: read_onnx_metadata checked it
        sess = self._open(path, remake)
        names = [i.name for i in sess.get_inputs()]
        if names != [INPUT_NAMES[m] for m in mods]:
            raise ExportError(f"{path}: inputs {names} do not match its metadata {mods}")
        self._sessions[mods] = (sess, names, max_batch)
        self.files[mods] = path
        self._loaded_precision[mods] = str(meta.get("precision", "fp32"))
        log.debug("onnxruntime: %s from %s on %s", modality_tag(mods), path, sess.get_providers()[0])

    def _open(self, path: Path, remake: bool) -> Any:
        """An ONNX Runtime session of ``path``; a file it refuses is :class:`ExportError` naming it, or with
        ``remake`` and a graph this program prepared in its cache, removed (with a warning) and :class:`_Remake`."""
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(path), self._opts, providers=self.providers)
        except Exception as e:  # onnxruntime's own types (Fail, InvalidGraph, NoSuchFile, ...): a damaged file
            why = " ".join(str(e).split()).removeprefix("[ONNXRuntimeError] : ")[:300]
            if self.providers[0] != "CPUExecutionProvider" and _sound(path):  # the GPU provider failed, not the file
                raise ExportError(f"{path}: ONNX Runtime's {self.providers[0]} cannot run it ({why})") from None
            if remake and in_cache(path):
                log.warning("%s: ONNX Runtime cannot load it (%s); preparing it again", path, why)
                path.unlink(missing_ok=True)
                raise _Remake(path) from None
            raise ExportError(f"{path}: ONNX Runtime cannot load it ({why})") from None

    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        key = ordered(tuple(inputs))
        if key not in self._sessions:
            raise KeyError(f"no ONNX graph for modalities {modality_tag(key)}; loaded: "
                           f"{', '.join(modality_tag(k) for k in self._sessions)}")  # fmt: skip
        sess, names, step = self._sessions[key]
        b = len(next(iter(inputs.values())))
        outs = []
        for i in range(0, b, step):  # the graph's noise table covers max_batch hands (256 by default)
            feed = {n: np.ascontiguousarray(inputs[m][i : i + step], dtype=np.float32)
                    for n, m in zip(names, key)}  # fmt: skip
            outs.append(sess.run(None, feed))
        if len(outs) == 1:  # a frame's hands: one call, its outputs as they come
            return BackendOutput(*outs[0][:3])
        j, s, d = (np.concatenate([o[k] for o in outs]) for k in range(3))
        return BackendOutput(j, s, d)

    def describe(self) -> str:
        loaded = "+".join(sorted(set(self._loaded_precision.values()), reverse=True)) or self.precision
        return (f"{self.name}[{self.providers[0]}, {loaded}] ({self.model_id}, encoders "
                f"{','.join(self.modalities)})")  # fmt: skip
