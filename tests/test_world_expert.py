"""The world expert: a detector's own metric 3D (MediaPipe's world landmarks) encoded into the virtual
camera's frame, its depth mixed with MediaPipe's image landmarks' depth, simulated for synthetic training, turned with
the camera for augmentation, fused with the 2D expert in training (the run-time fusion has its own ELBO) and at run
time through the Lifter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamhand.codec import IMAGE_DEPTH_WEIGHT, encode_2d, encode_3d, encode_world, palm_size, world_with_image_depth
from streamhand.geometry import Intrinsics
from streamhand.infer.lifter import Lifter
from streamhand.infer.torch_backend import TorchBackend
from streamhand.models import HandPoseModel, ModelConfig
from streamhand.synth.sampler import SamplerConfig, sample_hands
from train.config import WorldNoiseConfig
from train.datasets.synthetic import simulated_world, turn_about_axis
from train.losses import training_loss


@pytest.fixture
def hands():
    return sample_hands(np.random.default_rng(3), 64, SamplerConfig())


def test_exact_world_encodes_like_the_3d_target_up_to_scale(hands):
    _, rot = encode_2d(hands.joints_2d, hands.left, hands.intrinsics)
    y3d, _ = encode_3d(hands.joints_cam, hands.left, rot)
    # world landmarks are centred anywhere (MediaPipe: near the hand's centre): only wrist-relative shape counts
    shifted = hands.joints_cam + np.array([0.3, -0.2, 1.0])
    xw = encode_world(shifted, hands.left, rot)
    ratio = palm_size(y3d) / palm_size(xw)
    np.testing.assert_allclose(xw * ratio[:, None, None], y3d, atol=1e-5)
    np.testing.assert_allclose(palm_size(xw), 1.0, rtol=1e-5)


def test_world_encoding_is_scale_free(hands):
    _, rot = encode_2d(hands.joints_2d, hands.left, hands.intrinsics)
    a = encode_world(hands.joints_cam, hands.left, rot)
    b = encode_world(1.7 * hands.joints_cam, hands.left, rot)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    ("cfg", "lo_mm", "hi_mm"),
    [
        (WorldNoiseConfig(rot_deg=0, bone_rel=0, joint_rel=0), 0.0, 1e-6),
        (WorldNoiseConfig(), 4.0, 40.0),
        (WorldNoiseConfig(rot_deg=25, bone_rel=0.2, joint_rel=0.1), 15.0, 80.0),
    ],
)
def test_simulated_world_error_follows_its_config(hands, cfg, lo_mm, hi_mm):
    sim = simulated_world(np.random.default_rng(0), hands.joints_cam, cfg)
    rel = hands.joints_cam - hands.joints_cam[:, :1]
    err = 1000 * np.linalg.norm((sim - sim[:, :1]) - rel, axis=-1).mean()
    assert lo_mm <= err <= hi_mm


def test_turning_the_camera_about_its_axis_keeps_the_projection(hands):
    f, cx, cy = hands.intrinsics.fx, hands.intrinsics.cx, hands.intrinsics.cy
    j0 = hands.joints_cam
    px = np.stack(
        [f[:, None] * j0[..., 0] / j0[..., 2] + cx[:, None], f[:, None] * j0[..., 1] / j0[..., 2] + cy[:, None]], -1
    )
    mp = {"landmarks": px, "world": hands.joints_cam - hands.joints_cam[:, :1],
          "joints_cam": hands.joints_cam, "left": hands.left,
          "fx": hands.intrinsics.fx, "fy": hands.intrinsics.fx.copy(),  # square pixels: the turn is exact
          "cx": hands.intrinsics.cx, "cy": hands.intrinsics.cy}  # fmt: skip
    idx = np.arange(len(hands))
    m = turn_about_axis(mp, idx, np.random.default_rng(1).uniform(-np.pi, np.pi, len(idx)))
    j = m["joints_cam"]
    uv = np.stack([m["fx"][:, None] * j[..., 0] / j[..., 2] + m["cx"][:, None],
                   m["fy"][:, None] * j[..., 1] / j[..., 2] + m["cy"][:, None]], -1)  # fmt: skip
    np.testing.assert_allclose(uv, m["landmarks"], atol=1e-6)
    np.testing.assert_allclose(m["world"], j - j[:, :1], atol=1e-9)
    # the view turn undoes the camera's roll: the 3D target in the virtual camera differs only by an in-plane turn
    np.testing.assert_allclose(np.linalg.norm(m["joints_cam"] - m["joints_cam"][:, :1], axis=-1),
                               np.linalg.norm(mp["world"], axis=-1), atol=1e-9)  # fmt: skip


def test_poe_objective_trains_the_run_time_fusion():
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"]))
    b = 4
    inputs = {"2d": torch.randn(b, 21, 2), "world": torch.randn(b, 21, 3), "3d": torch.randn(b, 21, 3)}
    _, logs = training_loss(model, inputs, {"3d": inputs["3d"]}, 1e-3, {}, "poe")
    assert {"kl_2d", "kl_world", "kl_3d", "kl_2d+world+3d", "kl_2d+world"} <= set(logs)
    _, logs = training_loss(model, {"2d": inputs["2d"], "3d": inputs["3d"]}, {"3d": inputs["3d"]}, 1e-3, {}, "poe")
    assert "kl_2d+3d" in logs and not any("world" in k for k in logs)
    _, logs = training_loss(model, inputs, {"3d": inputs["3d"]}, 1e-3, {}, "cross")
    assert not any("+" in k for k in logs)


def test_lifter_fuses_world_landmarks_when_the_model_has_them(hands, tmp_path):
    from streamhand.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"]))
    path = save_checkpoint(tmp_path / "w.pt", model)
    lifter = Lifter(TorchBackend(path, n_samples=4))
    k = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    lm, left, world = hands.joints_2d[:3], hands.left[:3], hands.joints_cam[:3]
    fused = lifter(lm, left, k, world=world).joints_norm
    only_2d = lifter(lm, left, k, world=world, modalities=("2d",)).joints_norm
    no_world = lifter(lm, left, k).joints_norm
    only_world = lifter(lm, left, k, world=world, modalities=("world",)).joints_norm
    np.testing.assert_allclose(only_2d, no_world, atol=1e-6)
    assert np.abs(fused - only_2d).max() > 1e-4 and np.abs(fused - only_world).max() > 1e-4


def _image_depth(hands) -> np.ndarray:
    """(B, 21) the true hands' relative depth as MediaPipe's image landmarks give it: pixels at the wrist's distance."""
    z = hands.joints_cam[..., 2]
    return (z - z[:, :1]) * hands.intrinsics.fx[:, None] / z[:, :1]


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_world_depth_mixes_mediapipes_two_readings_of_it(hands, weight):
    rel = hands.joints_cam - hands.joints_cam[:, :1]
    flat = rel * np.array([1.0, 1.0, 0.3])  # world landmarks that read the hand flat, far from the wrist
    world = flat + np.array([0.02, -0.01, 0.4])  # centred anywhere: only the wrist-relative shape counts
    got = world_with_image_depth(world, hands.joints_2d, _image_depth(hands), weight)
    np.testing.assert_allclose(got[..., :2], flat[..., :2], atol=1e-12)  # across the image: the world landmarks'
    alone = world_with_image_depth(world, hands.joints_2d, _image_depth(hands), 1.0)[..., 2]
    np.testing.assert_allclose(got[..., 2], (1 - weight) * flat[..., 2] + weight * alone, atol=1e-12)
    # the image landmarks' depth, put into metres by the hand's size across the image, is the true depth (a weak
    # perspective's error)
    spread = np.abs(rel[..., 2]).mean()
    assert np.abs(alone - rel[..., 2]).mean() < 0.1 * spread < np.abs(flat[..., 2] - rel[..., 2]).mean()
    # in pixels of any image size: a picture twice as large gives the same metres
    twice = world_with_image_depth(world, 2 * hands.joints_2d, 2 * _image_depth(hands), weight)
    np.testing.assert_allclose(twice, got, atol=1e-12)


def test_lifter_mixes_image_depth_into_the_world_input_only(hands, tmp_path):
    from streamhand.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"]))
    backend = TorchBackend(save_checkpoint(tmp_path / "w.pt", model), n_samples=0)
    k = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    lm, left, world = hands.joints_2d[:3], hands.left[:3], hands.joints_cam[:3] * np.array([1.0, 1.0, 0.3])
    z = _image_depth(hands)[:3]
    mixed, plain = Lifter(backend), Lifter(backend, image_depth=0.0)
    assert mixed.image_depth == IMAGE_DEPTH_WEIGHT
    a = mixed(lm, left, k, world=world, landmarks_z=z).joints_norm
    assert np.abs(a - mixed(lm, left, k, world=world).joints_norm).max() > 1e-4  # without it: the world's depth
    np.testing.assert_allclose(plain(lm, left, k, world=world, landmarks_z=z).joints_norm,
                               mixed(lm, left, k, world=world).joints_norm, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(mixed(lm, left, k, world=world, landmarks_z=z, modalities=("2d",)).joints_norm,
                               mixed(lm, left, k).joints_norm, atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="image depth"):
        Lifter(backend, image_depth=1.5)


@pytest.mark.slow
def test_mediapipes_image_depth_makes_the_world_expert_err_less_on_renders():
    """The real MediaPipe on renders, the shipped default model: its world expert alone, and fused with the 2D, err
    less with MediaPipe's image landmarks' depth mixed into its world landmarks' than with the world's alone."""
    from streamhand.checkpoint import load_checkpoint
    from streamhand.model_files import resolve_model
    from streamhand.skeleton import reference_length
    from streamhand.synth.sampler import IntrinsicsBatch
    from train.datasets.mediapipe_pairs import detect_rendered

    rng = np.random.default_rng(5)
    hs = sample_hands(rng, 40, SamplerConfig(width=640, height=480, facing_fraction=0.85, in_frame_margin=8.0))
    found = [(i, d) for i, d, _ in detect_rendered(rng, hs, progress=False) if d is not None]
    assert len(found) >= 25
    idx = np.array([i for i, _ in found])
    lm, z, world = (np.stack([getattr(d, f) for _, d in found]) for f in ("landmarks_px", "landmarks_z", "world"))
    left = np.array([d.handedness == "left" for _, d in found])
    kb = IntrinsicsBatch(640, 480, *(getattr(hs.intrinsics, q)[idx] for q in ("fx", "fy", "cx", "cy")))
    truth = hs.joints_cam[idx] - hs.joints_cam[idx, :1]
    backend = TorchBackend(load_checkpoint(resolve_model("default")), n_samples=0)
    errors = {}
    for weight in (0.0, IMAGE_DEPTH_WEIGHT):
        for mods in (("world",), ("2d", "world")):
            out = Lifter(backend, image_depth=weight)(lm, left, kb, scale=reference_length(hs.joints_cam[idx]),
                                                       world=world, landmarks_z=z, modalities=mods)  # fmt: skip
            errors[weight, mods] = np.linalg.norm(out.joints_rel - truth, axis=-1)[:, 1:].mean()
    for mods in (("world",), ("2d", "world")):
        assert errors[IMAGE_DEPTH_WEIGHT, mods] < 0.97 * errors[0.0, mods], errors
