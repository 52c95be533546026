"""Training across devices: batches made by worker processes equal those made in the loop, the same recipe
runs as two DistributedDataParallel processes (Gloo on CPU) through torchrun, a missing GPU is one clear line,
and (on a machine with a CUDA GPU) bf16 training there gives a checkpoint that loads on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from streamhand.checkpoint import load_checkpoint
from streamhand.configio import load_yaml
from tests.conftest import free_port
from tests.helpers import ROOT, train_cli
from train.config import DataConfig, TrainConfig
from train.datasets.synthetic import batches
from train.distributed import resolve_device

SMOKE = ROOT / "configs" / "train" / "smoke.yaml"


@pytest.mark.slow
def test_worker_processes_make_the_same_batches():
    cfg = DataConfig(chunk=256)
    serial = batches(7, cfg, 64, start_step=3)
    parallel = batches(7, cfg, 64, start_step=3, workers=2)
    try:
        for _ in range(10):  # across several chunks, starting mid-chunk
            a, b = next(serial), next(parallel)
            assert torch.equal(a.x2d, b.x2d) and torch.equal(a.y3d, b.y3d) and torch.equal(a.xworld, b.xworld)
    finally:
        serial.close()
        parallel.close()
    first, other_rank = next(batches(7, cfg, 64, start_step=3)), next(batches(7, cfg, 64, start_step=3, rank=1))
    assert other_rank.x2d.shape == first.x2d.shape and not torch.equal(other_rank.x2d, first.x2d)


@pytest.mark.parametrize(("name", "ok"), [("cpu", True), ("auto", True), ("cuda", torch.cuda.is_available())])
def test_device_resolution(name, ok):
    if ok:
        assert resolve_device(name).type in ("cpu", "cuda")
    else:
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_train_cli_names_a_missing_gpu(tmp_path):
    r = train_cli("fit", "--config", str(SMOKE), "--steps", "2", "--out-dir", str(tmp_path))
    assert r.returncode == 0  # auto: the CPU
    assert "train smoke" not in r.stdout + r.stderr  # no bar: standard error is not a terminal (and stdout is ours)
    recipe = tmp_path / "gpu.yaml"
    recipe.write_text(SMOKE.read_text() + "device: cuda\n")
    r = train_cli("fit", "--config", str(recipe), "--steps", "2", "--out-dir", str(tmp_path / "gpu"))
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_two_processes_with_torchrun(tmp_path):
    """The smoke recipe as two DDP processes on the CPU; rank 0 saves a checkpoint that loads anywhere."""
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]
    cmd = [*run, "-m", "train", "fit", "--config", str(SMOKE), "--steps", "40", "--out-dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    hist = json.loads((tmp_path / "smoke" / "history.json").read_text())
    assert hist[-1]["processes"] == 2 and hist[-1]["samples_per_s"] > 0
    ck = load_checkpoint(tmp_path / "smoke" / "last.pt")
    raw = torch.load(tmp_path / "smoke" / "last.pt", weights_only=True)
    assert raw["step"] == 40 and ck.model.cfg.z_dim == 16


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_training_gives_a_checkpoint_for_any_device(tmp_path):
    from train.fit import fit

    over = {"out_dir": str(tmp_path), "steps": 100, "eval_every": 100, "precision": "bf16", "device": "cuda",
            "workers": 1}  # fmt: skip
    path = fit(load_yaml(TrainConfig, SMOKE, over), progress=False)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert all(v.device.type == "cpu" for v in raw["state_dict"].values())
    assert raw["history"][-1]["device"].startswith("cuda")
    ck = load_checkpoint(path)  # on the CPU
    over2 = {**over, "steps": 120, "device": "cpu", "precision": "fp32", "workers": 0}
    fit(load_yaml(TrainConfig, SMOKE, over2), resume=path, progress=False)  # resumed on the CPU
    assert ck.model.cfg.z_dim == 16
