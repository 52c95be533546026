"""Recipes per published setting (RHD, STB, RHD+STB) for the 2D -> 3D path: they validate, train on a tiny
RHD written in its on-disk format with falling loss, evaluate on its evaluation split, and a wrong root names
the file that was expected."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from streamhand.configio import load_yaml
from streamhand.geometry import Intrinsics, project
from streamhand.skeleton import to_rhd
from streamhand.synth.sampler import SamplerConfig, sample_hands
from tests.helpers import ROOT, train_cli
from train.config import TrainConfig
from train.datasets.published import STB_TEST, STB_TRAIN

RECIPES = ROOT / "configs" / "train"


@pytest.mark.parametrize(("name", "kind"), [("rhd", "rhd"), ("stb", "stb"), ("rhd_stb", "rhd+stb")])
def test_recipes_validate(name, kind):
    cfg = load_yaml(TrainConfig, RECIPES / f"{name}.yaml")
    assert cfg.data.kind == kind and cfg.loss.objective == "cross" and cfg.model.decoders == ["3d", "2d"]


@pytest.mark.parametrize(("name", "kind"), [("rhd_rgb", "rhd"), ("stb_rgb", "stb"), ("rhd_stb_rgb", "rhd+stb")])
def test_rgb_recipes_validate(name, kind):
    cfg = load_yaml(TrainConfig, RECIPES / f"{name}.yaml")
    assert cfg.data.kind == kind and cfg.data.crops == ["rgb"] and cfg.data.crop_size == 256
    assert cfg.model.encoders == ["rgb", "2d", "3d"] and cfg.loss.objective == "cross"


def test_stb_splits_are_the_papers():
    assert STB_TEST == ("B1Counting", "B1Random") and len(STB_TRAIN) == 10 and "B6Random" in STB_TRAIN


def _write_rhd(root, seed):
    hands = sample_hands(np.random.default_rng(seed), 40, SamplerConfig(facing_fraction=1.0, in_frame_margin=40))
    k = Intrinsics.from_fov(320, 320, 60)
    for split in ("training", "evaluation"):
        anno = {}
        for i in range(10):
            xyz = to_rhd(hands.joints_cam[2 * i], hands.joints_cam[2 * i + 1])
            anno[i] = {"xyz": xyz.astype(np.float32), "K": k.matrix(),
                       "uv_vis": np.concatenate([project(xyz, k), np.ones((42, 1))], 1)}  # fmt: skip
        (root / split).mkdir(parents=True)
        with (root / split / f"anno_{split}.pickle").open("wb") as f:
            pickle.dump(anno, f)
        hands.joints_cam = hands.joints_cam[20:]  # the evaluation split: other hands


def _recipe(tmp_path, rhd_root):
    text = (RECIPES / "rhd.yaml").read_text().replace("data/RHD_published_v2", str(rhd_root))
    text = text.replace("steps: 60000", "steps: 200").replace("eval_every: 5000", "eval_every: 100")
    text = text.replace("checkpoint_every: 5000", "checkpoint_every: 200").replace("hidden: 512", "hidden: 64")
    p = tmp_path / "rhd_tiny.yaml"
    p.write_text(text.replace("warmup_steps: 5000", "warmup_steps: 50").replace("lr: 1.0e-4", "lr: 1.0e-3"))
    return p


@pytest.mark.slow
def test_training_on_a_tiny_rhd(tmp_path):
    _write_rhd(tmp_path / "RHD", 3)
    r = train_cli("fit", "--config", str(_recipe(tmp_path, tmp_path / "RHD")), "--out-dir", str(tmp_path / "runs"),
                  "--no-progress")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    hist = json.loads((tmp_path / "runs" / "rhd" / "history.json").read_text())
    assert len(hist) == 2 and hist[-1]["loss"] < hist[0]["loss"]
    assert np.isfinite(hist[-1]["val_epe_mean_mm"])  # measured on the evaluation split


def test_a_wrong_root_names_the_expected_file(tmp_path):
    r = train_cli("fit", "--config", str(_recipe(tmp_path, tmp_path / "missing")), "--out-dir",
                  str(tmp_path / "runs"), "--no-progress")  # fmt: skip
    assert r.returncode == 2 and "missing/training/anno_training.pickle" in r.stderr and "Traceback" not in r.stderr
