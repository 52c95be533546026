"""``streamhand bench``: one run times every backend, modality set and batch size, and the detector, side by
side; the table and the JSON agree; bad options are one line."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamhand.cli import app


@pytest.mark.slow
def test_bench_rows_for_each_backend_set_and_batch(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"  # a cache of its own (the exports are made here) with the session's demo clip in it:
    cache.mkdir()  # the detector rows time MediaPipe on the demo's frames, which need not be rendered again
    for clip in Path(os.environ["STREAMHAND_CACHE"]).glob("demo-*.zip"):
        shutil.copy(clip, cache)
    monkeypatch.setenv("STREAMHAND_CACHE", str(cache))
    scratch = tmp_path / "scratch"  # the bench's temporary files go here, and must be gone when it ends
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    out = tmp_path / "b.json"
    r = CliRunner().invoke(app, ["bench", "--model", str(tiny_checkpoint), "--iters", "5", "--batch", "1,2",
                                 "--modalities", "2d;rgb", "--detectors", "mediapipe", "--image-size", "32",
                                 "--json", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())["rows"]
    models = [x for x in rows if x["what"] == "model"]
    got = {(x["backend"].split("[")[0], x["modalities"], x["batch"]) for x in models}
    want = {(b, m, n) for b in ("torch", "onnxruntime") for m in ("2d", "rgb") for n in (1, 2)}
    assert want <= got
    ort = {(x["backend"], x["modalities"]) for x in models if x["backend"].startswith("onnxruntime")}
    assert {b for b, m in ort if m == "2d"} == {"onnxruntime[CPUExecutionProvider, fp32]",
                                                "onnxruntime[CPUExecutionProvider, int8]"}  # fmt: skip
    assert {b for b, m in ort if m == "rgb"} == {"onnxruntime[CPUExecutionProvider, fp32]"}  # convolutions: fp32
    assert all(x["p50_ms"] <= x["p95_ms"] <= x["p99_ms"] and x["per_s"] > 0 for x in rows)
    det = [x for x in rows if x["what"] == "detector"]
    assert [d["backend"] for d in det] == ["mediapipe"] and det[0]["n"] >= 20
    assert "streamhand bench" in r.stdout and "p99 ms" in r.stdout
    assert not list(scratch.iterdir()), "the bench left temporary files behind"
    assert {x["samples"] for x in models} == {16}  # as a run takes them: the tiny model has no error model
    if importlib.util.find_spec("tensorrt") is None:  # why there is no TensorRT row: the real reason, said once
        said = [m for m in caplog.messages if "backend tensorrt unavailable: TensorRT is not installed" in m]
        assert len(said) == 1, said


def test_the_untrained_rgb_model_is_the_same_file_every_time(tmp_path):
    """Its graph is prepared into the cache by the file's sha256: a new file each run would add one every run."""
    from streamhand.model_files import file_sha256
    from streamhand.tools.bench import rgb_checkpoint

    a = rgb_checkpoint(tmp_path / "a", 32)
    b = rgb_checkpoint(tmp_path / "b", 32)
    assert file_sha256(a) == file_sha256(b)


def test_bench_that_measures_nothing_fails(tiny_checkpoint):
    r = CliRunner().invoke(app, ["bench", "--model", str(tiny_checkpoint), "--backends", "tensorrt", "--detectors", "",
                                 "--modalities", "2d", "--batch", "1", "--iters", "5"])  # fmt: skip
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    assert r.exit_code == 1 and "error: nothing was measured" in r.output, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "--batch"),
        (["--backends", "openvino"], "--backends 'openvino': choose from torch, onnxruntime, tensorrt"),
        (["--modalities", "2d;heat"], "--modalities heat"),
        (["--detectors", "yolo", "--modalities", "2d", "--backends", "torch", "--iters", "5"], "unknown detector"),
        (["--batch", "1,5000"], "--batch '1,5000': give batch sizes of 1 to 4096"),
        (["--samples", "1"], "--samples 1: one posterior sample has no spread"),
        (["--soak", "0.1", "--backends", "torch", "--batch", "4"], "--backends, --batch time the models alone"),
        (["--soak", "nan"], "nan is not a number of minutes 0.1 or more"),
    ],
)
def test_bench_bad_options(tiny_checkpoint, args, message):
    r = CliRunner().invoke(app, ["bench", "--model", str(tiny_checkpoint), *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
