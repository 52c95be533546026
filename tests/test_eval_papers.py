"""``python -m train eval`` as the papers report: mean/median EPE, AUC 20-50 and 0-50, per-joint EPE, the PCK
curve as a PNG, and the published numbers beside ours (on a tiny RHD set written in its on-disk format)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from streamhand.geometry import Intrinsics, project
from streamhand.metrics import evaluate_poses
from streamhand.skeleton import to_rhd
from streamhand.synth.sampler import SamplerConfig, sample_hands
from tests.helpers import train_cli
from train.published import PUBLISHED, comparison_lines


@pytest.fixture
def tiny_rhd(tmp_path):
    hands = sample_hands(np.random.default_rng(5), 6, SamplerConfig(facing_fraction=1.0, in_frame_margin=40))
    k = Intrinsics.from_fov(320, 320, 60)
    anno = {}
    for i in range(3):
        xyz = to_rhd(hands.joints_cam[2 * i], hands.joints_cam[2 * i + 1])
        anno[i] = {"xyz": xyz.astype(np.float32), "uv_vis": np.concatenate([project(xyz, k), np.ones((42, 1))], 1),
                   "K": k.matrix()}  # fmt: skip
    (tmp_path / "rhd" / "evaluation").mkdir(parents=True)
    with (tmp_path / "rhd" / "evaluation" / "anno_evaluation.pickle").open("wb") as f:
        pickle.dump(anno, f)
    return tmp_path / "rhd"


def test_eval_rhd_prints_and_writes_the_papers_figures(tiny_rhd, tiny_checkpoint, tmp_path):
    png, js = tmp_path / "pck.png", tmp_path / "m.json"
    r = train_cli("eval", "--checkpoint", str(tiny_checkpoint), "--data", "rhd", "--root", str(tiny_rhd),
                  "--noise-px", "0", "--pck-png", str(png), "--json", str(js))  # fmt: skip
    assert r.returncode == 0, r.stderr
    m = json.loads(js.read_text())
    assert m["n"] == 6 and len(m["per_joint_mm"]) == 21 and 0 <= m["auc_0_50"] <= 1
    assert m["pck_thresholds_mm"][0] == 0 and m["pck_thresholds_mm"][-1] == 50 and len(m["pck"]) == 11
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "AUC(0-50)" in r.stdout and "per joint (mm):" in r.stdout
    for p in PUBLISHED["rhd"]:
        assert p.method in r.stdout and f"{p.epe_mean_mm:.2f}" in r.stdout
    assert f"{m['epe_mean_mm']:.2f}" in r.stdout.split("ours")[1].splitlines()[0]


def test_known_predictions_give_known_figures():
    gt = np.zeros((2, 21, 3))
    gt[:, 1:, 0] = np.linspace(0.01, 0.2, 20)
    pred = gt.copy()
    pred[0, 1:, 1] += 0.010  # hand 0: every joint but the root 10 mm off
    pred[1, 1:, 1] += 0.030  # hand 1: 30 mm off
    m = evaluate_poses(pred, gt, "root")
    assert m.epe_mean_mm == pytest.approx(20 * 40 / 42)  # roots are exact
    assert m.per_joint_mm[0] == 0 and m.per_joint_mm[5] == pytest.approx(20)
    assert m.pck[m.pck_thresholds_mm.index(10.0)] == pytest.approx(22 / 42)  # 2 roots + 20 joints at 10 mm
    assert m.pck[m.pck_thresholds_mm.index(30.0)] == 1.0


def test_comparison_table_only_where_papers_report():
    assert comparison_lines("freihand", "2D -> 3D", 10.0, 0.9) == []
    lines = comparison_lines("stb", "2D -> 3D", 9.5, 0.95)
    assert lines[1].split()[0] == "ours" and any("7.05" in x for x in lines) and len(lines) == 5
