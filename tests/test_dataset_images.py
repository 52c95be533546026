"""Published datasets' images as Spurr's protocol, on a tiny RHD v2 (and FreiHAND, STB) written here in the
on-disk format: depth from the PNG's red and green channels, hand side by mask area, the crop, augmentation
that keeps 2D, 3D and handedness consistent, and errors that name the missing file."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from streamhand.geometry import Intrinsics, project
from streamhand.skeleton import to_rhd
from streamhand.synth.sampler import SamplerConfig, sample_hands
from train.datasets.images import (
    AugmentConfig,
    ImageDataError,
    crop_transform,
    image_sample,
    load_freihand_images,
    load_rhd_images,
    read_rhd_depth,
    rhd_hand_side,
)

W = H = 320


@pytest.fixture
def rhd(tmp_path):
    hands = sample_hands(np.random.default_rng(5), 4, SamplerConfig(width=W, height=H, facing_fraction=1.0,
                                                                      in_frame_margin=60))  # fmt: skip
    k = Intrinsics(W, H, 280.0, 280.0, 160.0, 160.0)
    base = tmp_path / "RHD_published_v2" / "training"
    for d in ("color", "depth", "mask"):
        (base / d).mkdir(parents=True)
    anno = {}
    for i in range(2):
        left, right = hands.joints_cam[2 * i], hands.joints_cam[2 * i + 1]
        xyz = to_rhd(left, right)
        anno[i] = {"xyz": xyz.astype(np.float32), "uv_vis": np.concatenate([project(xyz, k), np.ones((42, 1))], 1),
                   "K": k.matrix()}  # fmt: skip
        img = np.zeros((H, W, 3), np.uint8)
        hand = left if i == 0 else right
        wx, wy = project(hand, k)[0].round().astype(int)
        cv2.circle(img, (int(wx), int(wy)), 3, (255, 255, 255), -1)  # the chosen hand's wrist, to follow
        cv2.imwrite(str(base / "color" / f"{i:05d}.png"), img)
        mask = np.zeros((H, W), np.uint8)
        mask[:40, :40] = 5 if i == 0 else 20  # sample 0: more left-hand pixels; sample 1: more right-hand
        mask[:10, 300:] = 20 if i == 0 else 5
        cv2.imwrite(str(base / "mask" / f"{i:05d}.png"), mask)
        v = round(0.75 / 5.0 * 65535)
        depth = np.zeros((H, W, 3), np.uint8)
        depth[..., 2], depth[..., 1] = v >> 8, v & 255  # BGR: red holds the top bits, green the bottom
        cv2.imwrite(str(base / "depth" / f"{i:05d}.png"), depth)
    with (base / "anno_training.pickle").open("wb") as f:
        pickle.dump(anno, f)
    return tmp_path / "RHD_published_v2", hands


def test_rhd_depth_and_hand_side(rhd):
    root, hands = rhd
    d = read_rhd_depth(root / "training" / "depth" / "00000.png")
    assert d.shape == (H, W) and d[5, 5] == pytest.approx(0.75, abs=1e-4)
    ds = load_rhd_images(root)
    assert list(ds.hands.left) == [True, False]
    np.testing.assert_allclose(ds.hands.joints_cam[0], hands.joints_cam[0], atol=1e-6)
    np.testing.assert_allclose(ds.hands.joints_cam[1], hands.joints_cam[3], atol=1e-6)
    assert rhd_hand_side(np.full((4, 4), 17)) and not rhd_hand_side(np.full((4, 4), 18))


def test_crop_is_centred_twice_the_extent_and_inside_the_image():
    kp = np.array([[100.0, 100.0], [140.0, 120.0]])
    m = crop_transform(kp, 640, 480, 256)
    c = kp @ m[:, :2].T + m[:, 2]
    assert m[0, 0] == pytest.approx(256 / 80) and np.allclose(c.mean(0), 128)
    m = crop_transform(np.array([[5.0, 5.0], [45.0, 25.0]]), 640, 480, 256)  # near the corner: shifted inside
    assert m[0, 2] == 0 and m[1, 2] == 0


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_keeps_2d_3d_and_handedness_together(rhd, seed):
    root, _ = rhd
    ds = load_rhd_images(root)
    rng = np.random.default_rng(seed)
    s = image_sample(ds, 0, rng, AugmentConfig(brightness=0, contrast=0, saturation=0, hue_deg=0))
    assert s["rgb"].shape == (3, 256, 256) and s["rgb"].min() >= -0.5 and s["rgb"].max() <= 0.5
    assert s["depth"].shape == (1, 256, 256)
    bright = np.unravel_index(np.argmax(s["rgb"].sum(0)), (256, 256))[::-1]  # the drawn wrist, (x, y)
    assert np.linalg.norm(np.array(bright) - s["kp2d"][0]) < 6
    flipped = bool(s["left"]) is not bool(ds.hands.left[0])
    # the wrist -> middle knuckle direction agrees in 2D (crop) and 3D (x, y) after the same turn and flip
    d2 = s["kp2d"][9] - s["kp2d"][0]
    d3 = (s["joints_cam"][9] - s["joints_cam"][0])[:2]
    cos = d2 @ d3 / np.linalg.norm(d2) / np.linalg.norm(d3)
    assert cos > 0.9, (seed, flipped)
    fx, fy, cx, cy = s["k"]  # the crop is a pinhole camera: the turned, mirrored 3D projects onto the crop's 2D
    j = s["joints_cam"]
    np.testing.assert_allclose(np.stack([fx * j[:, 0] / j[:, 2] + cx, fy * j[:, 1] / j[:, 2] + cy], -1), s["kp2d"],
                               atol=1e-6)  # fmt: skip


def test_freihand_images_and_missing_files(tmp_path):
    hands = sample_hands(np.random.default_rng(1), 2, SamplerConfig(facing_fraction=1.0, in_frame_margin=40))
    k = Intrinsics.from_fov(224, 224, 60).matrix()
    (tmp_path / "training_xyz.json").write_text(json.dumps(hands.joints_cam.tolist()))
    (tmp_path / "training_K.json").write_text(json.dumps([k.tolist()] * 2))
    with pytest.raises(ImageDataError, match=r"training/rgb/00000000\.jpg"):
        load_freihand_images(tmp_path)
    (tmp_path / "training" / "rgb").mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(tmp_path / "training" / "rgb" / f"{i:08d}.jpg"), np.full((224, 224, 3), 128, np.uint8))
    ds = load_freihand_images(tmp_path)
    assert len(ds) == 2 and image_sample(ds, 1)["rgb"].shape == (3, 256, 256)
    with pytest.raises(ImageDataError, match=r"anno_training\.pickle"):
        load_rhd_images(tmp_path / "nowhere")


def _with_evaluation_split(root):
    """The tiny RHD's training split, also as its evaluation split."""
    import shutil

    shutil.copytree(root / "training", root / "evaluation")
    (root / "evaluation" / "anno_training.pickle").rename(root / "evaluation" / "anno_evaluation.pickle")


@pytest.mark.slow
def test_an_rgb_expert_trains_on_rhd_images_and_evaluates_on_its_test_split(rhd, tmp_path):
    import json

    from streamhand.checkpoint import load_checkpoint
    from tests.helpers import train_cli
    from train.config import TrainConfig
    from train.datasets.published_images import image_pairs
    from train.fit import fit

    root, _ = rhd
    _with_evaluation_split(root)
    cfg = TrainConfig(name="rhd_rgb", steps=6, batch_size=4, eval_every=3, eval_n=10, checkpoint_every=6,
                      device="cpu", out_dir=str(tmp_path / "runs"),
                      model={"z_dim": 8, "hidden": 32, "encoders": ["2d", "rgb", "3d"], "decoders": ["3d"],
                             "image_size": 32, "image_encoder": "compact"},
                      data={"kind": "rhd", "rhd_root": str(root), "chunk": 64})  # fmt: skip
    b = image_pairs(np.random.default_rng(0), cfg.data, 5)
    assert b.images["rgb"].shape == (5, 3, 32, 32) and b.x2d.shape == (5, 21, 2) and b.y3d.shape == (5, 21, 3)
    path = fit(cfg, progress=False)
    hist = json.loads((tmp_path / "runs" / "rhd_rgb" / "history.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(h["val_epe_mean_mm"]) for h in hist)
    assert load_checkpoint(path).model.modalities == ["2d", "rgb", "3d"]

    r = train_cli("eval", "--checkpoint", str(path), "--data", "rhd", "--root", str(root), "--n", "2")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "RGB -> 3D" in r.stdout and "Yang" in r.stdout


@pytest.mark.parametrize(
    ("kind", "encoders", "message"),
    [("stb", ["2d", "depth", "3d"], "STB has no depth"), ("rhd+stb", ["rgb", "cloud", "3d"], "STB has no depth")],
)
def test_published_image_training_refuses_what_the_data_lacks(kind, encoders, message):
    from train.config import TrainConfig

    with pytest.raises(ValueError, match=message):
        TrainConfig(model={"encoders": encoders, "decoders": ["3d"], "image_size": 32}, data={"kind": kind})


@pytest.mark.parametrize(("name", "max_deg", "flips"), [("spurr", 45.0, True), ("yang", 180.0, False)])
def test_the_papers_augmentations(name, max_deg, flips):
    from train.datasets.images import AUGMENTATIONS, augmentation

    rng = np.random.default_rng(0)
    got = [augmentation(rng, AUGMENTATIONS[name], 64) for _ in range(300)]
    angles = np.array([g[2] for g in got])
    assert np.abs(angles).max() <= max_deg and np.abs(angles).max() > 0.8 * max_deg
    assert any(g[1] for g in got) is flips
    if not flips:  # shift: +-20 px of a 256 crop, so +-5 px of a 64 crop (the centre moves by the shift only)
        centre = np.array([g[0][:, :2] @ [32, 32] + g[0][:, 2] for g in got])
        assert np.abs(centre - 32).max() <= 5.0 + 1e-9 and np.abs(centre - 32).max() > 4.0


def test_yang_targets_from_rhd_crops_point_cloud_and_heatmaps(rhd):
    """RHD's depth crop gives the cloud expert the depth plane it holds (turned into the 2D's virtual camera,
    mirrored for left hands, as at run time); the heatmaps peak on the crop's keypoints."""
    from streamhand.skeleton import canonical_hand
    from train.config import DataConfig
    from train.datasets.published_images import image_pairs

    root, _ = rhd
    cfg = DataConfig(kind="rhd", rhd_root=str(root), crops=["rgb", "cloud", "heatmap"], crop_size=64,
                     heatmap_size=16, cloud_points=64)  # fmt: skip
    b = image_pairs(np.random.default_rng(0), cfg, 2, augment=False)
    assert b.images["cloud"].shape == (2, 64, 3) and b.images["heatmap"].shape == (2, 21, 16, 16)
    ds = load_rhd_images(root)
    for i in range(2):
        p = b.images["cloud"][i].numpy().astype(np.float64)
        np.testing.assert_allclose(p.mean(0), 0, atol=1e-5)
        normal = np.linalg.svd(p)[2][-1]  # the fixture's depth is a wall 0.75 m away: one plane
        want = canonical_hand((b.rot[i] @ [0.0, 0.0, 1.0])[None, None], bool(b.left[i]))[0, 0]
        assert abs(normal @ want) > 0.999 and np.linalg.svd(p)[1][-1] < 1e-3
        kp = image_sample(ds, i, None, None, 64)["kp2d"]
        uv = (kp + 0.5) * 16 / 64 - 0.5
        if b.left[i]:
            uv[:, 0] = 15 - uv[:, 0]
        maps = b.images["heatmap"][i].numpy()
        peak = np.array([np.unravel_index(np.argmax(m), m.shape)[::-1] for m in maps])
        assert np.abs(peak - uv).max() <= 0.5 + 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rhd_yang_s4", "rhd_dcmls"])
def test_yang_and_dcmls_recipes_train_on_rhd_images(rhd, tmp_path, name):
    """The published recipes of the follow-up papers, at tiny sizes, train on a tiny RHD and validate on its
    evaluation split."""
    from streamhand.checkpoint import load_checkpoint
    from streamhand.configio import load_yaml
    from tests.helpers import ROOT
    from train.config import TrainConfig
    from train.fit import fit

    root, _ = rhd
    _with_evaluation_split(root)
    full = load_yaml(TrainConfig, ROOT / "configs" / "train" / f"{name}.yaml")
    d = full.model_dump()
    d.update(steps=4, batch_size=4, eval_every=2, eval_n=10, checkpoint_every=4, device="cpu",
             out_dir=str(tmp_path / "runs"))  # fmt: skip
    d["model"].update(image_size=32, image_encoder="compact", hidden=32, heatmap_size=8, cloud_points=36)
    d["data"].update(rhd_root=str(root), chunk=64)
    cfg = TrainConfig(**d)
    assert cfg.model.encoders == full.model.encoders and cfg.data.augment == full.data.augment
    path = fit(cfg, progress=False)
    hist = json.loads((tmp_path / "runs" / name / "history.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(h["loss"]) and np.isfinite(h["val_epe_mean_mm"]) for h in hist)
    assert load_checkpoint(path).model.modalities == [m for m in full.model.encoders]
