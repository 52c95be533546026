"""The GPU check's CPU part: every part runs (or says it needs CUDA) and its figures land in one JSON."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_gpu_check_cpu_part_writes_every_figure(tmp_path):
    from train.gpu_check import main

    out = tmp_path / "gpu.json"
    code = main(["--frames", "12", "--iters", "10", "--steps", "3", "--no-tests", "--json", str(out)])
    res = json.loads(out.read_text())
    assert code == 0, {k: v.get("error") for k, v in res.items() if isinstance(v, dict) and "error" in v}
    assert res["environment"]["cuda"] is False and res["cuda_tests"] == {"skipped": "--no-tests"}
    assert any("p50_ms" in v for v in res["lifter_b1"].values() if isinstance(v, dict))
    assert any("p50_ms" in v for v in res["rgb_expert_256"].values() if isinstance(v, dict))
    nets = res["hand_networks"]
    assert nets["runtime"] == "onnxruntime-cpu" and nets["pairs"] > 0 and nets["median_px"] < 2.0
    assert res["demo"]["frames_processed"] == 12 and res["demo"]["ratio_to_mediapipe"] > 0
    assert res["training"]["samples_per_s"] > 0 and res["training"]["precision"] == "fp32"


def test_gpu_check_refuses_bad_numbers(capsys):
    from train.gpu_check import main

    with pytest.raises(SystemExit) as e:
        main(["--frames", "0"])
    assert e.value.code == 2 and "positive numbers" in capsys.readouterr().err
