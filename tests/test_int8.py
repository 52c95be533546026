"""Int8 graphs for ONNX Runtime on a CPU: the shipped ones are the fp32 graphs in 8 bits (same metadata, outputs
within a bound on real hands' inputs), which graph a run takes for each precision, quantizing a user's own graph
at first use (cached), and the errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from streamhand.codec import encode_2d, encode_world
from streamhand.export import ExportError, export_onnx, read_onnx_metadata
from streamhand.infer.int8 import all_keypoints, int8_graph, int8_name, quantize_graph
from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend
from streamhand.model_files import INPUT_NAMES, SHIPPED_GRAPHS
from streamhand.synth.sampler import SamplerConfig, sample_hands

SHIPPED_INT8 = ("default", "depth")


def _keypoint_inputs(n: int = 64, seed: int = 5) -> dict[str, np.ndarray]:
    """What the lifter feeds its experts for sampled hands: their 2D and (noisy) metric 3D, encoded."""
    rng = np.random.default_rng(seed)
    h = sample_hands(rng, n, SamplerConfig())
    x2d, rot = encode_2d(h.joints_2d + rng.normal(0, 2.0, h.joints_2d.shape), h.left, h.intrinsics)
    world = h.joints_cam + rng.normal(0, 0.004, h.joints_cam.shape)
    return {"2d": x2d.astype(np.float32), "world": encode_world(world, h.left, rot).astype(np.float32)}


def _session(path):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", SHIPPED_INT8)
def test_shipped_int8_graphs_are_the_fp32_graphs_in_8_bits(name):
    folder = SHIPPED_GRAPHS / name
    int8 = sorted(folder.glob("*.int8.onnx"))
    fp32_k0 = sorted(p for p in folder.glob("*.k0.onnx"))
    assert len(int8) == len(fp32_k0) > 0, f"python -m streamhand.export.ship {name}"
    x = _keypoint_inputs()
    for q in int8:
        f = q.with_name(q.name.replace(".int8.onnx", ".onnx"))
        mq, mf = read_onnx_metadata(q), read_onnx_metadata(f)
        assert mq["precision"] == "int8" and mf["precision"] == "fp32"
        assert {**mf, "precision": "int8", "int8_weights": "uint8"} == mq
        if not all_keypoints(mq["modalities"]):
            continue  # image inputs need realistic crops: the depth model's int8 demo figure is in docs/figures.md
        feed = {INPUT_NAMES[m]: x[m] for m in mq["modalities"]}
        jq, jf = _session(q).run(None, feed)[0], _session(f).run(None, feed)[0]
        size = np.linalg.norm(jf - jf[:, :1], axis=-1).mean()  # the hands' mean joint distance from the wrist
        diff = np.linalg.norm(jq - jf, axis=-1)
        # measured: mean 0.8-0.9 %, worst joint 2.6-5.1 % of the hand's size, the same on every CPU; signed weights
        # on an AVX2 CPU without VNNI (16-bit sums that saturate): mean 1.4-2.8 %, worst 10-95 %
        assert diff.mean() < 0.01 * size and diff.max() < 0.06 * size, (q.name, diff.mean() / size, diff.max() / size)


@pytest.mark.parametrize(
    ("precision", "want"), [("auto", "int8"), ("int8", "int8"), ("fp32", "fp32")]
)
def test_each_precision_loads_its_graphs(precision, want):
    be = OnnxRuntimeBackend("default", n_samples=0, precision=precision, providers=["CPUExecutionProvider"])
    assert be.precision == want and f", {want}]" in be.describe()
    assert be.files and all(f.name.endswith(".int8.onnx") == (want == "int8") for f in be.files.values())
    out = be.infer(_keypoint_inputs(3))
    assert out.joints.shape == (3, 21, 3) and np.isfinite(out.joints).all()


def test_int8_weights_are_unsigned_so_every_cpu_sums_them_exactly(tiny_checkpoint, tmp_path):
    import onnx

    art = export_onnx(tiny_checkpoint, ("2d",), tmp_path / "a.onnx", n_samples=0)
    meta = quantize_graph(art.path, tmp_path / "a.int8.onnx")
    assert meta["int8_weights"] == "uint8"
    g = onnx.load(str(tmp_path / "a.int8.onnx")).graph
    init = {t.name: t for t in g.initializer}
    weights = [init[n.input[1]] for n in g.node if n.op_type == "MatMulInteger"]
    assert weights and all(t.data_type == onnx.TensorProto.UINT8 for t in weights)


def test_an_int8_graph_with_signed_weights_is_quantized_again(tiny_checkpoint, tmp_path, monkeypatch):
    """Graphs cached by an earlier version (int8 weights, no ``int8_weights``) are made again at first use."""
    import onnx

    from streamhand.export.onnx_export import prepare_graph
    from streamhand.model_files import write_onnx_metadata

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph, precision="auto")
    (made,) = (tmp_path / "cache").rglob("*.int8.onnx")
    proto = onnx.load(str(made))
    meta = read_onnx_metadata(made)
    del meta["int8_weights"]
    write_onnx_metadata(proto, meta)
    onnx.save(proto, str(made))
    be = OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph, precision="auto")
    assert be.files[("2d",)] == made and read_onnx_metadata(made)["int8_weights"] == "uint8"


def test_a_bad_precision_is_refused():
    with pytest.raises(ValueError, match="precision 'int4'"):
        OnnxRuntimeBackend("default", precision="int4")


def test_a_users_graph_is_quantized_at_first_use_and_cached(tiny_checkpoint, tmp_path, monkeypatch):
    from streamhand.export.onnx_export import prepare_graph

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    be = OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph, precision="auto")
    assert be.precision == "int8"
    made = sorted((tmp_path / "cache").rglob("*.int8.onnx"))
    assert len(made) == 1 and read_onnx_metadata(made[0])["precision"] == "int8"
    stamp = os.stat(made[0]).st_mtime_ns
    again = OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph, precision="auto")
    assert os.stat(made[0]).st_mtime_ns == stamp  # found, not made again
    x = {"2d": _keypoint_inputs(4)["2d"]}
    np.testing.assert_array_equal(be.infer(x).joints, again.infer(x).joints)


@pytest.mark.slow
def test_auto_leaves_image_graphs_in_fp32_unless_int8_is_asked_for(tmp_path, monkeypatch):
    import torch

    from streamhand.checkpoint import save_checkpoint
    from streamhand.export.onnx_export import prepare_graph
    from streamhand.models import HandPoseModel, ModelConfig

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "depth", "3d"], decoders=["3d"], image_size=32)
    ck = save_checkpoint(tmp_path / "d.pt", HandPoseModel(cfg))
    OnnxRuntimeBackend(str(ck), ("2d", "depth"), n_samples=0, prepare=prepare_graph, precision="auto")
    made = [read_onnx_metadata(p)["modalities"] for p in (tmp_path / "cache").rglob("*.int8.onnx")]
    assert made == [["2d"]]  # the keypoint graph only
    OnnxRuntimeBackend(str(ck), ("2d", "depth"), n_samples=0, prepare=prepare_graph, precision="int8")
    assert len(list((tmp_path / "cache").rglob("*.int8.onnx"))) == 3


def test_quantizing_needs_an_fp32_streamhand_graph(tiny_checkpoint, tmp_path):
    art = export_onnx(tiny_checkpoint, ("2d",), tmp_path / "a.onnx", n_samples=0)
    q = tmp_path / "a.int8.onnx"
    quantize_graph(art.path, q)
    with pytest.raises(ExportError, match="only an fp32 graph"):
        quantize_graph(q, tmp_path / "b.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 64)  # never a protobuf (random bytes now and then parse as one)
    with pytest.raises(ExportError, match="not a readable ONNX file"):
        int8_graph(tmp_path / "junk.onnx", {"precision": "fp32"}, None)


def test_a_graph_that_cannot_be_quantized_runs_in_fp32_under_auto_and_fails_under_int8(tiny_checkpoint, tmp_path,
                                                                                      monkeypatch, caplog):  # fmt: skip
    from streamhand.export.onnx_export import prepare_graph

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path / "cache"))
    fp32 = OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph).files[("2d",)]
    (fp32.parent / int8_name(fp32.name)).mkdir()  # where the int8 graph would go: it cannot be written there
    be = OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph, precision="auto")
    assert be.files[("2d",)] == fp32 and ", fp32]" in be.describe() and "running it in fp32" in caplog.text
    with pytest.raises(ExportError, match="--precision int8: "):
        OnnxRuntimeBackend(str(tiny_checkpoint), ("2d",), n_samples=0, prepare=prepare_graph, precision="int8")


def test_a_quantization_that_cannot_be_saved_leaves_no_part_file(tiny_checkpoint, tmp_path, monkeypatch):
    import onnx

    art = export_onnx(str(tiny_checkpoint), ("2d",), tmp_path / "a.onnx", n_samples=0)

    def full(_proto, path, *_a, **_k):  # the disk fills half way through the file
        Path(path).write_bytes(b"half a graph")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save", full)
    with pytest.raises(OSError, match="No space left"):
        quantize_graph(art.path, tmp_path / "q" / "a.int8.onnx")
    assert list((tmp_path / "q").iterdir()) == []


def test_runs_quantizing_the_same_graph_at_once_do_not_trip_over_each_other(tiny_checkpoint, tmp_path):
    """The quantizer wrote its shape-inferred copy (``<graph>-inferred.onnx``) beside the graph it read and removed
    it after: two runs quantizing the same cached graph at once raced on that one file (FileNotFoundError: one ran in
    fp32, or was refused under ``--precision int8``). Each quantizes a copy in its own private folder now. Beside the
    three threads here, another run is half-way through its own quantization: its side file must stay as it is."""
    import threading

    art = export_onnx(str(tiny_checkpoint), ("2d",), tmp_path / "src" / "a.onnx", n_samples=0)
    theirs = art.path.with_name("a-inferred.onnx")
    theirs.write_bytes(b"another run's shape-inferred copy, being read")
    before = sorted(p.name for p in art.path.parent.iterdir())
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def quantize(i: int) -> None:
        start.wait()
        for j in range(8):
            try:
                quantize_graph(art.path, tmp_path / "out" / f"{i}_{j}.int8.onnx")
            except Exception as e:  # every failure is the finding
                errors.append(e)

    threads = [threading.Thread(target=quantize, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in art.path.parent.iterdir()) == before  # nothing written beside the source
    assert theirs.read_bytes() == b"another run's shape-inferred copy, being read"
    assert len(list((tmp_path / "out").glob("*.int8.onnx"))) == 24
    import logging

    assert logging.root.manager.disable == logging.NOTSET  # logging back as it was (each thread put back the other's)


def test_a_graph_in_a_read_only_folder_is_quantized(tiny_checkpoint, tmp_path):
    """A read-only install (the package's weights folder mounted read-only): the quantizer could not write its
    shape-inferred copy beside the graph, and every run fell back to fp32 (or was refused under ``--precision
    int8``) with a cause that named the quantizer. The folder is made read-only, and, since root writes into such a
    folder anyway, the side file's name is taken by a folder, which no one can write as a file."""
    art = export_onnx(str(tiny_checkpoint), ("2d",), tmp_path / "ro" / "a.onnx", n_samples=0)
    (art.path.parent / f"{art.path.stem}-inferred.onnx").mkdir()
    art.path.parent.chmod(0o555)
    try:
        meta = quantize_graph(art.path, tmp_path / "cache" / "a.int8.onnx")
    finally:
        art.path.parent.chmod(0o755)
    assert meta["precision"] == "int8" and read_onnx_metadata(tmp_path / "cache" / "a.int8.onnx") == meta
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a.int8.onnx"]
    x = {INPUT_NAMES["2d"]: _keypoint_inputs(4)["2d"]}
    want, got = (_session(p).run(None, x)[0] for p in (art.path, tmp_path / "cache" / "a.int8.onnx"))
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()
