"""Semi-supervision: with a quarter of each batch keeping its 3D labels the smoke recipe still learns 3D; the
unlabelled samples train the 2D reconstruction only; a recipe that cannot do it is refused with one line."""

from __future__ import annotations

import json

import pytest
import torch

from streamhand.checkpoint import load_checkpoint
from streamhand.configio import ConfigError, load_yaml
from streamhand.models import HandPoseModel
from tests.helpers import ROOT
from train.config import TrainConfig
from train.datasets.synthetic import batches
from train.evaluate import evaluate_synthetic
from train.fit import TrainStep, fit

SMOKE = ROOT / "configs" / "train" / "smoke.yaml"


@pytest.mark.slow
def test_a_quarter_of_the_labels_still_teaches_3d(tmp_path):
    cfg = load_yaml(TrainConfig, SMOKE, {"out_dir": str(tmp_path), "labelled_fraction": 0.25, "eval_every": 150})
    torch.manual_seed(cfg.seed)
    untrained = evaluate_synthetic(HandPoseModel(cfg.model), n=300, seed=99)
    path = fit(cfg, progress=False)
    trained = evaluate_synthetic(load_checkpoint(path).model, n=300, seed=99)
    assert trained.epe_mean_mm < 0.8 * untrained.epe_mean_mm
    hist = json.loads((tmp_path / "smoke" / "history.json").read_text())
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_unlabelled_samples_reach_neither_the_3d_encoder_nor_the_3d_decoder():
    cfg = load_yaml(TrainConfig, SMOKE, {"labelled_fraction": 0.0})
    model = HandPoseModel(cfg.model)
    b = next(batches(0, cfg.data, 16))
    loss, logs = TrainStep(model, cfg)(b, 1e-3)
    loss.backward()
    assert all(p.grad is None for p in model.encoders["3d"].parameters())
    assert all(p.grad is None for p in model.decoders["3d"].parameters())
    assert any(k.startswith("unlabelled_rec_") and k.endswith("->2d") for k in logs)
    assert not any("->3d" in k for k in logs)


def test_semi_supervision_needs_a_2d_decoder(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(SMOKE.read_text() + "labelled_fraction: 0.5\n")
    cfg = load_yaml(TrainConfig, recipe)
    assert cfg.labelled_fraction == 0.5
    recipe.write_text(
        SMOKE.read_text().replace("model:\n", 'model:\n  decoders: ["3d"]\n') + "labelled_fraction: 0.5\n"
    )
    with pytest.raises(ConfigError, match="needs a 2d decoder"):
        load_yaml(TrainConfig, recipe)
