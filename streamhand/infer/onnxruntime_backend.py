"""ONNX Runtime backend: one exported graph per modality set, on the best provider installed.

Graphs come from :func:`streamhand.export.export_onnx`, made on first use and cached by the checkpoint's
sha256 (in :func:`streamhand.cache.cache_dir`), or from files given explicitly. Each file's embedded metadata
is checked at load (format, layout, checkpoint, sample count). Providers are tried in the order TensorRT,
CUDA, CPU, filtered by what this onnxruntime build has.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np

from streamhand.cache import cache_dir
from streamhand.checkpoint import Checkpoint, load_checkpoint
from streamhand.export.graph import INPUT_NAMES, has_expert, ordered
from streamhand.export.onnx_export import (
    ExportError,
    default_onnx_name,
    export_onnx,
    file_sha256,
    modality_tag,
    read_onnx_metadata,
)
from streamhand.infer.base import Backend, BackendOutput

log = logging.getLogger(__name__)
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


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
    ):
        """Serve every non-empty subset of ``modalities`` (default: the model's run-time encoders), or exactly
        the graphs in ``files``."""
        import onnxruntime as ort

        have = available_providers()
        self.providers = [p for p in (providers or have) if p in have]
        if not self.providers:
            raise ValueError(f"none of the providers {providers} is in this onnxruntime build ({', '.join(have)})")
        self._opts = ort.SessionOptions()
        self._opts.intra_op_num_threads = max(1, threads)
        self._opts.inter_op_num_threads = 1
        self._opts.log_severity_level = 3
        self._sessions: dict[tuple[str, ...], tuple[object, list[str]]] = {}
        if files:
            metas = [read_onnx_metadata(f) for f in files]
            for f, m in zip(files, metas):
                self._load(Path(f), m)
            meta = metas[0]
            self.model_id, self.image_size = meta["model_id"], int(meta["image_size"])
            self.cloud_points = int(meta.get("cloud_points", 256))
            self.crop_view = str(meta.get("crop_view", "box"))
            self.std_calibration = meta.get("std_calibration")
            self.modalities = tuple(sorted({m for s in self._sessions for m in s}))
            return
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.model_id, self.image_size = ckpt.model_id, ckpt.model.cfg.image_size
        self.cloud_points, self.crop_view = ckpt.model.cfg.cloud_points, ckpt.model.cfg.crop_view
        self.std_calibration = ckpt.meta.get("std_calibration")
        self.modalities = tuple(ckpt.model.modalities)
        mods = ordered(modalities or tuple(m for m in ckpt.model.modalities if m in INPUT_NAMES))
        sha = file_sha256(ckpt.path) if ckpt.path is not None else None
        for s in (s for s in subsets(mods) if has_expert(ckpt.model, s)):
            self._load(*self._graph(ckpt, s, sha, n_samples))

    def _graph(self, ckpt: Checkpoint, mods: tuple[str, ...], sha: str | None, n_samples: int):
        """The cached export of ``mods`` if its metadata matches, else a fresh export."""
        if sha is not None:
            path = cache_dir("onnx", sha[:16]) / f"k{n_samples}_{default_onnx_name(ckpt.model_id, mods)}"
            try:
                meta = read_onnx_metadata(path)
                if meta["checkpoint_sha256"] == sha and meta["n_samples"] == n_samples:
                    return path, meta
            except (ExportError, KeyError):
                pass  # missing or stale: export again
        else:  # an unsaved checkpoint: a private temporary export
            import tempfile

            path = Path(tempfile.mkdtemp(prefix="streamhand-onnx-")) / default_onnx_name(ckpt.model_id, mods)
        art = export_onnx(ckpt, mods, path, n_samples=n_samples)
        return art.path, art.metadata

    def _load(self, path: Path, meta: dict) -> None:
        import onnxruntime as ort

        mods = tuple(meta["modalities"])
        sess = ort.InferenceSession(str(path), self._opts, providers=self.providers)
        names = [i.name for i in sess.get_inputs()]
        if names != [INPUT_NAMES[m] for m in mods]:
            raise ExportError(f"{path}: inputs {names} do not match its metadata {mods}")
        self._sessions[mods] = (sess, names)
        self._max_batch = int(meta.get("max_batch", 256))
        log.debug("onnxruntime: %s from %s on %s", modality_tag(mods), path, sess.get_providers()[0])

    def infer(self, inputs: dict[str, np.ndarray]) -> BackendOutput:
        key = ordered(tuple(inputs))
        if key not in self._sessions:
            raise KeyError(f"no ONNX graph for modalities {modality_tag(key)}; loaded: "
                           f"{', '.join(modality_tag(k) for k in self._sessions)}")  # fmt: skip
        sess, names = self._sessions[key]
        b = len(next(iter(inputs.values())))
        outs = []
        for i in range(0, b, self._max_batch):  # the noise table covers max_batch hands (256 by default)
            feed = {n: np.ascontiguousarray(inputs[m][i : i + self._max_batch], dtype=np.float32)
                    for n, m in zip(names, key)}  # fmt: skip
            outs.append(sess.run(None, feed))
        j, s, d = (np.concatenate([o[k] for o in outs]) for k in range(3))
        return BackendOutput(j, s, d)

    def describe(self) -> str:
        return f"{self.name}[{self.providers[0]}] ({self.model_id}, modalities {','.join(self.modalities)})"
