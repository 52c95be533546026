"""Detector choice (MediaPipe's graph or its networks with our tracking) and a whole run with the networks."""

from __future__ import annotations

import json

import pytest

from streamhand.detect.select import choose_detector
from tests.conftest import free_port
from tests.helpers import invoke


@pytest.mark.parametrize(
    ("kind", "runtime", "cuda", "label"),
    [
        ("auto", "auto", False, "mediapipe"),
        ("auto", "auto", False, "network-onnxruntime-cpu+flip"),  # flip averaging takes the networks on a CPU too
        ("auto", "auto", True, "network-torch-cuda+flip"),
        ("network", "tensorrt", True, "network-tensorrt-cuda+flip"),
        ("auto", "auto", True, "network-torch-cuda"),
        ("auto", "onnxruntime", True, "network-onnxruntime-cpu"),
        ("mediapipe", "auto", True, "mediapipe"),
        ("network", "auto", False, "network-onnxruntime-cpu"),
        ("network", "torch", False, "network-torch-cpu"),
        ("network", "torch", True, "network-torch-cuda"),
        ("network", "tensorrt", True, "network-tensorrt-cuda"),
    ],
)
def test_detector_choice(kind, runtime, cuda, label):
    flip = label.endswith("+flip")
    c = choose_detector(kind, runtime, cuda, flip_average=flip)
    assert c.label == label and c.reason and c.flip_average == flip


@pytest.mark.parametrize(
    ("kind", "runtime", "message"),
    [("yolo", "auto", "unknown detector"), ("network", "tflite", "unknown detector runtime"),
     ("mediapipe", "auto", "only MediaPipe's networks")],
)
def test_unknown_detector_is_an_error(kind, runtime, message):
    with pytest.raises(ValueError, match=message):
        choose_detector(kind, runtime, False, flip_average=kind == "mediapipe")


@pytest.mark.slow
def test_demo_run_with_the_network_detector(tmp_path):
    r = invoke("run", "--source", "demo", "--detector", "network", "--frames", "60", "--no-realtime", "--port",
               str(free_port()), "--control-port", str(free_port()), "--report", str(tmp_path / "r.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["detector"] == "network-onnxruntime-cpu" and rep["detector_reason"] == "requested"
    assert rep["backend"].startswith(("onnxruntime", "torch", "tensorrt")) and "auto" not in rep["backend_reason"]
    assert rep["backend_reason"]  # why auto chose it, as in the log and on the status topic
    assert rep["frames_processed"] == 60 and rep["detection_rate"] >= 0.8 and rep["epe_mean_mm"] <= 30


def test_bad_detector_flag_is_one_line():
    r = invoke("run", "--source", "demo", "--detector", "yolo", "--frames", "1")
    assert r.returncode == 2 and "--detector" in r.stderr and "Traceback" not in r.stderr


def test_flip_average_with_mediapipes_graph_is_one_line():
    r = invoke("run", "--source", "demo", "--detector", "mediapipe", "--flip-average", "--frames", "1", "--port",
               str(free_port()), "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: detector: --flip-average")


@pytest.mark.slow
def test_demo_run_with_flip_averaging(tmp_path):
    """``--flip-average`` on a CPU: ``auto`` takes MediaPipe's networks for it and the run says so; the comparison
    with MediaPipe alone still runs MediaPipe's own graph."""
    r = invoke("run", "--source", "demo", "--flip-average", "--frames", "30", "--no-realtime", "--compare-mediapipe",
               "--port", str(free_port()), "--control-port", str(free_port()),
               "--report", str(tmp_path / "r.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["detector"].startswith("network-") and rep["detector"].endswith("+flip")
    assert "--flip-average" in rep["detector_reason"] or "CUDA" in rep["detector_reason"]
    assert rep["frames_processed"] == 30 and rep["detection_rate"] >= 0.8 and rep["epe_mean_mm"] <= 30
    assert rep["mediapipe_alone"]["fps"] > 0
