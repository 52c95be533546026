"""``streamhand bench``: latency (p50/p95/p99) and throughput of the inference graph per backend, modality set
and batch size, and of the hand detector options per frame, side by side in one run.

Model inputs are rendered synthetic hands (:mod:`streamhand.export.calibration_data`). The RGB path uses a
model of the image encoder's architecture (ResNet-18) with untrained weights: speed does not depend on them.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamhand.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from streamhand.cpu import cpu_facts
from streamhand.export.onnx_export import prepare_graph

log = logging.getLogger(__name__)


@dataclass
class Row:
    what: str  # "model" | "detector"
    backend: str  # the backend's own description (runtime, device or provider)
    modalities: str
    batch: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_s: float  # hands (model) or frames (detector) per second, from the median call (p50_ms)
    n: int
    samples: int = 0  # posterior samples in the model's graph (0 for a detector)


def _time(fn: Callable[[], object], iters: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out * 1e3


def _row(what: str, backend: str, mods: str, batch: int, ms: np.ndarray, samples: int = 0) -> Row:
    """One row; ``per_s`` from the median call, as ``p50_ms`` (a mean let a few calls slowed by other work make it
    contradict the percentiles beside it)."""
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return Row(what, backend, mods, batch, float(p50), float(p95), float(p99), float(batch * 1e3 / p50), len(ms),
               samples)  # fmt: skip


def rgb_checkpoint(folder: Path, image_size: int = 256) -> Path:
    """A checkpoint with the RGB expert's architecture (untrained, seeded), for timing the image path."""
    import torch

    from streamhand.models import HandPoseModel, ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(encoders=["rgb", "3d"], decoders=["3d"], hidden=1024, image_size=image_size)
    # the same bytes every time (no timestamp), so that its graph is prepared once into the cache, not on every run
    return save_checkpoint(folder / f"rgb{image_size}.pt", HandPoseModel(cfg), model_id=f"rgb-untrained-{image_size}",
                           created="untrained, for timing")  # fmt: skip


def bench_models(
    backends: list[str],
    sets: list[tuple[str, ...]],
    batches: list[int],
    checkpoint: str | None = None,
    iters: int = 100,
    warmup: int = 10,
    threads: int = 1,
    n_samples: int | None = None,
    image_size: int = 256,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """``n_samples`` None: as a run takes them for each set (0 where the model's error model judges it, else 16)."""
    from streamhand.error_model import default_samples
    from streamhand.export.calibration_data import model_inputs
    from streamhand.infer.int8 import all_keypoints
    from streamhand.infer.select import make_backend

    rows: list[Row] = []
    warned: set[str] = set()  # a backend missing here is said once, not once per modality set
    with tempfile.TemporaryDirectory(prefix="streamhand-bench-") as tmp_dir:  # the untrained rgb model, engines
        tmp = Path(tmp_dir)
        main = load_checkpoint(checkpoint)
        rgb: Checkpoint | None = None
        for mods in sets:
            ck = main
            if any(m in ("rgb", "depth") for m in mods) and not all(m in main.model.encoders for m in mods):
                rgb = rgb or load_checkpoint(rgb_checkpoint(tmp, image_size))
                ck = rgb
            if not all(m in ck.model.encoders for m in mods):
                log.warning("bench: the model has no encoder for %s; skipped", "+".join(mods))
                continue
            cfg = ck.model.cfg
            k = n_samples if n_samples is not None else default_samples(ck.meta.get("error_model") or (), mods)
            data = model_inputs(mods, max(batches), cfg.image_size, seed=5, cloud_points=cfg.cloud_points)
            # ONNX Runtime in fp32 and, for keypoint experts (where a run on a CPU takes it), with int8 weights
            both = all_keypoints(mods)
            runs = [(n, p) for n in backends for p in (("fp32", "int8") if n == "onnxruntime" and both else ("fp32",))]
            for name, precision in runs:
                if name == "tensorrt":
                    missing = _engine_for(ck, mods, batches, k, tmp / "engines")
                    if missing:
                        _warn_once(warned, f"bench: backend tensorrt unavailable: {missing}")
                        continue
                try:
                    be = make_backend(name, ck, k, threads, mods, tmp / "engines", prepare_graph, precision,
                                      threads_setting="--threads")  # fmt: skip
                except (ValueError, ImportError) as e:
                    _warn_once(warned, f"bench: backend {name} unavailable: {e}")
                    continue
                if be.name != name:  # tensorrt without a usable engine falls back: not timed twice
                    log.warning("bench: backend %s unavailable here (%s)", name, be.reason)
                    continue
                for b in batches:
                    x = {m: v[:b] for m, v in data.items()}
                    n = iters if "rgb" not in mods else max(10, iters // 4)
                    ms = _time(lambda be=be, x=x: be.infer(x), n, warmup)
                    row = _row("model", be.describe().split(" (")[0], "+".join(mods), b, ms, k)
                    rows.append(row)
                    if on_row:
                        on_row(row)
    return rows


def _warn_once(warned: set[str], message: str) -> None:
    if message not in warned:
        warned.add(message)
        log.warning("%s", message)


def _engine_for(ck: Checkpoint, mods: tuple[str, ...], batches: list[int], n_samples: int, out: Path) -> str | None:
    """Build an fp16 engine for the timing where TensorRT and a GPU are here; what this machine lacks for one (None:
    nothing; a build that fails is logged and ``make_backend`` then says why it falls back)."""
    from streamhand.export.engine_build import build, missing_for_engines
    from streamhand.export.tensorrt_build import EngineBuildError, EngineOptions
    from streamhand.sidecar import this_machine

    missing = missing_for_engines(this_machine())
    if missing:
        return missing
    try:
        build(ck, mods, EngineOptions("fp16", (1, min(batches), max(batches))), out, n_samples)
    except EngineBuildError as e:
        log.warning("bench: no engine for %s: %s", "+".join(mods), e)
    return None


def bench_detectors(detectors: list[str], frames: int = 100, on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Per-frame latency of each detector option on the demo clip (tracking on, as in a live run)."""
    from streamhand.capture.demo import DemoSource

    for name in detectors:
        parse_detector(name)
    src = DemoSource(realtime=False)
    src.open()
    clip = []
    try:
        while len(clip) < frames:
            f = src.read()
            if f is None:
                break
            clip.append(f.rgb)
    finally:
        src.close()
    rows = []
    for name in detectors:
        try:
            det = make_detector(name)
        except (ImportError, ValueError, RuntimeError) as e:
            log.warning("bench: detector %s unavailable: %s", name, e)
            continue
        with det:
            it = iter(range(10**9))
            ms = _time(lambda det=det, it=it: det(clip[next(it) % len(clip)]), len(clip), 5)
        row = _row("detector", name, "-", 1, ms)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def parse_detector(name: str) -> tuple[str, str, str]:
    """``mediapipe`` (MediaPipe's own graph) or ``network[-RUNTIME[-DEVICE]]`` (its networks, our tracking)."""
    parts = name.split("-")
    if name == "mediapipe":
        return "mediapipe", "", ""
    if parts[0] == "network" and len(parts) <= 3:
        runtime = parts[1] if len(parts) > 1 else "onnxruntime"
        device = parts[2] if len(parts) > 2 else "cpu"
        if runtime in ("torch", "onnxruntime", "tensorrt") and device in ("cpu", "cuda"):
            return "network", runtime, device
    raise ValueError(f"unknown detector {name!r}: mediapipe or network[-torch|-onnxruntime|-tensorrt[-cpu|-cuda]]")


def make_detector(name: str):
    kind, runtime, device = parse_detector(name)
    if kind == "mediapipe":
        from streamhand.detect import MediaPipeHands

        return MediaPipeHands(2, True)
    from streamhand.detect.gpu_hands import NetworkHands
    from streamhand.export.hand_networks import prepare_hand_networks

    models = prepare_hand_networks() if runtime != "tensorrt" else None
    return NetworkHands(max_hands=2, tracking=True, runtime=runtime, device=device, models_dir=models)


def as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


def document(rows: list[Row], threads: int) -> dict:
    """What ``--json`` writes: the rows, the CPU threads per backend and the machine they were timed on (``cpu``, as
    the run report carries it: :func:`streamhand.cpu.cpu_facts`)."""
    return {"rows": as_dicts(rows), "threads": threads, "cpu": cpu_facts()}  # each row says its posterior samples


def table(rows: list[Row], threads: int) -> Any:
    """The rows as one rich table (latency percentiles, and hands or frames per second at the median call)."""
    from rich.table import Table

    t = Table(title=f"streamhand bench ({threads} CPU thread(s); latency per call)")
    for col in ("what", "backend", "modalities", "batch", "samples", "p50 ms", "p95 ms", "p99 ms", "per s (p50)"):
        t.add_column(col, justify="right" if col not in ("what", "backend", "modalities") else "left")
    for r in rows:
        t.add_row(r.what, r.backend, r.modalities, str(r.batch), str(r.samples) if r.what == "model" else "-",
                  f"{r.p50_ms:.3f}", f"{r.p95_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.per_s:,.0f}")  # fmt: skip
    return t
