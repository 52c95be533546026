"""``python -m train compare``: the seed models trained at one tiny budget and measured side by side."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.test_eval_frames import write_frames_dataset
from train.compare import SEED_MODELS, compare, recipe, table_lines


def test_every_seed_model_has_a_valid_recipe():
    assert list(SEED_MODELS) == ["cross-modal VAE", "S1", "S2", "S3", "S4", "DCMLS"]
    for name in SEED_MODELS:
        cfg = recipe(name, 10, "runs")
        assert "rgb" in cfg.data.crops and cfg.model.image_size == 32
    assert recipe("S4", 10, "runs").loss.fused_kl is False and recipe("S3", 10, "runs").loss.objective == "align"
    assert recipe("DCMLS", 10, "runs").model.architecture == "dcmls"
    a, b = recipe("S4", 10, "runs"), recipe("S4", 10, "runs", workers=2)  # workers change the speed only
    assert b.workers == 2 and a.model_copy(update={"workers": 2}) == b


@pytest.mark.slow  # three seed models trained and measured (the fixed 256-sample chunk and 100-hand eval each)
def test_compare_trains_and_measures_side_by_side(tmp_path):
    frames = tmp_path / "frames"
    write_frames_dataset(frames)
    rows = compare(3, tmp_path / "runs", ["S1", "S4", "DCMLS"], batch_size=4, n_test=10, frames=frames,
                   progress=False)  # fmt: skip
    assert [r.name for r in rows] == ["S1", "S4", "DCMLS"]
    assert all(np.isfinite(r.synthetic_rgb["epe_mean_mm"]) for r in rows)
    assert rows[1].synthetic_fused is not None and rows[0].synthetic_fused is None  # S4 also takes the cloud
    lines = table_lines(rows)
    assert lines[0].split()[:3] == ["model", "synth", "RGB"] and "paper RHD" in lines[0]
    assert lines[2].startswith("S4") and "13.14" in lines[2] and "7.05" in lines[2]


def test_compare_command_refuses_unknown_models(tmp_path):
    from train.__main__ import app

    r = CliRunner().invoke(app, ["compare", "--only", "S9", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--only 'S9': choose from cross-modal VAE, S1" in r.output
    r = CliRunner().invoke(app, ["compare", "--frames", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "none is not a folder (does not exist)" in r.output
