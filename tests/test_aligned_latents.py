"""Yang et al.'s parts: the point cloud of a depth crop, keypoint heatmaps, the point-cloud encoder, the folding
and heatmap decoders, their losses in the ELBO, and smoke trainings of strategies S1, S2 and S4."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from streamhand.codec import CLOUD_SCALE_M, encode_cloud
from streamhand.detect.crops import depth_cloud, keypoint_heatmaps
from streamhand.models import HandPoseModel, ModelConfig
from streamhand.models.decoders import FoldingDecoder, HeatmapDecoder
from streamhand.models.encoders import PointCloudEncoder
from streamhand.synth.crops import render_crops
from streamhand.synth.sampler import SamplerConfig, sample_hands
from train.config import TrainConfig
from train.fit import fit


def test_depth_cloud_back_projects_the_near_surface():
    d = np.zeros((4, 4), np.float32)
    d[1, 2] = 0.5  # a hand pixel at u=2, v=1
    d[2, 1] = 0.55
    d[3, 3] = 1.5  # the scene behind: beyond the span, left out
    k = (100.0, 100.0, 2.0, 2.0)
    pts = depth_cloud(d, k, n=4)
    want = {(0.0, -0.005, 0.5), (-0.0055, 0.0, 0.55)}
    assert {tuple(np.round(p, 6)) for p in pts.astype(np.float64)} == want  # repeated to n points
    np.testing.assert_array_equal(depth_cloud(d, k, n=4), pts)  # the same crop gives the same cloud
    assert not depth_cloud(np.zeros((4, 4)), k, n=3).any()


def test_depth_cloud_takes_infinity_and_nan_as_no_data():
    d = np.full((8, 8), np.inf, np.float32)
    assert (depth_cloud(d, (10.0, 10.0, 4.0, 4.0), n=4) == 0).all()
    d[2:4, 2:4], d[0, 0] = 0.5, np.nan
    pts = depth_cloud(d, (10.0, 10.0, 4.0, 4.0), n=4)
    assert np.isfinite(pts).all() and np.allclose(pts[:, 2], 0.5)


def test_heatmaps_peak_on_their_keypoints():
    hm = keypoint_heatmaps(np.array([[3.0, 5.0], [0.0, 0.0]]), 8)
    assert hm.shape == (2, 8, 8) and hm[0, 5, 3] == pytest.approx(1.0) and hm[1, 0, 0] == pytest.approx(1.0)
    assert np.unravel_index(hm[0].argmax(), (8, 8)) == (5, 3) and hm[0, 5, 4] == pytest.approx(np.exp(-0.5))


def test_clouds_are_centred_metric_and_mirrored_for_left_hands():
    rng = np.random.default_rng(0)
    pts = rng.normal(0, 0.03, (2, 50, 3)) + np.array([0.1, 0.0, 0.5])
    rot = np.broadcast_to(np.eye(3), (2, 3, 3))
    right = encode_cloud(pts, np.array([False, False]), rot)
    left = encode_cloud(pts, np.array([False, True]), rot)
    np.testing.assert_allclose(right.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(right[0] * CLOUD_SCALE_M, pts[0] - pts[0].mean(0), atol=1e-6)
    np.testing.assert_allclose(left[1, :, 0], -right[1, :, 0], atol=1e-6)


def test_rendered_clouds_lie_on_the_hand_and_heatmaps_on_its_keypoints():
    rng = np.random.default_rng(4)
    hs = sample_hands(rng, 6, SamplerConfig(facing_fraction=1.0, in_frame_margin=40))
    out = render_crops(rng, hs.joints_cam, hs.joints_2d, hs.left, hs.intrinsics, 640, 480, ["cloud", "heatmap"], 32,
                       truth_2d=hs.joints_2d, heatmap_size=16, cloud_points=64)  # fmt: skip
    assert out["cloud"].shape == (6, 64, 3) and out["heatmap"].shape == (6, 21, 16, 16)
    near = np.linalg.norm(out["cloud"][:, :, None] - hs.joints_cam[:, None], axis=-1).min(-1)
    assert np.median(near) < 0.03  # skin within 3 cm of a joint centre
    assert (out["heatmap"].max(axis=(2, 3)) > 0.3).mean() > 0.9  # each joint's peak inside its map


def test_point_cloud_encoder_ignores_point_order():
    enc = PointCloudEncoder(8, width=16, blocks=2).eval()
    x = torch.randn(3, 40, 3)
    mu, lv = enc(x)
    mu2, lv2 = enc(x[:, torch.randperm(40)])
    assert mu.shape == (3, 8) and torch.allclose(mu, mu2, atol=1e-5) and torch.allclose(lv, lv2, atol=1e-5)


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (FoldingDecoder, {"points": 50}, "square grid"),
    (HeatmapDecoder, {"size": 24}, "power of two"),
])  # fmt: skip
def test_decoders_refuse_sizes_they_cannot_make(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(8, **kwargs)


def test_decoders_make_clouds_and_heatmaps():
    m = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["cloud", "3d"], decoders=["3d", "cloud", "heatmap"],
                                  cloud_points=64, heatmap_size=16))  # fmt: skip
    z = torch.randn(2, 8)
    assert m.decode(z, "cloud").shape == (2, 64, 3) and m.decode(z, "heatmap").shape == (2, 21, 16, 16)


STRATEGIES = {
    "S1": (["rgb", "3d"], ["3d"], "cross"),
    "S2": (["rgb", "3d"], ["3d", "cloud", "heatmap"], "cross"),
    "S3": (["rgb", "rgb+cloud", "3d"], ["3d", "cloud", "heatmap"], "align"),
    "S4": (["rgb", "cloud", "3d"], ["3d", "cloud", "heatmap"], "poe"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_smoke_training_lowers_the_loss(tmp_path, name):
    enc, dec, objective = STRATEGIES[name]
    cfg = TrainConfig(
        name=name, steps=40, batch_size=8, lr=1e-3, eval_every=20, eval_n=16, checkpoint_every=40, device="cpu",
        out_dir=str(tmp_path),
        model={"z_dim": 16, "hidden": 64, "encoders": enc, "decoders": dec, "image_size": 32,
               "image_encoder": "compact", "cloud_points": 64, "heatmap_size": 16},
        data={"chunk": 64}, loss={"objective": objective, "warmup_steps": 1},
    )  # fmt: skip
    assert set(cfg.data.crops) == {
        "rgb",
        *({"cloud", "heatmap"} & set(dec)),
        *({"cloud"} & set("+".join(enc).split("+"))),
    }
    torch.manual_seed(0)
    fit(cfg, progress=False)
    hist = json.loads((tmp_path / name / "history.json").read_text())
    assert len(hist) == 2 and hist[-1]["loss"] < hist[0]["loss"]


def test_a_joint_encoder_stands_in_for_the_rgb_expert_given_both_inputs():
    torch.manual_seed(0)
    m = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["rgb", "rgb+cloud", "3d"], decoders=["3d"],
                                  image_size=32, image_encoder="compact")).eval()  # fmt: skip
    assert m.modalities == ["rgb", "3d", "cloud"]
    rgb, cloud = torch.randn(2, 3, 32, 32), torch.randn(2, 256, 3)
    assert set(m.encode_each({"rgb": rgb})) == {"rgb"}
    assert set(m.encode_each({"rgb": rgb, "cloud": cloud})) == {"rgb+cloud"}
    with pytest.raises(KeyError, match="no encoder for"):
        m.encode_each({"depth": torch.randn(2, 1, 32, 32)})


@pytest.mark.parametrize("fused_kl", [True, False])
def test_the_fused_kl_term_is_optional(fused_kl):
    from train.losses import training_loss

    torch.manual_seed(0)
    m = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world"], decoders=["3d"]))
    x = {"2d": torch.randn(4, 21, 2), "world": torch.randn(4, 21, 3)}
    torch.manual_seed(1)
    _, logs = training_loss(m, x, {"3d": torch.randn(4, 21, 3)}, 1.0, {}, "poe", fused_kl=fused_kl)
    rec = sum(v for k, v in logs.items() if k.startswith("rec_"))
    kls = [logs["kl_2d"], logs["kl_world"]] + ([logs["kl_2d+world"]] if fused_kl else [])
    assert logs["loss"] == pytest.approx(rec + sum(kls), rel=1e-5)


def test_kl_between_gaussians():
    from streamhand.models.poe import kl_gaussians, kl_to_standard_normal

    mu, lv = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(kl_gaussians(mu, lv, torch.zeros(3, 5), torch.zeros(3, 5)), kl_to_standard_normal(mu, lv))
    assert torch.allclose(kl_gaussians(mu, lv, mu, lv), torch.zeros(3), atol=1e-6)
    # 1-D by hand: N(1, 1) against N(0, 4): log 2 + (1 + 1) / 8 - 1/2
    one = kl_gaussians(torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.log(torch.full((1, 1), 4.0)))
    assert float(one) == pytest.approx(np.log(2) + 2 / 8 - 0.5)


CLOUD_MODELS = {
    "S4": ["rgb", "cloud", "3d"],  # product of the RGB and point-cloud experts
    "S3": ["rgb", "rgb+cloud", "3d"],  # the RGB expert, or the joint one given both
}


@pytest.fixture(scope="module", params=list(CLOUD_MODELS))
def cloud_checkpoint(request, tmp_path_factory):
    from streamhand.checkpoint import save_checkpoint

    torch.manual_seed(5)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=CLOUD_MODELS[request.param], decoders=["3d"], image_size=32,
                      image_encoder="compact", cloud_points=64)  # fmt: skip
    return save_checkpoint(tmp_path_factory.mktemp("ck") / f"{request.param}.pt", HandPoseModel(cfg))


@pytest.mark.slow
def test_cloud_models_run_the_same_in_onnxruntime_and_pytorch(cloud_checkpoint):
    from streamhand.export.calibration_data import model_inputs
    from streamhand.export.onnx_export import prepare_graph
    from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend
    from streamhand.infer.torch_backend import TorchBackend

    ort_be = OnnxRuntimeBackend(cloud_checkpoint, n_samples=4, prepare=prepare_graph)
    torch_be = TorchBackend(cloud_checkpoint, n_samples=4)
    assert ort_be.cloud_points == 64 and set(ort_be.modalities) == {"rgb", "cloud", "3d"}
    x = model_inputs(("rgb", "cloud"), 3, 32, seed=2, cloud_points=64)
    assert x["cloud"].shape == (3, 64, 3)
    for mods in (("rgb",), ("rgb", "cloud")):
        got, want = ort_be.infer({m: x[m] for m in mods}), torch_be.infer({m: x[m] for m in mods})
        np.testing.assert_allclose(got.joints, want.joints, atol=1e-4)
        np.testing.assert_allclose(got.joint_std, want.joint_std, atol=1e-4)


def test_runtime_crops_give_each_hand_its_cloud():
    from streamhand.detect.crops import hand_crops
    from tests.helpers import rendered_frames

    rgbs, depths, hs = rendered_frames(2)
    k = hs.intrinsics[0]
    out = hand_crops(rgbs[0], depths[0], [hs.joints_2d[0]], ("rgb", "cloud"), 32, 1.4, (k.fx, k.fy, k.cx, k.cy), 64)
    assert out["rgb"].shape == (1, 3, 32, 32) and out["cloud"].shape == (1, 64, 3)
    near = np.linalg.norm(out["cloud"][0][:, None] - hs.joints_cam[0][None], axis=-1).min(-1)
    assert np.median(near) < 0.03  # the cloud is the hand's skin, in the camera frame
    assert "cloud" not in hand_crops(rgbs[0], None, [hs.joints_2d[0]], ("cloud",), 32)  # no depth, no cloud


@pytest.mark.slow
def test_a_cloud_model_runs_on_the_demo(cloud_checkpoint, tmp_path):
    from tests.conftest import free_port
    from tests.helpers import invoke

    rep, port = tmp_path / "r.json", free_port()
    r = invoke("run", "--source", "demo", "--model", str(cloud_checkpoint), "--frames", "20", "--no-realtime",
               "--backend", "torch", "--port", str(port), "--control-port", str(free_port()),
               "--report", str(rep))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(rep.read_text())
    assert report["modalities"] == ["rgb", "cloud"] and report["frames_processed"] == 20
    assert report["detection_rate"] > 0.5 and np.isfinite(report["epe_mean_mm"])


def test_weak_supervision_through_the_cloud_validates():
    model = {"encoders": ["rgb", "cloud", "3d"], "decoders": ["3d", "cloud"], "image_size": 32,
             "image_encoder": "compact"}  # fmt: skip
    assert TrainConfig(labelled_fraction=0.3, model=model).labelled_fraction == 0.3
    with pytest.raises(ValueError, match="needs a 2d decoder"):
        TrainConfig(labelled_fraction=0.3, model={**model, "decoders": ["3d"]})
