"""The GPU check, one command: ``python -m train.gpu_check --json gpu.json`` (from a checkout: it runs the tests and
trains, so it lives with the offline tools).

On a machine with an NVIDIA GPU it runs the CUDA-marked tests and measures, into one JSON file: the lifter at
batch 1 with uncertainty (PyTorch, CUDA graphs), an RGB expert on 256x256 crops, the shipped ``rgb`` model's RGB
expert (MediaPipe's landmark trunk on 224x224 crops, PyTorch and ONNX Runtime), MediaPipe's hand networks on
CUDA against MediaPipe's own graph (detections, landmark pixels, handedness), the demo through the whole pipeline
with the network detector (frames/s and the ratio to MediaPipe alone), and a training step's samples/s in bf16.
Built to fit one 10-minute command. Where there is no GPU, the same parts run on the CPU where they can (the
RGB expert, the networks on ONNX Runtime, the demo with MediaPipe's graph, an fp32 training step) and the JSON
says which part ran where, so CI runs this file too. Each part is timed and its failure recorded, not raised.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def environment() -> dict:
    """Versions and the device, so that a figure can be read with what made it."""
    import numpy as np

    env: dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__, "cuda": _cuda()}
    try:
        import torch

        env["torch"] = torch.__version__
        if env["cuda"]:
            env["gpu"] = torch.cuda.get_device_name(0)
            env["torch_cuda"] = torch.version.cuda
    except ImportError:
        env["torch"] = None
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
    try:
        import mediapipe

        env["mediapipe"] = mediapipe.__version__
    except ImportError:
        env["mediapipe"] = None
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except ImportError:
        env["tensorrt"] = None
    return env


def cuda_tests(timeout_s: float) -> dict:
    """The tests marked ``cuda`` (they skip without a GPU), in a process of their own."""
    if not (ROOT / "tests").is_dir():
        return {"skipped": "no tests folder (an installed package): run this from a checkout"}
    # a test module that cannot be imported where some package is missing must not stop the others
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
           "--continue-on-collection-errors", "tests"]  # fmt: skip
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"the CUDA tests took over {timeout_s:.0f} s"}
    tail = [ln for ln in p.stdout.strip().splitlines() if ln.strip()][-1:] or [""]
    res = {"returncode": p.returncode, "summary": tail[0], "failures": _failed_lines(p.stdout)}
    if p.returncode != 0:
        res["log_tail"] = (p.stdout + p.stderr)[-4000:]
    return res


def _failed_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR"))][:20]


def _timings(rows: list) -> dict:
    """bench rows -> {backend: {p50_ms, p95_ms}}."""
    return {r.backend: {"p50_ms": r.p50_ms, "p95_ms": r.p95_ms} for r in rows}


def lifter(iters: int) -> dict:
    """The shipped default model (2D + world) at batch 1 with 16 posterior samples, on PyTorch (CUDA graphs on a
    GPU) and on ONNX Runtime."""
    from streamhand.tools.bench import bench_models

    rows = bench_models(["torch", "onnxruntime"], [("2d", "world")], [1], None, iters, max(3, iters // 10), 1, 16)
    return _timings(rows)


def rgb_expert(iters: int) -> dict:
    """An RGB expert (ResNet-sized input: 256x256 crops) at batch 1, on PyTorch."""
    from streamhand.tools.bench import bench_models

    rows = bench_models(["torch"], [("rgb",)], [1], None, iters, max(3, iters // 10), 1, 16, 256)
    return _timings(rows)


def rgb_model(iters: int) -> dict:
    """The shipped ``rgb`` model's RGB expert alone (MediaPipe's landmark trunk and its head, 224x224 crops) at
    batch 1, on PyTorch and on ONNX Runtime (its shipped graph)."""
    from streamhand.tools.bench import bench_models

    rows = bench_models(["torch", "onnxruntime"], [("rgb",)], [1], "rgb", iters, max(3, iters // 10), 1, 0)
    return _timings(rows)


def hand_networks(frames: int) -> dict:
    """MediaPipe's palm and landmark networks run by our tracking (PyTorch on CUDA; ONNX Runtime on a CPU)
    against MediaPipe's own graph on the demo clip: detections, landmark pixels, handedness; the time a frame takes
    plain and flip-averaged (``--flip-average``: each hand's crop read with its mirror)."""
    from streamhand.capture.demo import demo_clip
    from streamhand.detect.gpu_hands import NetworkHands, compare_with_reference, time_per_frame
    from streamhand.detect.mediapipe_hands import MediaPipeHands
    from streamhand.export.hand_networks import prepare_hand_networks

    models = prepare_hand_networks()
    clip = [f[0] for f in demo_clip(frames, 640, 480, hands=2)]
    runtime, device = ("torch", "cuda") if _cuda() else ("onnxruntime", "cpu")
    with NetworkHands(tracking=True, runtime=runtime, device=device, models_dir=models) as ours, \
            MediaPipeHands(tracking=True) as ref:  # fmt: skip
        got = compare_with_reference(ours, ref, clip)
        plain = time_per_frame(ours, clip, warmup=0)  # warmed by the comparison
    with NetworkHands(tracking=True, runtime=runtime, device=device, models_dir=models, flip_average=True) as flip:
        flipped = time_per_frame(flip, clip, warmup=1)
    return {"runtime": f"{runtime}-{device}", "frames": len(clip), "ms_per_frame": plain["mean_ms"],
            "ms_per_frame_flip_average": flipped["mean_ms"], **got}


def demo(frames: int) -> dict:
    """The demo through the whole pipeline, unpaced, with the detector ``auto`` picks (MediaPipe's networks on a
    GPU, its graph on a CPU), then MediaPipe alone on the same frames for the ratio."""
    from streamhand.app import build_run
    from streamhand.runtime_config import RunConfig

    cfg = RunConfig.model_validate({"source": {"kind": "demo", "realtime": False}, "frames": frames})
    with build_run(cfg, publish=False) as run:
        rep = run.run()
        run.detector.close()
        run.compare_mediapipe(rep)
    keys = ("frames_processed", "fps", "detection_rate", "epe_mean_mm", "detector", "backend", "ratio_to_mediapipe",
            "compiled")  # fmt: skip
    out = {k: rep.get(k) for k in keys if k in rep}
    out["latency_p50_ms"] = {k: v["p50"] for k, v in rep["latency_ms"].items()}
    out["latency_p99_ms"] = {k: v["p99"] for k, v in rep["latency_ms"].items()}  # a stall shows here
    out["mediapipe_alone_fps"] = rep["mediapipe_alone"].get("fps")
    return out


def training(steps: int) -> dict:
    """Training steps of the smoke recipe (bf16 on a GPU, fp32 on a CPU): samples per second."""
    from streamhand.configio import load_yaml
    from train.config import TrainConfig
    from train.fit import fit

    cuda = _cuda()
    with tempfile.TemporaryDirectory(prefix="streamhand-gpu-check-") as tmp:
        cfg = load_yaml(TrainConfig, ROOT / "configs" / "train" / "smoke.yaml",
                        {"steps": steps, "eval_every": steps, "eval_n": 50, "checkpoint_every": steps, "out_dir": tmp,
                         "device": "cuda" if cuda else "cpu", "precision": "bf16" if cuda else "fp32",
                         "workers": 0})  # fmt: skip
        t0 = time.perf_counter()
        path = fit(cfg, progress=False)
        import torch

        hist = torch.load(path, map_location="cpu", weights_only=True)["history"]
    last = hist[-1] if hist else {}
    return {"device": last.get("device"), "precision": cfg.precision, "steps": steps,
            "samples_per_s": last.get("samples_per_s"), "val_epe_mean_mm": last.get("val_epe_mean_mm"),
            "wall_s": time.perf_counter() - t0}  # fmt: skip


def _part(name: str, fn: Callable[[], dict], needs_cuda: bool = False) -> dict:
    if needs_cuda and not _cuda():
        return {"skipped": "no CUDA device"}
    log.info("gpu check: %s", name)
    t0 = time.perf_counter()
    try:
        res = fn()
    except Exception as e:  # one part failing must not hide the others' figures
        res = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def check(frames: int = 300, iters: int = 200, steps: int = 200, tests: bool = True,
          tests_timeout_s: float = 240, on_part: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
    """Every part, in order; the figures in one dict (see the module's docstring). ``on_part`` is given the figures
    so far after each part, so that a check stopped midway keeps what it measured."""
    parts: list[tuple[str, str, Callable[[], dict], bool]] = [
        ("cuda_tests", "CUDA tests", lambda: cuda_tests(tests_timeout_s), True),
        ("lifter_b1", "lifter, batch 1", lambda: lifter(iters), False),
        ("rgb_expert_256", "RGB expert, 256x256", lambda: rgb_expert(max(10, iters // 4)), False),
        ("rgb_model", "the rgb model's RGB expert", lambda: rgb_model(max(10, iters // 4)), False),
        ("hand_networks", "MediaPipe's networks", lambda: hand_networks(min(frames, 120)), False),
        ("demo", "demo, whole pipeline", lambda: demo(frames), False),
        ("training", "training step", lambda: training(steps), False),
    ]
    out: dict[str, Any] = {"environment": environment()}
    for key, name, fn, needs_cuda in parts:
        out[key] = _part(name, fn, needs_cuda) if tests or key != "cuda_tests" else {"skipped": "--no-tests"}
        if on_part is not None:
            on_part(out)
    return out


def _description() -> str:
    """The help's description: the module docstring's first paragraph, whole (one sentence over two lines), as
    one line for argparse to wrap."""
    return " ".join(__doc__.split("\n\n")[0].replace("``", "").split())


def main(argv: list[str] | None = None) -> int:
    """Run the check (``argv``: the command line's arguments); 0 where every part ran, 1 where one failed."""
    ap = argparse.ArgumentParser(prog="python -m train.gpu_check", description=_description())
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--frames", type=int, default=300, help="demo frames (default 300)")
    ap.add_argument("--iters", type=int, default=200, help="timed calls per model figure (default 200)")
    ap.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    ap.add_argument("--no-tests", action="store_true", help="do not run the CUDA-marked tests")
    a = ap.parse_args(argv)
    if min(a.frames, a.iters, a.steps) < 1:
        ap.error("--frames, --iters and --steps take positive numbers")
    if a.json is not None:
        from streamhand.outputs import OutputError, check_output

        try:
            check_output(a.json, "--json")
        except OutputError as e:
            ap.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    def write(res: dict) -> None:
        if a.json is not None:
            from streamhand.outputs import write_text_atomic

            write_text_atomic(a.json, json.dumps(res, indent=1, default=float), "--json")

    res = check(a.frames, a.iters, a.steps, not a.no_tests, on_part=write)
    print(json.dumps(res, indent=1, default=float))
    failed = [k for k, v in res.items() if isinstance(v, dict) and "error" in v]
    if failed:
        print(f"error: parts failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
