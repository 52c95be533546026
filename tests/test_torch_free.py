"""The runtime without PyTorch: the shipped models run from their shipped ONNX graphs on ONNX Runtime, the graphs
match the checkpoints they were exported from (same file, same numbers as PyTorch), and a checkpoint without
prepared graphs says in one line what is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from streamhand.model_files import SHIPPED_GRAPHS, file_sha256, read_onnx_metadata, shipped_models
from tests.conftest import free_port

# Runs the CLI with every import of torch refused, and writes the names of refused imports to a file.
_NO_TORCH = """
import atexit, json, sys
tried = []
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(set(tried)))))
sys.argv = ["streamhand", *sys.argv[2:]]
from streamhand.cli import app
app()
"""


def _no_torch(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    tried = tmp_path / "tried.json"
    r = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tried), *args], capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    return r, json.loads(tried.read_text()) if tried.is_file() else ["(no record)"]


@pytest.mark.slow
def test_demo_runs_on_onnxruntime_without_torch(tmp_path):
    rep = tmp_path / "r.json"
    r, tried = _no_torch(tmp_path, "run", "--source", "demo", "--frames", "20", "--no-realtime", "--backend",
                         "onnxruntime", "--port", str(free_port()), "--control-port", str(free_port()),
                         "--report", str(rep))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert tried == [], f"the ONNX Runtime path tried to import {tried}"
    report = json.loads(rep.read_text())
    assert report["frames_processed"] == 20 and report["backend"].startswith("onnxruntime")
    assert report["detection_rate"] > 0.9 and report["epe_mean_mm"] < 40


@pytest.mark.slow
def test_without_torch_torch_backend_and_unprepared_checkpoint_are_one_line(tmp_path):
    port = ["--port", str(free_port()), "--control-port", str(free_port()), "--frames", "1"]
    r, _ = _no_torch(tmp_path, "run", "--source", "demo", "--backend", "torch", *port)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: --backend torch: needs PyTorch")
    other = tmp_path / "mine.pt"
    other.write_bytes(shipped_models()["default"].read_bytes() + b"\0")  # another file: no graph prepared for it
    r, _ = _no_torch(tmp_path, "run", "--source", "demo", "--model", str(other), *port)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "needs PyTorch (pip install 'streamhand[torch]')" in r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_without_torch_the_commands_that_need_it_say_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))  # MediaPipe's networks not yet converted
    port = ["--port", str(free_port()), "--control-port", str(free_port()), "--frames", "1", "--no-realtime"]
    for args, says in [
        (["bench", "--iters", "5", "--backends", "onnxruntime", "--detectors", ""], "error: bench (it times"),
        (["build-engine", "--out", str(tmp_path / "engines")], "error: build-engine (it exports"),
        (["run", "--source", "demo", "--detector", "network", *port], "error: detector: MediaPipe's hand networks"),
    ]:
        r, _ = _no_torch(tmp_path, *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert lines[-1].startswith(says) and "needs PyTorch" in lines[-1], lines[-1]
        assert "streamhand[torch]" in lines[-1]


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_shipped_graphs_belong_to_the_shipped_checkpoint(name):
    """Every shipped model has its graphs, exported from the very checkpoint beside them (retrain -> re-ship:
    ``python -m streamhand.export.ship NAME``)."""
    folder = SHIPPED_GRAPHS / name
    graphs = sorted(folder.glob("*.onnx"))
    assert graphs, f"{folder}: no graphs; run python -m streamhand.export.ship {name}"
    sha = file_sha256(shipped_models()[name])
    samples: dict[str, set] = {}
    for g in graphs:
        meta = read_onnx_metadata(g)
        assert meta["checkpoint_sha256"] == sha, f"{g} is stale: python -m streamhand.export.ship {name}"
        assert meta["error_model"], f"{g}: no error model in its metadata"
        samples.setdefault("+".join(meta["modalities"]), set()).add(meta["n_samples"])
    # a run takes none (the error model gives joint_std); --samples 16 and older habits find theirs too
    assert samples and all(k == {0, 16} for k in samples.values()), samples


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_shipped_graphs_compute_what_pytorch_computes(name):
    from streamhand.infer import TorchBackend
    from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend

    ort_b = OnnxRuntimeBackend(name)
    torch_b = TorchBackend(name)
    assert ort_b.model_id == torch_b.model_id and ort_b.std_calibration == torch_b.std_calibration
    assert ort_b.error_model == torch_b.error_model and ort_b.error_model
    rng = np.random.default_rng(0)
    shapes = {"2d": (21, 2), "world": (21, 3), "rgb": (3, ort_b.image_size, ort_b.image_size),
              "depth": (1, ort_b.image_size, ort_b.image_size)}  # fmt: skip
    for mods in ort_b._sessions:
        inputs = {m: (0.3 * rng.standard_normal((3, *shapes[m]))).astype(np.float32) for m in mods}
        a, b = ort_b.infer(inputs), torch_b.infer(inputs)
        np.testing.assert_allclose(a.joints, b.joints, atol=2e-4, err_msg=str(mods))
        np.testing.assert_allclose(a.joint_std, b.joint_std, atol=2e-4, err_msg=str(mods))
