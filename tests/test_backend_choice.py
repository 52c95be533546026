"""Engines and backend choice: sidecar compatibility, ``auto`` under each combination of what is installed,
engine discovery, ``streamhand build-engine`` without TensorRT, and the CUDA/TensorRT paths where present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamhand.cli import app
from streamhand.export.tensorrt_build import EngineBuildError, check_precision, needs_half_onnx
from streamhand.infer.select import Installed, choose, find_engine, make_backend
from streamhand.sidecar import (
    SIDECAR_FORMAT,
    Machine,
    SidecarError,
    compatibility_problems,
    read_sidecar,
    write_sidecar,
)

H100 = Machine("NVIDIA H100 80GB HBM3", "9.0", "10.13.0.35")
CPU_ONLY = Machine(None, None, None)


def _sidecar(**over) -> dict:
    base = {"model_id": "sh-x", "modalities": ["2d", "world"], "tensorrt": "10.13.0.35", "gpu": H100.gpu,
            "compute_capability": "9.0", "precision": "fp16", "inputs": [], "outputs": [], "onnx_sha256": "0" * 64,
            "batch": [1, 2, 8], "options": {"n_samples": 16}}  # fmt: skip
    return {**base, **over}


@pytest.mark.parametrize(
    ("sidecar", "here", "problem"),
    [
        (_sidecar(), H100, None),
        (_sidecar(gpu="NVIDIA A100-SXM4-80GB", compute_capability="8.0"), H100, "built for NVIDIA A100"),
        (_sidecar(compute_capability="8.9"), H100, "sm 8.9"),
        (_sidecar(tensorrt="11.0.0.1"), H100, "another major"),
        (_sidecar(tensorrt="10.12.0.36"), H100, "built with TensorRT 10.12.0.36"),
        (_sidecar(tensorrt="10.12.0.36", version_compatible=True), H100, None),
        (_sidecar(), Machine(H100.gpu, "9.0", None), "TensorRT is not installed"),
        (_sidecar(), CPU_ONLY, "no CUDA GPU"),
    ],
    ids=["same", "other-gpu", "other-cc", "other-major", "other-minor", "version-compatible", "no-trt", "no-gpu"],
)
def test_sidecar_compatibility(sidecar, here, problem):
    got = compatibility_problems(sidecar, here)
    if problem is None:
        assert got == []
    else:
        assert any(problem in p for p in got), got


def _typed(**over) -> str:
    return json.dumps({**_sidecar(format=SIDECAR_FORMAT), **over})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no sidecar"),
        ("{not json", "unreadable sidecar"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"format": SIDECAR_FORMAT, "model_id": "x"}), "lacks modalities"),
        (json.dumps({**_sidecar(), "format": "other/9"}), "sidecar format"),
        (b"\xff\xfe\x00garbage", "unreadable sidecar"),
        (_typed(modalities=None), "modalities null is not a list of names"),
        (_typed(modalities="2d"), "modalities \"2d\" is not a list of names"),
        (_typed(options=3), "options 3 is not an object"),
        (_typed(batch=[2, 2, 8]), "batch \\[2, 2, 8\\] is not 1 = MIN"),
        (_typed(batch=[1, "2", 8]), "batch"),
        (_typed(inputs=[{"name": "x"}]), "inputs .* is not a list of \\{name, shape\\}"),
        (_typed(gpu=7), "gpu 7 is not a GPU's name"),
    ],
    ids=["missing", "corrupt", "not-object", "incomplete", "other-format", "binary", "modalities-null",
         "modalities-text", "options-number", "batch-min-2", "batch-text", "inputs-no-shape", "gpu-number"],
)
def test_bad_sidecars_are_named(tmp_path, content, message):
    engine = tmp_path / "m.engine"
    if isinstance(content, bytes):
        engine.with_suffix(".json").write_bytes(content)
    elif content is not None:
        engine.with_suffix(".json").write_text(content)
    with pytest.raises(SidecarError, match=message):
        read_sidecar(engine)


def test_sidecar_round_trip(tmp_path):
    p = write_sidecar(tmp_path / "a.engine", _sidecar())
    assert p.name == "a.json" and read_sidecar(tmp_path / "a.engine")["gpu"] == H100.gpu


CPU_ORT = ["CPUExecutionProvider"]
CUDA_ORT = ["CUDAExecutionProvider", "CPUExecutionProvider"]
GPU_NO_TRT = Machine(H100.gpu, "9.0", None)


@pytest.mark.parametrize(
    ("requested", "machine", "providers", "engine", "want"),
    [
        ("auto", CPU_ONLY, CPU_ORT, None, ("onnxruntime", "cpu", "CPUExecutionProvider")),
        ("auto", CPU_ONLY, [], None, ("torch", "cpu", None)),
        ("auto", GPU_NO_TRT, CPU_ORT, None, ("torch", "cuda", None)),
        ("auto", GPU_NO_TRT, CUDA_ORT, None, ("onnxruntime", "cuda", "CUDAExecutionProvider")),
        ("auto", H100, CPU_ORT, Path("e.engine"), ("tensorrt", "cuda", None)),
        ("auto", H100, [], Path("e.engine"), ("tensorrt", "cuda", None)),
        ("tensorrt", CPU_ONLY, CPU_ORT, None, ("onnxruntime", "cpu", "CPUExecutionProvider")),  # falls back
        ("tensorrt", GPU_NO_TRT, CPU_ORT, None, ("torch", "cuda", None)),
        ("onnxruntime", CPU_ONLY, CPU_ORT, None, ("onnxruntime", "cpu", "CPUExecutionProvider")),
        ("onnxruntime", GPU_NO_TRT, CUDA_ORT, None, ("onnxruntime", "cuda", "CUDAExecutionProvider")),
        ("torch", H100, CUDA_ORT, Path("e.engine"), ("torch", "cuda", None)),
        ("torch", CPU_ONLY, CPU_ORT, None, ("torch", "cpu", None)),
    ],
)
def test_choice_under_each_combination(requested, machine, providers, engine, want):
    c = choose(requested, Installed(machine, providers, engine, "" if engine else "no engine here"))
    assert (c.backend, c.device, c.provider) == want
    assert c.reason


def test_tensorrt_asked_for_says_first_what_the_machine_lacks(caplog):
    caplog.set_level("WARNING")
    c = choose("tensorrt", Installed(CPU_ONLY, CPU_ORT, None, "no engines folder engines"))
    assert c.backend == "onnxruntime"
    said = caplog.records[-1].getMessage()
    assert said.startswith("--backend tensorrt: TensorRT is not installed") and "no CUDA GPU" in said, said
    assert "no engines folder engines; falling back" in said


@pytest.mark.parametrize(
    ("requested", "providers", "message"),
    [("onnxruntime", [], "onnxruntime is not installed"), ("openvino", CPU_ORT, "unknown backend")],
)
def test_impossible_requests_are_errors(requested, providers, message):
    with pytest.raises(ValueError, match=message):
        choose(requested, Installed(CPU_ONLY, providers))


def _fake_engine(folder: Path, name: str, **over) -> Path:
    p = folder / name
    p.write_bytes(b"engine bytes")
    write_sidecar(p, _sidecar(**over))
    return p


def test_find_engine_prefers_fp16_and_skips_what_cannot_run(tmp_path):
    _fake_engine(tmp_path, "a_fp32.engine", precision="fp32")
    _fake_engine(tmp_path, "b_fp16.engine", precision="fp16")
    _fake_engine(tmp_path, "c_other_model.engine", model_id="sh-y")
    _fake_engine(tmp_path, "d_2d_only.engine", modalities=["2d"])
    (tmp_path / "e_corrupt.engine").write_bytes(b"x")
    (tmp_path / "e_corrupt.json").write_text("{")
    _fake_engine(tmp_path, "f_typeless.engine", modalities=None, options=3)  # skipped with its reason, no crash
    _fake_engine(tmp_path, "g_unknown.engine", modalities=["foo"])
    _fake_engine(tmp_path, "h_palm.engine", model_id="palm_detection_full", modalities=["image"])  # hand networks
    got, note = find_engine(tmp_path, "sh-x", ("world", "2d"), H100, 16)
    assert got is not None and got.name == "b_fp16.engine" and note == ""
    got, note = find_engine(tmp_path, "sh-x", ("2d", "world"), H100, 4)
    assert got is None and "built with 16 posterior samples" in note
    got, note = find_engine(tmp_path, "sh-x", ("2d", "world"), Machine("NVIDIA L4", "8.9", "10.13.0.35"), 16)
    assert got is None and "built for NVIDIA H100" in note and "unreadable sidecar" in note
    assert "g_unknown.engine: no runtime input for modalities ['foo']" in note
    got, note = find_engine(tmp_path, "sh-z", ("2d",), H100)
    assert got is None and "unreadable sidecar" in note  # an engine that may have been it is named
    assert "f_typeless.json: the sidecar's modalities null is not a list of names" in note
    for f in ("e_corrupt.json", "e_corrupt.engine", "f_typeless.json", "f_typeless.engine", "g_unknown.json",
              "g_unknown.engine"):  # fmt: skip
        (tmp_path / f).unlink()
    got, note = find_engine(tmp_path, "sh-z", ("2d",), H100)
    assert got is None and "no TensorRT engine for sh-z 2d in" in note
    assert find_engine(tmp_path / "none", "sh-x", ("2d",), H100)[1].startswith("no engines folder")


def test_make_backend_auto_on_this_machine_says_why(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    import torch

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path))
    caplog.set_level("INFO")
    from streamhand.export.onnx_export import prepare_graph

    be = make_backend("auto", str(tiny_checkpoint), 4, 1, ("2d",), tmp_path / "engines", prepare_graph)
    if torch.cuda.is_available():
        assert be.name in ("torch", "onnxruntime", "tensorrt")
    else:
        assert be.name == "onnxruntime" and "no CUDA GPU" in be.reason
    assert be.reason in caplog.text
    x = np.zeros((2, 21, 2), np.float32)
    assert be.infer({"2d": x}).joints.shape == (2, 21, 3)
    tb = make_backend("torch", str(tiny_checkpoint), 4, 1, ("2d",))
    assert tb.name == "torch" and tb.reason == "requested"
    np.testing.assert_allclose(be.infer({"2d": x}).joints, tb.infer({"2d": x}).joints, atol=1e-4)


@pytest.mark.parametrize(
    ("major", "precision", "error"),
    [(10, "fp16", None), (10, "int8", None), (11, "fp16", None), (11, "fp32", None),
     (11, "int8", "quantize/dequantize"), (9, "fp16", "not supported"), (10, "bf8", "choose fp32")],
)  # fmt: skip
def test_precision_per_tensorrt_major(major, precision, error):
    if error is None:
        check_precision(major, precision)
    else:
        with pytest.raises(EngineBuildError, match=error):
            check_precision(major, precision)
    assert needs_half_onnx(major, precision) == (major >= 11 and precision == "fp16")


def test_build_engine_without_tensorrt_writes_the_onnx_and_says_what_is_missing(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from streamhand.sidecar import this_machine

    if this_machine().tensorrt is not None:
        pytest.skip("TensorRT is installed here: the engine test below covers it")
    r = CliRunner().invoke(app, ["build-engine", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "e"),
                                 "--batch", "1,4,16"])  # fmt: skip
    assert r.exit_code == 0, r.output
    onnx_files = list((tmp_path / "e").glob("*.onnx"))
    assert len(onnx_files) == 1 and onnx_files[0].name.endswith("_2d_k16_fp32.onnx")  # its default: 16 samples
    r = CliRunner().invoke(app, ["build-engine", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "e"),
                                 "--samples", "0"])  # fmt: skip
    assert r.exit_code == 0, r.output  # another sample count beside it, not over it
    assert sorted(p.name.split("_", 1)[1] for p in (tmp_path / "e").glob("*.onnx")) == ["2d_fp32.onnx",
                                                                                        "2d_k16_fp32.onnx"]
    assert "no engine: TensorRT is not installed" in r.output and "pip install" in r.output
    r = CliRunner().invoke(app, ["build-engine", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "e"),
                                 "--require-engine"])  # fmt: skip
    assert r.exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "int4"], "--precision"),
        (["--batch", "8,2,1"], "MIN <= OPT <= MAX"),
        (["--batch", "one"], "--batch"),
        (["--modalities", "depth"], "no encoder for ['depth']"),
        (["--model", "missing.pt"], "checkpoint not found"),
        (["--batch", "2,2,8"], "1 = MIN <= OPT <= MAX (MIN 1: a frame may hold one hand)"),
        (["--samples", "1"], "--samples 1: one posterior sample has no spread"),
        (["--hand-networks", "--precision", "int8"], "int8 is not offered for the hand networks"),
        (["--workspace", "99999999999"], "--workspace"),
    ],
)
def test_build_engine_bad_options(tiny_checkpoint, tmp_path, args, message):
    model = [] if "--model" in args else ["--model", str(tiny_checkpoint)]
    full = ["build-engine", "--out", str(tmp_path), *model, *args]
    r = CliRunner().invoke(app, full)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_tensorrt_backend_refuses_an_engine_for_another_machine(tmp_path):
    from streamhand.infer.tensorrt_backend import EngineUnusable, TensorRTBackend

    e = _fake_engine(tmp_path, "m.engine", gpu="NVIDIA GeForce RTX 0000", compute_capability="1.0")
    with pytest.raises(EngineUnusable, match=r"m\.engine: "):
        TensorRTBackend(e)
    with pytest.raises(EngineUnusable, match="no sidecar"):
        TensorRTBackend(tmp_path / "other.engine")


cuda = pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")


@pytest.mark.cuda
@cuda
def test_cuda_graph_backend_equals_cpu(tiny_checkpoint):
    from streamhand.infer.torch_backend import TorchBackend

    cpu, gpu = TorchBackend(str(tiny_checkpoint), "cpu", 8), TorchBackend(str(tiny_checkpoint), "cuda", 8)
    assert gpu.cuda_graphs
    for b in (1, 2, 8, 1):  # replays, including a batch size seen before
        x = {"2d": np.random.default_rng(b).normal(size=(b, 21, 2)).astype(np.float32)}
        got, want = gpu.infer(x), cpu.infer(x)
        np.testing.assert_allclose(got.joints, want.joints, atol=1e-4)
        np.testing.assert_allclose(got.joint_std, want.joint_std, atol=1e-4)
        np.testing.assert_allclose(got.disagreement, want.disagreement, atol=1e-4)
    assert len(gpu._graphs) == 3


@pytest.mark.cuda
@cuda
def test_warm_up_captures_every_batch_size_before_the_first_frame(tiny_checkpoint):
    """A run's hands come 1 to max_hands a frame: each batch size's graph is captured at start, not mid-run."""
    from streamhand.infer.torch_backend import TorchBackend

    gpu = TorchBackend(str(tiny_checkpoint), "cuda", 8)
    gpu.warm_up(("2d", "3d"), range(1, 4))
    assert sorted(k[1] for k in gpu._graphs._graphs) == [1, 2, 3]
    gpu.infer({"2d": np.zeros((2, 21, 2), np.float32)})
    assert len(gpu._graphs) == 3


def test_a_run_warms_its_backend_up_for_every_hand_count(monkeypatch):
    """build_parts asks the backend to prepare every batch size a frame can bring (1 to 2 * --max-hands - 1: new
    palms join the tracked hands) with the run's experts (a no-op except for CUDA graphs)."""
    from streamhand.app import build_parts
    from streamhand.infer.base import Backend
    from streamhand.runtime_config import RunConfig

    calls = []
    monkeypatch.setattr(Backend, "warm_up", lambda self, mods, sizes: calls.append((mods, list(sizes))))
    cfg = RunConfig.model_validate({"source": {"kind": "demo"}, "detect": {"max_hands": 3}})
    parts = build_parts(cfg, False, "demo", False)
    parts.detector.close()
    assert calls == [(parts.modalities, [1, 2, 3, 4, 5])]


@pytest.mark.cuda
@cuda
def test_tensorrt_engine_build_and_parity(tiny_checkpoint, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    from streamhand.export.engine_build import build
    from streamhand.export.tensorrt_build import EngineOptions
    from streamhand.infer.tensorrt_backend import TensorRTBackend
    from streamhand.infer.torch_backend import TorchBackend

    res = build(str(tiny_checkpoint), ("2d",), EngineOptions("fp32", (1, 2, 8), 256, tmp_path / "t.cache"), tmp_path)
    assert res.engine is not None and (tmp_path / "t.cache").is_file()
    side = read_sidecar(res.engine)
    assert side["precision"] == "fp32" and side["inputs"][0]["name"] == "keypoints_2d"
    be, tb = TensorRTBackend(res.engine), TorchBackend(str(tiny_checkpoint), "cpu", 16)
    x = {"2d": np.random.default_rng(0).normal(size=(8, 21, 2)).astype(np.float32)}
    np.testing.assert_allclose(be.infer(x).joints, tb.infer(x).joints, atol=1e-3)


@pytest.mark.slow
def test_build_engine_hand_networks_without_tensorrt(tiny_checkpoint, tmp_path):
    from streamhand.sidecar import this_machine

    if this_machine().tensorrt is not None:
        pytest.skip("TensorRT is installed here")
    r = CliRunner().invoke(app, ["build-engine", "--model", str(tiny_checkpoint), "--out", str(tmp_path),
                                 "--hand-networks"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "palm_detection_full.onnx" in r.output and "hand_landmark_full.onnx" in r.output
    assert "no engine: TensorRT is not installed" in r.output


@pytest.mark.parametrize(
    ("device", "message"), [("cpu", "runs on device 'cuda' only"), ("cuda", "no TensorRT engine for palm_detection")]
)
def test_network_detector_on_tensorrt_needs_a_gpu_and_engines(tmp_path, device, message):
    from streamhand.detect.gpu_hands import NetworkHands

    (tmp_path / "palm_detection_full_fp16.engine").write_bytes(b"x") if device == "cpu" else None
    with pytest.raises(ValueError, match=message):
        NetworkHands(runtime="tensorrt", device=device, engines_dir=tmp_path)


def test_an_engine_judges_hands_with_the_installed_models_calibration_and_error_model(tiny_checkpoint):
    """An engine keeps the metadata of the day it was built; a later refit of the model's calibration or error model
    keeps the weights and so the id the engine is found by: the installed model's (the fallback's) are used."""
    from streamhand.infer.tensorrt_backend import judging_metadata
    from streamhand.infer.torch_backend import TorchBackend

    installed = TorchBackend(str(tiny_checkpoint), "cpu", 0)
    installed.std_calibration, installed.error_model = {"2d": {"a": [2.0] * 21}}, {"2d": {"kappa": 1.1}}
    stale = {"std_calibration": {"2d": {"a": [1.0] * 21}}, "error_model": {"2d": {"kappa": 0.9}}}
    assert judging_metadata(stale, installed) == (installed.std_calibration, installed.error_model)
    assert judging_metadata(stale, None) == (stale["std_calibration"], stale["error_model"])  # the engine alone
    assert judging_metadata({}, None) == (None, None)


def test_an_engine_that_will_not_load_or_run_is_one_to_fall_back_from(tmp_path, monkeypatch):
    """A damaged engine with a sound sidecar (TensorRT cannot deserialize it, or its warm-up fails) is an
    EngineUnusable, which the backend choice falls back from, not a crash of the run."""
    import streamhand.infer.tensorrt_backend as trt_backend

    engine = _fake_engine(tmp_path, "m.engine", inputs=[{"name": "keypoints_2d", "shape": [-1, 21, 2]}])
    monkeypatch.setattr(trt_backend, "this_machine", lambda: H100)

    class Refuses:
        def __init__(self, *a, **k):
            raise RuntimeError("m.engine: TensorRT could not deserialize the engine")

    monkeypatch.setattr(trt_backend, "TensorRTRunner", Refuses)
    with pytest.raises(trt_backend.EngineUnusable, match=r"m\.engine: RuntimeError: m\.engine: TensorRT could not"):
        trt_backend.TensorRTBackend(engine)


def test_int8_asked_of_a_backend_without_it_is_said(tiny_checkpoint, caplog):
    caplog.set_level("WARNING")
    be = make_backend("torch", str(tiny_checkpoint), 4, 1, ("2d",), None, None, "int8")
    assert be.name == "torch"
    assert any("--precision int8 applies to ONNX Runtime's graphs; the torch backend" in m for m in caplog.messages)


@pytest.mark.parametrize(
    ("made_from", "same_onnx", "converted", "problem"),
    [
        ("0.10.9", True, True, "built from mediapipe 0.10.9's hand networks, this is mediapipe 0.10.21: rebuild"),
        (None, False, True, "built from another conversion of palm.onnx than the one in"),
        ("0.10.21", False, True, "built from another conversion of palm.onnx"),
        ("0.10.21", True, True, None),
        (None, True, False, None),  # no conversion here to compare with (a cache cleared): the machine's checks only
    ],
)
def test_a_hand_network_engine_built_from_other_networks_is_refused(made_from, same_onnx, converted, problem,
                                                                     tmp_path):  # fmt: skip
    """The hand networks' engines were checked against the GPU and TensorRT only: after a mediapipe upgrade (new
    networks, converted afresh) the old networks' engines ran without a word."""
    from streamhand.detect.gpu_hands import engine_source_problems
    from streamhand.model_files import file_sha256

    onnx = tmp_path / "palm.onnx"
    onnx.write_bytes(b"this install's conversion")
    side = _sidecar(onnx_sha256=file_sha256(onnx) if same_onnx else "0" * 64,
                    **({"mediapipe": made_from} if made_from else {}))  # fmt: skip
    if not converted:
        onnx.unlink()
    got = engine_source_problems(side, onnx, "0.10.21")
    assert (got == []) if problem is None else (len(got) == 1 and problem in got[0]), got
