"""Image experts trained on rendered crops made as the runtime makes them: the crops, the recipes, a smoke run
of a depth + 2D model with falling loss whose checkpoint the runtime takes with its depth crops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from streamhand.checkpoint import load_checkpoint
from streamhand.configio import ConfigError, load_yaml
from streamhand.detect.crops import normalise_depth
from streamhand.models import HandPoseModel, ModelConfig
from streamhand.synth.crops import render_crops
from streamhand.synth.sampler import SamplerConfig, sample_hands
from tests.helpers import ROOT
from train.config import TrainConfig
from train.fit import fit, freeze, init_from

RECIPES = ROOT / "configs" / "train"


def test_crops_show_the_hand_in_front_with_its_relief():
    rng = np.random.default_rng(2)
    hs = sample_hands(rng, 6, SamplerConfig(facing_fraction=1.0, in_frame_margin=40))
    out = render_crops(rng, hs.joints_cam, hs.joints_2d, hs.left, hs.intrinsics, 640, 480, ["rgb", "depth"], 48)
    assert out["rgb"].shape == (6, 3, 48, 48) and out["depth"].shape == (6, 1, 48, 48)
    centre = out["depth"][:, 0, 18:30, 18:30]
    assert (np.median(centre, axis=(1, 2)) < 0.4).mean() >= 0.8  # the hand at the centre (or between fingers)
    assert (out["depth"].min(axis=(1, 2, 3)) < 0).all()  # in front of the reference: the hand's near surface
    assert (out["depth"][:, 0] >= 0.5).mean() > 0.1  # the scene behind it reads as far
    assert np.std(centre[centre < 0.5]) > 0.01  # the hand keeps its relief


@pytest.mark.parametrize(
    ("depth_m", "want"),
    [
        (np.array([[0.5, 0.5], [1.5, 0.0]]), [[-1 / 6, -1 / 6], [0.5, 0.5]]),  # hand at 0.5 m, scene, no data
        (np.zeros((2, 2)), [[0.5, 0.5], [0.5, 0.5]]),
        (np.array([[0.5, np.inf], [np.nan, -np.inf]]), [[-1 / 6, 0.5], [0.5, 0.5]]),  # not finite: no data
        (np.full((2, 2), np.inf), [[0.5, 0.5], [0.5, 0.5]]),
    ],
)
def test_depth_normalisation(depth_m, want):
    np.testing.assert_allclose(normalise_depth(depth_m)[0], want, atol=1e-6)


@pytest.mark.parametrize(("name", "encoder"), [("depth", "compact"), ("rgb", "mediapipe")])
def test_recipes_validate(name, encoder):
    cfg = load_yaml(TrainConfig, RECIPES / f"{name}.yaml")
    assert cfg.data.crops == [name] and cfg.data.crop_size == cfg.model.image_size
    assert cfg.model.image_encoder == encoder and cfg.init_from == "default"
    model = HandPoseModel(cfg.model)
    assert init_from(model, cfg.init_from) == [f"encoders.{name}"]  # the shipped model's experts fit
    freeze(model, cfg.frozen)
    assert {n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad} == {name}


def test_image_experts_refuse_other_data(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text((RECIPES / "depth.yaml").read_text().replace("data:\n", "data:\n  mediapipe_pairs: 10\n"))
    with pytest.raises(ConfigError, match="without mediapipe_pairs"):
        load_yaml(TrainConfig, p)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"hidden": 64}, "do not fit this model"),  # the shipped model's layers are 1024 wide
        ({"encoders": ["2d", "world", "3d"], "decoders": ["3d", "2d"], "hidden": 1024}, None),  # a new decoder
        ({"encoders": ["2d", "3d"], "decoders": ["3d"], "hidden": 1024}, "encoders.world"),  # a part it lacks
    ],
)
def test_init_from_takes_what_fits_and_names_what_does_not(cfg, message):
    model = HandPoseModel(ModelConfig(**cfg))
    if message is None:
        assert init_from(model, "default") == ["decoders.2d"]
    else:
        with pytest.raises(ValueError, match=message):
            init_from(model, "default")


@pytest.mark.parametrize("path", ["no-such-model", "README.md"])
def test_init_from_refuses_what_is_not_a_checkpoint(path):
    with pytest.raises(ValueError, match=r"not found|not a streamhand checkpoint"):
        init_from(HandPoseModel(ModelConfig(hidden=1024, encoders=["2d", "3d"], decoders=["3d"])), ROOT / path)


def test_freeze_names_an_unknown_part():
    with pytest.raises(ValueError, match=r"names no part of this model.*encoders\.2d"):
        freeze(HandPoseModel(ModelConfig(hidden=32)), ["encoders.depth"])


@pytest.mark.slow
def test_frozen_experts_do_not_move_and_the_new_one_learns(tmp_path):
    over = {"out_dir": str(tmp_path), "steps": 6, "eval_every": 6, "eval_n": 20, "checkpoint_every": 6,
            "batch_size": 8, "workers": 0, "precision": "fp32"}  # fmt: skip
    cfg = load_yaml(TrainConfig, RECIPES / "depth.yaml", over)
    cfg.data.chunk = 64
    path = fit(cfg, progress=False)
    after = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    before = torch.load(ROOT / "streamhand" / "weights" / "default.pt", map_location="cpu")["state_dict"]
    for k, v in before.items():
        assert torch.equal(after[k], v.float()), k  # the shipped experts and decoder, unchanged
    torch.manual_seed(cfg.seed)  # the depth expert's weights at the start of fit
    start = HandPoseModel(cfg.model).state_dict()
    learnt = [k for k in start if k.startswith("encoders.depth.") and "running" not in k and "batches" not in k]
    assert learnt and all(not torch.equal(after[k], start[k]) for k in learnt)


@pytest.mark.slow
@pytest.mark.parametrize("decoders", [["3d"], ["3d", "depth"]], ids=["without", "with_image_reconstruction"])
def test_depth_model_smoke_training(tmp_path, decoders):
    over = {"out_dir": str(tmp_path), "steps": 40, "eval_every": 20, "eval_n": 10, "checkpoint_every": 40,
            "batch_size": 8, "workers": 0, "precision": "fp32", "init_from": None, "frozen": []}  # fmt: skip
    cfg = load_yaml(TrainConfig, RECIPES / "depth.yaml", over)
    cfg.model.hidden, cfg.data.chunk, cfg.lr = 64, 64, 1e-3
    cfg.model.decoders, cfg.model.image_decoder_channels = decoders, [32, 16]  # 4 x 2^3 = the 32x32 crop
    torch.manual_seed(0)
    path = fit(cfg, progress=False)
    hist = json.loads((tmp_path / "depth" / "history.json").read_text())
    assert hist[-1]["loss"] < hist[0]["loss"]
    ck = load_checkpoint(path)
    assert ck.model.modalities == ["2d", "world", "depth", "3d"] and ck.model.cfg.image_size == 32
    assert list(ck.model.decoders) == decoders


@pytest.mark.parametrize(
    ("options", "message"),
    [({"decoders": ["3d", "depth"], "image_size": 32}, "make 256x256 images but crops are 32x32"),
     ({"decoders": ["3d", "cloud"], "cloud_points": 200}, r"cloud_points must be a square \(e.g. 196 or 225\)")],
)  # fmt: skip
def test_a_decoder_must_make_its_target_size(options, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**options)


@pytest.mark.slow
def test_closed_loop_feeds_the_image_expert_crops_of_the_rendered_frame(tmp_path):
    """Render -> the real MediaPipe -> lift with a depth model: its depth expert gets the frame's crops."""
    from streamhand.checkpoint import save_checkpoint
    from train.synth_report import detection_and_closed_loop

    torch.manual_seed(0)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "depth", "3d"], decoders=["3d"], image_size=32,
                      image_encoder="compact")  # fmt: skip
    path = save_checkpoint(tmp_path / "m.pt", HandPoseModel(cfg))
    det, closed = detection_and_closed_loop(8, checkpoint=str(path), progress=False)
    assert det["detection_rate"] > 0.5
    assert set(closed["experts"]) == {"2d", "world", "2d+world", "depth", "2d+depth", "world+depth", "2d+world+depth"}
    alone = closed["experts"]["depth"]["epe_mean_mm"]
    assert np.isfinite(alone) and alone != closed["experts"]["2d"]["epe_mean_mm"]


def test_turned_crops_centre_the_palm_and_keep_true_depths():
    from streamhand.detect.crops import view_crop, warp_view
    from streamhand.skeleton import MIDDLE_MCP, WRIST

    rng = np.random.default_rng(1)
    hs = sample_hands(rng, 1, SamplerConfig(in_frame_margin=40))
    k = hs.intrinsics[0]
    cam = (k.fx, k.fy, k.cx, k.cy)
    vc = view_crop(hs.joints_2d[0], cam, 32)
    u, v = 0.5 * (hs.joints_2d[0, WRIST] + hs.joints_2d[0, MIDDLE_MCP])  # the palm centre's ray
    ray = vc.rot @ np.array([(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0])
    np.testing.assert_allclose(vc.f * ray[:2] / ray[2] + vc.c, vc.c, atol=1e-9)  # on the turned optical axis
    plane = np.full((k.height, k.width), 0.6, np.float32)  # a wall 0.6 m away along the camera's axis
    d = warp_view(plane, vc, cam, depth=True)
    g = (np.arange(32) - vc.c) / vc.f
    rays = np.stack([*np.meshgrid(g, g), np.ones((32, 32))], -1)
    points = (rays * d[..., None]) @ vc.rot  # back to the camera frame
    np.testing.assert_allclose(points[..., 2][d > 0], 0.6, rtol=1e-5)


@pytest.mark.parametrize("view", ["box", "turned"])
def test_crops_rendered_for_training_match_the_runtime_crops(view, monkeypatch):
    """The training renderer draws each crop directly at low resolution; the runtime crops (or warps) the full
    frame: the same hand, the same relief, holes of the same size on it (objects in front of the hand, drawn at
    random in each, are left out of both)."""
    from dataclasses import replace

    import streamhand.synth.crops as synth_crops
    from streamhand.detect.crops import hand_crops
    from tests.helpers import rendered_frames

    monkeypatch.setattr(synth_crops, "CROP_RENDER", replace(synth_crops.CROP_RENDER, occluders=0.0))
    rgbs, depths, hs = rendered_frames(6, 640, 480, seed=4, occluders=0.0)
    compared = 0
    for i in range(6):
        k = hs.intrinsics[i]
        cam = (k.fx, k.fy, k.cx, k.cy)
        run = hand_crops(rgbs[i], depths[i], [hs.joints_2d[i]], ("depth",), 32, 1.4, cam, view=view)["depth"][0, 0]
        drawn = render_crops(np.random.default_rng(i), hs.joints_cam[i : i + 1], hs.joints_2d[i : i + 1],
                             hs.left[i : i + 1], hs.intrinsics.take(np.array([i])), 640, 480, ["depth"], 32,
                             view=view)["depth"][0, 0]  # fmt: skip
        drawn = drawn[:, ::-1] if hs.left[i] else drawn  # training crops of left hands come mirrored
        # where the crop reaches past the frame the runtime has no data and the training render draws on (the
        # forearm leaving the picture), which also moves the depth reference: those hands are not comparable
        flat = np.ones_like(depths[i])
        inside = hand_crops(rgbs[i], flat, [hs.joints_2d[i]], ("depth",), 32, 1.4, cam, view=view)["depth"][0, 0] < 0.5
        a, b = run < 0.3, drawn < 0.3
        if (b & ~inside).any():
            continue
        compared += 1
        assert (a & b).sum() / (a | b).sum() > 0.75, i
        assert np.median(np.abs(run - drawn)[a & b]) < 0.02, i  # within 6 mm of relief
    assert compared >= 4


def test_turned_crops_are_a_model_option_for_renders_only():
    cfg = TrainConfig(model={"encoders": ["2d", "depth", "3d"], "decoders": ["3d"], "image_size": 32,
                             "image_encoder": "compact", "crop_view": "turned"})  # fmt: skip
    assert cfg.data.crop_view == "turned"
    with pytest.raises(ValueError, match="turned crops train on renders"):
        TrainConfig(model={"encoders": ["2d", "rgb", "3d"], "decoders": ["3d"], "image_size": 32,
                           "crop_view": "turned"}, data={"kind": "rhd"})  # fmt: skip
