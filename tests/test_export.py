"""ONNX export of the inference graph: parity with PyTorch through real ONNX Runtime, metadata, errors."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
import torch

from streamhand.checkpoint import load_checkpoint, save_checkpoint
from streamhand.export import ExportError, export_onnx, read_onnx_metadata
from streamhand.export.graph import INPUT_NAMES
from streamhand.export.onnx_export import prepare_graph
from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend
from streamhand.infer.torch_backend import TorchBackend
from streamhand.models import HandPoseModel, ModelConfig

MODS = ("2d", "world", "rgb", "depth")
SETS = [c for r in range(1, 5) for c in itertools.combinations(MODS, r)]
# each expert alone and the shipped models' pair in the quick run; the other combinations in the full one
QUICK_SETS = [*[(m,) for m in MODS], ("2d", "world")]


@pytest.fixture(scope="module")
def four_expert_ckpt(tmp_path_factory):
    torch.manual_seed(3)
    enc = ["2d", "world", "rgb", "depth", "3d"]
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=enc, decoders=["3d"], image_size=32)
    cal = {"2d": {"a": 1.0, "b": 0.0}}
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "four.pt", HandPoseModel(cfg), std_calibration=cal)


@pytest.fixture(scope="module")
def four_expert_torch(four_expert_ckpt):
    """The reference, loaded once for the module (the checkpoint with two image experts takes ~0.6 s to load)."""
    return TorchBackend(four_expert_ckpt, n_samples=4)


def _inputs(mods, b, size=32, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"2d": (b, 21, 2), "world": (b, 21, 3), "rgb": (b, 3, size, size), "depth": (b, 1, size, size)}
    return {m: rng.uniform(-0.5, 0.5, shapes[m]).astype(np.float32) for m in mods}


@pytest.mark.parametrize(
    "mods", [pytest.param(s, id="+".join(s), marks=() if s in QUICK_SETS else pytest.mark.slow) for s in SETS]
)
def test_onnxruntime_equals_pytorch_for_every_modality_set(four_expert_ckpt, four_expert_torch, tmp_path, mods):
    import onnxruntime as ort

    art = export_onnx(four_expert_ckpt, mods, tmp_path / "m.onnx", n_samples=4)
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    tb = four_expert_torch
    for b in (1, 8):
        x = _inputs(mods, b, seed=b)
        got = sess.run(None, {INPUT_NAMES[m]: x[m] for m in mods})
        want = tb.infer(x)
        for g, w in zip(got, (want.joints, want.joint_std, want.disagreement)):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)
        assert (got[1] > 0).all()  # the spread is computed in the graph
        if len(mods) > 1:
            assert (got[2] > 0).all()


def test_graph_is_valid_with_named_io_dynamic_batch_and_metadata(four_expert_ckpt, tmp_path):
    art = export_onnx(four_expert_ckpt, ("world", "2d"), tmp_path / "m.onnx", opset=18)
    proto = onnx.load(str(art.path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version >= 17
    assert [i.name for i in proto.graph.input] == ["keypoints_2d", "world_landmarks"]  # fixed order
    assert [o.name for o in proto.graph.output] == ["joints", "joint_std", "disagreement"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    meta = read_onnx_metadata(art.path)
    ck = load_checkpoint(four_expert_ckpt)
    assert meta["model_id"] == ck.model_id and meta["z_dim"] == 8 and meta["image_size"] == 32
    assert meta["modalities"] == ["2d", "world"] and meta["n_samples"] == 16 and meta["opset"] == 18
    assert meta["layout"] == "mediapipe21" and meta["conventions"]["root"] == "wrist"
    assert meta["std_calibration"] == {"2d": {"a": 1.0, "b": 0.0}}
    assert len(meta["checkpoint_sha256"]) == 64 and meta["inputs"][1]["shape"] == ["B", 21, 3]


def test_the_graph_without_sampling_does_its_shape_arithmetic_at_export(four_expert_ckpt, tmp_path):
    """What a CPU run calls every frame: the experts' halves sliced at constants, the decoded batch reshaped to a
    constant shape, the prior's zeros not added; the one shape read left is the zeros of ``joint_std``. Each node
    costs ONNX Runtime a few microseconds at batch 1, where the whole call is a few hundred."""
    art = export_onnx(four_expert_ckpt, ("2d", "world"), tmp_path / "k0.onnx", n_samples=0)
    ops = [n.op_type for n in onnx.load(str(art.path)).graph.node]
    assert ops.count("Shape") <= 1 and ops.count("ConstantOfShape") <= 1
    assert ops.count("Gemm") == 9  # two encoders and one decoder pass, three layers each


def test_fp16_graph_keeps_fp32_io(four_expert_ckpt, tmp_path):
    import onnxruntime as ort

    art = export_onnx(four_expert_ckpt, ("2d",), tmp_path / "h.onnx", n_samples=4, precision="fp16")
    proto = onnx.load(str(art.path))
    f32 = onnx.TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type == f32 for v in [*proto.graph.input, *proto.graph.output])
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    x = _inputs(("2d",), 2)
    got = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"]).run(None, {"keypoints_2d": x["2d"]})
    want = TorchBackend(four_expert_ckpt, n_samples=4).infer(x)
    np.testing.assert_allclose(got[0], want.joints, atol=2e-2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modalities": ("3d",)}, "no runtime input"),
        ({"modalities": ("2d", "depth")}, "no encoder"),
        ({"modalities": ("2d",), "precision": "int8"}, "ONNX precision"),
        ({"modalities": ("2d",), "opset": 13}, "below 17"),
        ({"modalities": ("2d",), "max_batch": 0}, "max batch"),
    ],
)
def test_export_refuses_bad_requests(tiny_checkpoint, tmp_path, kwargs, message):
    with pytest.raises((ExportError, ValueError), match=message):
        export_onnx(tiny_checkpoint, out=tmp_path / "x.onnx", **kwargs)
    assert not (tmp_path / "x.onnx").exists()


def test_metadata_reader_names_what_is_wrong(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        read_onnx_metadata(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01not onnx at all" * 10)
    with pytest.raises(ExportError, match=r"not a readable ONNX|not a streamhand export"):
        read_onnx_metadata(junk)
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(g), str(foreign))
    with pytest.raises(ExportError, match="not a streamhand export"):
        read_onnx_metadata(foreign)


def test_onnxruntime_backend_caches_exports_and_matches_torch(four_expert_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path))
    be = OnnxRuntimeBackend(four_expert_ckpt, ("2d", "world"), n_samples=4, prepare=prepare_graph)
    files = sorted(tmp_path.rglob("*.onnx"))
    assert len(files) == 3  # 2d+world, 2d, world
    stamps = [f.stat().st_mtime_ns for f in files]
    be2 = OnnxRuntimeBackend(four_expert_ckpt, ("2d", "world"), n_samples=4, prepare=prepare_graph)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # reused, not exported again
    # another sample count: its own file
    OnnxRuntimeBackend(four_expert_ckpt, ("2d",), n_samples=8, prepare=prepare_graph)
    assert len(list(tmp_path.rglob("*.onnx"))) == 4
    tb = TorchBackend(four_expert_ckpt, n_samples=4)
    for mods in (("2d", "world"), ("2d",), ("world",)):
        x = _inputs(mods, 3)
        got, want = be2.infer(x), tb.infer(x)
        np.testing.assert_allclose(got.joints, want.joints, atol=1e-4)
        np.testing.assert_allclose(got.joint_std, want.joint_std, atol=1e-4)
    assert be.std_calibration == {"2d": {"a": 1.0, "b": 0.0}}
    assert "onnxruntime[CPUExecutionProvider, fp32]" in be.describe()
    with pytest.raises(KeyError, match="no ONNX graph for modalities rgb"):
        be.infer(_inputs(("rgb",), 1))


def test_onnxruntime_backend_runs_from_files_alone(four_expert_ckpt, tmp_path):
    art = export_onnx(four_expert_ckpt, ("2d",), tmp_path / "only2d.onnx", n_samples=4)
    be = OnnxRuntimeBackend(files=[art.path])
    assert be.modalities == ("2d",) and be.image_size == 32
    x = _inputs(("2d",), 300)  # more hands than the graph's noise table: split into calls
    assert be.infer(x).joints.shape == (300, 21, 3)
    with pytest.raises(ValueError, match="providers"):
        OnnxRuntimeBackend(files=[art.path], providers=["NoSuchExecutionProvider"])


def test_compact_image_encoder_exports_with_parity(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(4)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "depth", "3d"], decoders=["3d"], image_size=32,
                      image_encoder="compact")  # fmt: skip
    ck = save_checkpoint(tmp_path / "compact.pt", HandPoseModel(cfg))
    art = export_onnx(ck, ("2d", "depth"), tmp_path / "m.onnx", n_samples=4)
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    x = _inputs(("2d", "depth"), 3)
    got = sess.run(None, {INPUT_NAMES[m]: x[m] for m in ("2d", "depth")})
    want = TorchBackend(ck, n_samples=4).infer(x)
    for g, w in zip(got, (want.joints, want.joint_std, want.disagreement)):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


def _left_over(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_an_interrupted_export_leaves_no_part_file(tiny_checkpoint, tmp_path, monkeypatch):
    def interrupted(proto, *args, **kwargs):  # Ctrl-C once the graph is on disk, before it is checked
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx.checker, "check_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(tiny_checkpoint, ("2d",), tmp_path / "out" / "m.onnx", n_samples=4)
    assert _left_over(tmp_path / "out") == []


def test_a_full_disk_is_one_line_and_leaves_no_part_file(tiny_checkpoint, tmp_path, monkeypatch):
    import errno
    import os

    def full(proto, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(onnx, "save", full)
    target = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"m\.onnx: cannot write the ONNX graph \(No space left on device\)") as e:
        export_onnx(tiny_checkpoint, ("2d",), target, n_samples=4)
    assert "\n" not in str(e.value) and _left_over(tmp_path) == []


def test_a_folder_in_the_way_is_one_line_and_leaves_no_part_file(tiny_checkpoint, tmp_path):
    target = tmp_path / "m.onnx"
    target.mkdir()
    with pytest.raises(ExportError, match=r"m\.onnx: is a folder"):
        export_onnx(tiny_checkpoint, ("2d",), target, n_samples=4)
    assert _left_over(tmp_path) == [] and target.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match=r"file: cannot make the folder"):
        export_onnx(tiny_checkpoint, ("2d",), tmp_path / "file" / "m.onnx", n_samples=4)


def test_build_engine_with_a_folder_in_the_way_says_so_in_one_line(tiny_checkpoint, tmp_path):
    from streamhand.model_files import default_onnx_name
    from tests.helpers import invoke

    model_id = load_checkpoint(tiny_checkpoint).model_id
    (tmp_path / "e" / default_onnx_name(model_id, ("2d",))).mkdir(parents=True)
    r = invoke("build-engine", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "e"), "--samples", "0")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "unexpectedly" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "is a folder" in r.stderr
    assert not list((tmp_path / "e").glob("*.tmp"))


def test_preparing_into_a_cache_that_cannot_be_written_is_one_line(tiny_checkpoint, tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("x")
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "not-a-folder"))
    with pytest.raises(ExportError, match="cannot make the folder"):
        OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=4, prepare=prepare_graph)


def test_prepare_graph_can_write_into_a_folder_of_the_callers(tiny_checkpoint, tmp_path, monkeypatch):
    """A benchmark's throw-away checkpoints (a new sha each run) need not fill the user's cache."""
    import functools

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    own = tmp_path / "own"
    be = OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=4, precision="fp32",
                            prepare=functools.partial(prepare_graph, folder=own))  # fmt: skip
    assert be.files[("2d",)].parent == own and be.files[("2d",)].name.startswith("k4_")
    assert not (tmp_path / "cache").exists()
