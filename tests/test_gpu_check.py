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
    got = {k.split("[")[0] for k, v in res["rgb_model"].items() if isinstance(v, dict) and "p50_ms" in v}
    assert got == {"torch", "onnxruntime"}
    nets = res["hand_networks"]
    assert nets["runtime"] == "onnxruntime-cpu" and nets["pairs"] > 0 and nets["median_px"] < 2.0
    assert nets["ms_per_frame_flip_average"] > 0 and nets["ms_per_frame"] > 0
    assert res["demo"]["frames_processed"] == 12 and res["demo"]["ratio_to_mediapipe"] > 0
    assert res["demo"]["compiled"] is True
    assert res["demo"]["latency_p99_ms"]["detect"] >= res["demo"]["latency_p50_ms"]["detect"] > 0
    assert res["training"]["samples_per_s"] > 0 and res["training"]["precision"] == "fp32"


def test_gpu_check_refuses_bad_numbers(capsys):
    from train.gpu_check import main

    with pytest.raises(SystemExit) as e:
        main(["--frames", "0"])
    assert e.value.code == 2 and "positive numbers" in capsys.readouterr().err


def test_gpu_check_keeps_each_part_as_it_ends(monkeypatch):
    """A check stopped midway (a time limit) keeps what it measured: the figures are handed on after every part,
    and a part that fails is recorded without hiding the next."""
    import train.gpu_check as gc

    monkeypatch.setattr(gc, "lifter", lambda iters: {"torch": {"p50_ms": 0.1}})
    monkeypatch.setattr(gc, "rgb_expert", lambda iters: {"torch": {"p50_ms": 0.5}})
    monkeypatch.setattr(gc, "rgb_model", lambda iters: {"torch": {"p50_ms": 0.4}})

    def broken(frames):
        raise RuntimeError("no networks")

    monkeypatch.setattr(gc, "hand_networks", broken)
    monkeypatch.setattr(gc, "demo", lambda frames: {"fps": 300.0})
    monkeypatch.setattr(gc, "training", lambda steps: {"samples_per_s": 1.0})
    seen: list[list[str]] = []
    res = gc.check(tests=False, on_part=lambda out: seen.append(list(out)))
    parts = ["cuda_tests", "lifter_b1", "rgb_expert_256", "rgb_model", "hand_networks", "demo", "training"]
    assert seen == [["environment", *parts[: i + 1]] for i in range(len(parts))]
    assert res["hand_networks"]["error"] == "RuntimeError: no networks" and res["demo"]["fps"] == 300.0


def test_gpu_check_help_says_its_whole_first_sentence(capsys):
    """``--help``'s description is the docstring's first paragraph whole, not cut at its first line's end."""
    from train.gpu_check import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0
    assert "(from a checkout: it runs the tests and trains, so it lives with the offline tools)." in out, out
