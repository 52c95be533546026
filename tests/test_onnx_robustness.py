"""Graphs that are damaged, tampered with or foreign: a cached one is prepared again, a given or shipped one is one
line naming the file; each graph runs with its own batch limit; the metadata the backend relies on is checked."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import onnx
import pytest

from streamhand.export import ExportError, export_onnx, read_onnx_metadata
from streamhand.export.onnx_export import prepare_graph
from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend
from streamhand.model_files import write_onnx_metadata

pytest.importorskip("onnxruntime")


def _damage(path) -> None:
    """Cut the largest initializer's bytes in half: the file still parses (its metadata reads), ONNX Runtime refuses
    it ("raw_data size ... does not match")."""
    proto = onnx.load(str(path))
    big = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    big.raw_data = big.raw_data[: len(big.raw_data) // 2]
    onnx.save(proto, str(path))


def _retag(path, drop: tuple[str, ...] = (), **changes) -> None:
    """Rewrite some of a graph's ``streamhand.*`` metadata, removing the keys in ``drop``."""
    proto = onnx.load(str(path))
    meta = read_onnx_metadata(path)
    meta.update(changes)
    write_onnx_metadata(proto, {k: v for k, v in meta.items() if k not in drop})
    onnx.save(proto, str(path))


def _keypoints(mods, b: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"2d": (b, 21, 2), "world": (b, 21, 3)}
    return {m: rng.uniform(-0.5, 0.5, shapes[m]).astype(np.float32) for m in mods}


def _loads(path) -> bool:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


@pytest.fixture
def two_d_world_checkpoint(tmp_path_factory):
    import torch

    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig

    torch.manual_seed(5)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"])
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "kw.pt", HandPoseModel(cfg))


def test_a_damaged_cached_graph_is_prepared_again(two_d_world_checkpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    ck = str(two_d_world_checkpoint)
    first = OnnxRuntimeBackend(ck, ("2d", "world"), n_samples=4, prepare=prepare_graph, precision="fp32")
    x = _keypoints(("2d", "world"), 3)
    want = first.infer(x).joints
    damaged = first.files[("2d", "world")]
    _damage(damaged)
    assert not _loads(damaged)
    with caplog.at_level(logging.WARNING, logger="streamhand"):
        again = OnnxRuntimeBackend(ck, ("2d", "world"), n_samples=4, prepare=prepare_graph, precision="fp32")
    assert again.files[("2d", "world")] == damaged and _loads(damaged)  # made again, in its place
    assert any("ONNX Runtime cannot load it" in r.message and "preparing it again" in r.message
               for r in caplog.records)  # fmt: skip
    np.testing.assert_allclose(again.infer(x).joints, want, atol=1e-5)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_a_damaged_cached_graph_without_a_build_step_is_not_prepared(two_d_world_checkpoint, tmp_path, monkeypatch):
    from streamhand.model_files import GraphsNotPrepared

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    ck = str(two_d_world_checkpoint)
    be = OnnxRuntimeBackend(ck, ("2d",), n_samples=4, prepare=prepare_graph, precision="fp32")
    _damage(be.files[("2d",)])
    with pytest.raises(GraphsNotPrepared, match="not prepared"):
        OnnxRuntimeBackend(ck, ("2d",), n_samples=4, precision="fp32")


@pytest.mark.parametrize("precision", ["int8", "auto"])
def test_a_damaged_cached_int8_graph_is_quantized_again(two_d_world_checkpoint, tmp_path, monkeypatch, caplog,
                                                        precision):  # fmt: skip
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    ck = str(two_d_world_checkpoint)
    be = OnnxRuntimeBackend(ck, ("2d",), n_samples=0, prepare=prepare_graph, precision="int8")
    made = be.files[("2d",)]
    assert made.name.endswith(".int8.onnx")
    _damage(made)
    with caplog.at_level(logging.WARNING, logger="streamhand"):
        again = OnnxRuntimeBackend(ck, ("2d",), n_samples=0, prepare=prepare_graph, precision=precision)
    assert again.files[("2d",)] == made and _loads(made) and again.describe().count("int8") == 1
    assert any("preparing it again" in r.message for r in caplog.records)
    assert again.infer(_keypoints(("2d",), 2)).joints.shape == (2, 21, 3)


def test_a_damaged_fp32_graph_under_its_int8_one_is_prepared_again(two_d_world_checkpoint, tmp_path, monkeypatch):
    """The int8 graph is made from the cached fp32 one: with that damaged, it is exported again first."""
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    ck = str(two_d_world_checkpoint)
    be = OnnxRuntimeBackend(ck, ("2d",), n_samples=0, prepare=prepare_graph, precision="int8")
    int8 = be.files[("2d",)]
    (fp32,) = (p for p in (tmp_path / "cache").rglob("*.onnx") if p != int8)
    _damage(fp32)
    int8.unlink()
    again = OnnxRuntimeBackend(ck, ("2d",), n_samples=0, prepare=prepare_graph, precision="int8")
    assert again.files[("2d",)] == int8 and _loads(int8) and _loads(fp32)


def test_a_damaged_given_graph_is_one_line_naming_it(tiny_checkpoint, tmp_path):
    art = export_onnx(tiny_checkpoint, ("2d",), tmp_path / "mine.onnx", n_samples=4)
    _damage(art.path)
    with pytest.raises(ExportError, match=r"mine\.onnx: ONNX Runtime cannot load it \(.*raw_data") as e:
        OnnxRuntimeBackend(files=[art.path])
    assert "\n" not in str(e.value)
    assert art.path.is_file()  # the user's file is left alone


def test_a_damaged_shipped_graph_is_one_line_naming_it(tmp_path, monkeypatch):
    import streamhand.model_files as model_files

    shipped = tmp_path / "onnx"
    shutil.copytree(model_files.SHIPPED_GRAPHS / "default", shipped / "default")
    monkeypatch.setattr(model_files, "SHIPPED_GRAPHS", shipped)
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    weights = shipped / "default" / "weights.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ExportError, match=r"default/.*\.onnx: ONNX Runtime cannot load it") as e:
        OnnxRuntimeBackend("default", n_samples=0, precision="fp32")
    assert "\n" not in str(e.value)
    assert len(list(shipped.rglob("*.onnx"))) == 9  # nothing shipped is removed


def test_each_graph_runs_with_its_own_batch_limit(tiny_checkpoint, two_d_world_checkpoint, tmp_path):
    """Before, the last graph loaded set the limit for all: a 2d graph with a 4-hand noise table got 256 hands."""
    small = export_onnx(two_d_world_checkpoint, ("2d",), tmp_path / "2d.onnx", n_samples=4, max_batch=4)
    big = export_onnx(two_d_world_checkpoint, ("world",), tmp_path / "world.onnx", n_samples=4, max_batch=256)
    pair = export_onnx(two_d_world_checkpoint, ("2d", "world"), tmp_path / "pair.onnx", n_samples=4, max_batch=4)
    be = OnnxRuntimeBackend(files=[small.path, pair.path, big.path])
    alone = OnnxRuntimeBackend(files=[small.path])
    x = _keypoints(("2d", "world"), 10)
    assert be.infer({"2d": x["2d"]}).joints.shape == (10, 21, 3)
    assert be.infer(x).joints.shape == (10, 21, 3)
    assert be.infer({"world": x["world"]}).joints.shape == (10, 21, 3)
    np.testing.assert_array_equal(be.infer({"2d": x["2d"]}).joints, alone.infer({"2d": x["2d"]}).joints)


def test_a_cached_graph_with_a_zero_batch_limit_is_prepared_again(two_d_world_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    ck = str(two_d_world_checkpoint)
    be = OnnxRuntimeBackend(ck, ("2d", "world"), n_samples=0, prepare=prepare_graph, precision="fp32")
    world = be.files[("world",)]
    _retag(world, max_batch=0)
    again = OnnxRuntimeBackend(ck, ("2d", "world"), n_samples=0, prepare=prepare_graph, precision="fp32")
    assert read_onnx_metadata(world)["max_batch"] == 256  # exported again
    x = _keypoints(("2d", "world"), 3)
    for mods in (("2d", "world"), ("world",), ("2d",)):
        assert again.infer({m: x[m] for m in mods}).joints.shape == (3, 21, 3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_size": "big"}, "image_size 'big' is not an integer"),
        ({"image_size": 0}, "image_size 0 is not an integer of at least 1"),
        ({"drop": ("image_size",)}, "no image_size"),
        ({"max_batch": 0}, "max_batch 0"),
        ({"max_batch": "256"}, "max_batch '256'"),
        ({"max_batch": True}, "max_batch True"),
        ({"max_batch": 64}, r"noise table is \[4, 256, 8\], its metadata says \[4, 64, 8\]"),
        ({"z_dim": 16}, r"noise table is \[4, 256, 8\]"),
        ({"n_samples": -1}, "n_samples -1"),
        ({"modalities": "2d"}, "modalities '2d' is not a list"),
        ({"modalities": ["2d", "hands"]}, "is not a list of"),
        ({"modalities": ["2d", "2d"]}, "is not a list of"),
        ({"modalities": ["world"]}, r"inputs \['keypoints_2d'\] do not match its metadata \['world'\]"),
        ({"model_id": 7}, "model_id 7"),
        ({"conventions": {"root": "middle_mcp"}}, "conventions"),
        ({"drop": ("conventions",)}, "conventions"),
        ({"precision": "int4"}, "precision 'int4'"),
        ({"crop_view": "sideways"}, "crop_view 'sideways'"),
        ({"encoders": "2d"}, "encoders '2d'"),
        ({"std_calibration": [1, 2]}, "std_calibration"),
        ({"error_model": {"2d": "good"}}, "error_model"),
        ({"checkpoint_sha256": 12}, "checkpoint_sha256 12"),
    ],
)
def test_tampered_metadata_is_one_line_naming_the_file(tiny_checkpoint, tmp_path, changes, message):
    art = export_onnx(tiny_checkpoint, ("2d",), tmp_path / "g.onnx", n_samples=4)
    _retag(art.path, **changes)
    with pytest.raises(ExportError, match=message) as e:
        read_onnx_metadata(art.path)
    assert str(e.value).startswith(f"{art.path}: ") and "\n" not in str(e.value)
    with pytest.raises(ExportError, match=message):  # what `OnnxRuntimeBackend(files=...)` says, before any session
        OnnxRuntimeBackend(files=[art.path])


def test_metadata_of_optional_keys_may_be_missing_or_null(tiny_checkpoint, tmp_path):
    """Older exports lack some keys; a model without calibration has nulls: both still read."""
    art = export_onnx(tiny_checkpoint, ("2d",), tmp_path / "g.onnx", n_samples=0)
    _retag(art.path, drop=("cloud_points", "crop_view", "encoders", "opset", "max_batch"))
    meta = read_onnx_metadata(art.path)
    assert meta["std_calibration"] is None and "encoders" not in meta
    assert OnnxRuntimeBackend(files=[art.path]).infer(_keypoints(("2d",), 1)).joints.shape == (1, 21, 3)


def test_every_shipped_graph_passes_the_metadata_check():
    from streamhand.model_files import SHIPPED_GRAPHS

    graphs = sorted(SHIPPED_GRAPHS.rglob("*.onnx"))
    assert graphs
    for g in graphs:
        read_onnx_metadata(g)


def test_an_image_graph_whose_image_size_contradicts_its_input_is_refused(tmp_path):
    import torch

    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig

    torch.manual_seed(6)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "depth", "3d"], decoders=["3d"], image_size=32,
                      image_encoder="compact")  # fmt: skip
    ck = save_checkpoint(tmp_path / "d.pt", HandPoseModel(cfg))
    art = export_onnx(ck, ("depth",), tmp_path / "d.onnx", n_samples=0)
    assert read_onnx_metadata(art.path)["image_size"] == 32
    _retag(art.path, image_size=64)
    with pytest.raises(ExportError, match=r"input depth_crop has shape \['batch', 1, 32, 32\]"):
        read_onnx_metadata(art.path)


def test_a_gpu_provider_that_fails_leaves_a_sound_cached_graph_alone(two_d_world_checkpoint, tmp_path, monkeypatch):
    """Not every refusal is damage: where the CPU provider loads the file, it is kept and the provider is named."""
    import onnxruntime as ort

    import streamhand.infer.onnxruntime_backend as backend

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    ck = str(two_d_world_checkpoint)
    made = OnnxRuntimeBackend(ck, ("2d",), n_samples=4, prepare=prepare_graph, precision="fp32").files[("2d",)]
    stamp = made.stat().st_mtime_ns
    real = ort.InferenceSession

    def session(path, *args, providers=None, **kwargs):
        if providers and providers[0] == "CUDAExecutionProvider":
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(path, *args, providers=providers, **kwargs)

    monkeypatch.setattr(backend, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    with pytest.raises(ExportError, match=r"CUDAExecutionProvider cannot run it .*no CUDA-capable device"):
        OnnxRuntimeBackend(ck, ("2d",), n_samples=4, prepare=prepare_graph, precision="fp32")
    assert made.stat().st_mtime_ns == stamp
