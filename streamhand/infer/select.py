"""Backend choice: ``auto`` takes the fastest backend this machine can run and says why.

``auto``'s order: a TensorRT engine (from ``streamhand build-engine``) whose sidecar matches this model, the
run's modality set, this GPU and this TensorRT; ONNX Runtime with a GPU provider; PyTorch on CUDA (CUDA
graphs); ONNX Runtime on the CPU (about twice PyTorch eager for these models); PyTorch on the CPU.
A requested backend that cannot run here is an error, except ``tensorrt`` without a usable engine, which says
why and falls back to ``auto``'s next choice. The reason is logged, and kept as ``backend.reason`` for the
status topic and the run report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streamhand.cpu import too_many_threads
from streamhand.error_model import default_samples
from streamhand.infer.base import Backend
from streamhand.modalities import ModalityError, ordered
from streamhand.model_files import INPUT_NAMES, CheckpointError, model_summary
from streamhand.sidecar import Machine, SidecarError, compatibility_problems, read_sidecar, this_machine

if TYPE_CHECKING:
    from collections.abc import Iterable

    from streamhand.checkpoint import Checkpoint
    from streamhand.infer.onnxruntime_backend import Prepare

log = logging.getLogger(__name__)
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISION_PREFERENCE = ("fp16", "int8", "fp32")
#: the thread-count warnings already given in this process (:func:`warn_threads`): each is said once
_THREADS_WARNED: set[str] = set()


@dataclass
class Installed:
    """What this machine has, as far as backend choice goes."""

    machine: Machine
    ort_providers: list[str] = field(default_factory=list)  # empty: onnxruntime is not installed
    engine: Path | None = None  # a usable engine for this model and modality set
    engine_note: str = ""  # why there is none


@dataclass
class Choice:
    backend: str  # tensorrt | onnxruntime | torch
    device: str  # cuda | cpu
    provider: str | None
    reason: str
    engine: Path | None = None  # the TensorRT engine, for "tensorrt"


def choose(requested: str, have: Installed) -> Choice:
    """The backend to make for ``requested`` given what is installed (pure: table-tested)."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; choose from {', '.join(BACKENDS)}")
    gpu = have.machine.gpu is not None
    gpu_ep = next((p for p in have.ort_providers if p != "CPUExecutionProvider"), None) if gpu else None
    if requested == "torch":
        return Choice("torch", "cuda" if gpu else "cpu", None, "requested")
    if requested == "onnxruntime":
        if not have.ort_providers:
            raise ValueError("--backend onnxruntime: onnxruntime is not installed (pip install onnxruntime)")
        return Choice("onnxruntime", "cuda" if gpu_ep else "cpu", gpu_ep or "CPUExecutionProvider", "requested")
    notes = []
    if have.engine is not None:
        why = f"TensorRT engine {have.engine.name} matches this GPU and TensorRT"
        return Choice("tensorrt", "cuda", None, why, have.engine)
    notes.append(have.engine_note or "no TensorRT engine")
    if requested == "tensorrt":  # what this machine lacks first: without it no engine would help
        lacks = [w for w, miss in (("TensorRT is not installed (pip install 'streamhand[tensorrt]')",
                                    have.machine.tensorrt is None), ("this machine has no CUDA GPU", not gpu)) if miss]
        log.warning("--backend tensorrt: %s; falling back", "; ".join([*lacks, notes[0]]))
    if gpu_ep:
        return Choice("onnxruntime", "cuda", gpu_ep, "; ".join([*notes, f"ONNX Runtime has {gpu_ep}"]))
    if gpu:
        return Choice("torch", "cuda", None, "; ".join([*notes, f"PyTorch on {have.machine.gpu} with CUDA graphs"]))
    notes.append("no CUDA GPU")
    if have.ort_providers:
        why = "ONNX Runtime runs these models about 2x faster than PyTorch on a CPU"
        return Choice("onnxruntime", "cpu", "CPUExecutionProvider", "; ".join([*notes, why]))
    return Choice("torch", "cpu", None, "; ".join([*notes, "onnxruntime is not installed"]))


def find_engine(engine_dir: Path, model_id: str, modalities: tuple[str, ...], here: Machine,
                n_samples: int | None = None) -> tuple[Path | None, str]:  # fmt: skip
    """The preferred usable engine in ``engine_dir`` for this model and modality set, or why there is none."""
    if not engine_dir.is_dir():
        return None, f"no engines folder {engine_dir}"
    mods, found, problems = ordered(modalities), [], []
    for p in sorted(engine_dir.glob("*.engine")):
        try:
            side = read_sidecar(p)
        except SidecarError as e:
            problems.append(str(e))
            continue
        if side["model_id"] != model_id:  # another model's, or MediaPipe's hand networks (modalities ["image"])
            continue
        try:
            if ordered(tuple(side["modalities"])) != mods:
                continue
        except ModalityError as e:
            problems.append(f"{p.name}: {e}")
            continue
        k = side.get("options", {}).get("n_samples")
        if n_samples is not None and k != n_samples:
            problems.append(f"{p.name}: built with {k} posterior samples, the run uses {n_samples}")
            continue
        why = compatibility_problems(side, here)
        if why:
            problems.append(f"{p.name}: {'; '.join(why)}")
        else:
            rank = PRECISION_PREFERENCE.index(side["precision"]) if side["precision"] in PRECISION_PREFERENCE else 9
            found.append((rank, -p.stat().st_mtime, p))  # of one precision, the newest build
    if found:
        return min(found)[2], ""
    if problems:
        return None, "no usable TensorRT engine (" + " | ".join(problems) + ")"
    return None, f"no TensorRT engine for {model_id} {'+'.join(mods)} in {engine_dir}"


def installed(engine_dir: Path | None, model_id: str, modalities: tuple[str, ...],
              n_samples: int | None = None) -> Installed:  # fmt: skip
    here = this_machine()
    try:
        from streamhand.infer.onnxruntime_backend import available_providers

        providers = available_providers()
    except ImportError:
        providers = []
    engine, note = find_engine(engine_dir or Path("engines"), model_id, modalities, here, n_samples)
    return Installed(here, providers, engine, note)


@dataclass
class ModelEncoders:
    """A model's encoders, read before any backend is made; ``handle`` is what :func:`make_backend` takes."""

    encoders: list[str]
    handle: str | Path | Checkpoint | None
    model_id: str = "unknown"
    #: the sets of experts (``2d+world``) the model carries an error model for (:mod:`streamhand.error_model`):
    #: their joint_std needs no posterior samples
    error_model_sets: frozenset[str] = frozenset()

    def default_samples(self, modalities: Iterable[str] | None = None) -> int:
        """Posterior samples a run fusing ``modalities`` (None: every input) takes unless told
        (:func:`streamhand.error_model.default_samples`)."""
        return default_samples(self.error_model_sets, self.encoders if modalities is None else modalities)


def model_encoders(name_or_path: str | Path | None) -> ModelEncoders:
    """The encoders of a shipped model's name or a checkpoint path (CheckpointError if it cannot be read): from
    its prepared ONNX graphs where there are some (no PyTorch), else from the checkpoint itself."""
    if name_or_path is not None and str(name_or_path).lower().endswith(".onnx"):
        raise CheckpointError(f"{name_or_path}: an ONNX graph; --model takes the checkpoint (.pt) it was exported "
                              "from, or a shipped model's name (a run prepares and finds its graphs)")  # fmt: skip
    info = model_summary(name_or_path)
    if info is not None:
        return ModelEncoders(list(info["encoders"]), info["path"], info["model_id"],
                             frozenset(info.get("error_model") or ()))
    ckpt = _load(name_or_path)
    return ModelEncoders(list(ckpt.model.cfg.encoders), ckpt, ckpt.model_id,
                         frozenset(ckpt.meta.get("error_model") or ()))


def _load(name_or_path: str | Path | None) -> Checkpoint:
    try:
        from streamhand.checkpoint import load_checkpoint
    except ImportError:
        raise CheckpointError(f"{name_or_path or 'default'}: no prepared ONNX graph of this checkpoint, and reading "
                              "it needs PyTorch (pip install 'streamhand[torch]')") from None  # fmt: skip
    return load_checkpoint(name_or_path)


def make_backend(
    name: str = "auto",
    checkpoint: str | Path | Checkpoint | ModelEncoders | None = None,
    n_samples: int = 16,
    threads: int = 1,
    modalities: tuple[str, ...] | None = None,
    engine_dir: Path | None = None,
    prepare: Prepare | None = None,
    precision: str = "fp32",
    threads_setting: str = "model.threads",
) -> Backend:
    """Make the backend ``name`` (or ``auto``'s choice) for the run's ``modalities``; ``backend.reason`` says why.
    ``prepare``: the build step that makes an ONNX graph not prepared yet; ``precision``: ONNX Runtime's graphs'
    (``auto``: int8 on a CPU; :mod:`streamhand.infer.int8`). ``threads`` above the cores this process may use is
    warned once (:func:`warn_threads`), naming ``threads_setting``, and kept."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    model = checkpoint if isinstance(checkpoint, ModelEncoders) else None
    if model is None:
        model = (ModelEncoders(list(checkpoint.model.cfg.encoders), checkpoint, checkpoint.model_id,
                               frozenset(checkpoint.meta.get("error_model") or ()))
                 if checkpoint is not None and not isinstance(checkpoint, (str, Path))
                 else model_encoders(checkpoint))  # fmt: skip
    runtime = [m for e in model.encoders for m in e.split("+") if m in INPUT_NAMES]
    mods = ordered(modalities or runtime)
    choice = choose(name, installed(engine_dir, model.model_id, mods, n_samples))
    warn_threads(threads, threads_setting)  # MediaPipe's graph runs on the CPU whatever the backend's device
    backend = _make(choice, model.handle, n_samples, threads, mods, prepare, precision)
    if precision == "int8" and backend.name != "onnxruntime":
        log.warning("--precision int8 applies to ONNX Runtime's graphs; the %s backend runs the model as it was "
                    "built", backend.name)  # fmt: skip
    backend.reason = backend.reason or choice.reason  # a fallback at load keeps its own
    log.info("backend: %s (%s: %s)", backend.describe(), name, backend.reason)
    return backend


def warn_threads(threads: int, setting: str = "model.threads") -> None:
    """One warning, once per process, where ``threads`` (the backend's CPU threads) is more than the cores this
    process may use (:func:`streamhand.cpu.too_many_threads`); the setting is kept as given."""
    note = too_many_threads(threads, setting)
    if note is not None and note not in _THREADS_WARNED:
        _THREADS_WARNED.add(note)
        log.warning("%s", note)


def _make(c: Choice, handle: str | Path | Checkpoint | None, n_samples: int, threads: int, mods: tuple[str, ...],
          prepare: Prepare | None, precision: str = "fp32") -> Backend:  # fmt: skip
    if c.backend == "onnxruntime":
        from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(handle, mods, n_samples, threads, providers=[c.provider or "CPUExecutionProvider"],
                                  prepare=prepare, precision=precision)  # fmt: skip
    try:
        from streamhand.infer.torch_backend import TorchBackend
    except ImportError:
        raise ValueError(f"--backend {c.backend}: needs PyTorch (pip install 'streamhand[torch]'); "
                         "--backend onnxruntime runs without it") from None  # fmt: skip
    ckpt = handle if handle is not None and not isinstance(handle, (str, Path)) else _load(handle)
    if c.backend == "torch":
        return TorchBackend(ckpt, device=c.device, n_samples=n_samples, threads=threads)
    from streamhand.infer.tensorrt_backend import EngineUnusable, TensorRTBackend

    fallback = TorchBackend(ckpt, device="cuda", n_samples=n_samples, threads=threads)
    try:
        return TensorRTBackend(c.engine, fallback=fallback)  # type: ignore[arg-type]
    except EngineUnusable as e:
        log.warning("tensorrt: %s; using PyTorch on CUDA", e)
        fallback.reason = f"{e}; PyTorch on CUDA with CUDA graphs"
        return fallback
