"""joint_std calibration: the fit recovers known coefficients, is applied per fused expert set by the Lifter,
and travels in the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamhand.uncertainty import apply_calibration, fit_calibration, modality_key


@pytest.mark.parametrize(
    ("a", "b"),
    [(2.0, 0.1), (0.0, 0.3), (1.5, 0.0)],  # both terms, only a floor, only a gain
)
def test_fit_recovers_the_coefficients(a, b):
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.05, 0.5, (20000, 21))
    sigma = np.sqrt((a * spread) ** 2 + b**2)
    # errors whose expected square is sigma^2 (radial error of a 3D Gaussian with per-axis sigma/sqrt(3))
    err = np.linalg.norm(rng.normal(size=(20000, 21, 3)) * (sigma / np.sqrt(3))[..., None], axis=-1)
    cal = fit_calibration(spread, err)
    out = apply_calibration(spread, cal)
    np.testing.assert_allclose(out, sigma, rtol=0.06)  # the calibrated std is the true one
    assert np.mean(err**2) == pytest.approx(np.mean(out**2), rel=0.05)


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [(1.0, 0.1, 2.0), pytest.param(0.0, 0.2, 1.5, marks=pytest.mark.slow),
     pytest.param(1.5, 0.1, 0.0, marks=pytest.mark.slow)],  # all three, no spread term, no disagreement term
)  # fmt: skip
def test_fit_recovers_the_disagreement_term(a, b, c):
    rng = np.random.default_rng(1)
    spread = rng.uniform(0.05, 0.3, (20000, 21))
    dis = rng.uniform(0.0, 0.5, (20000, 21))
    sigma = np.sqrt((a * spread) ** 2 + (c * dis) ** 2 + b**2)
    err = np.linalg.norm(rng.normal(size=(20000, 21, 3)) * (sigma / np.sqrt(3))[..., None], axis=-1)
    cal = fit_calibration(spread, err, dis)
    np.testing.assert_allclose(cal["c"], c, atol=0.12)
    np.testing.assert_allclose(apply_calibration(spread, cal, dis), sigma, rtol=0.08)
    # a calibration without the disagreement term ignores it; one with it needs it to add anything
    assert "c" not in fit_calibration(spread, err)
    np.testing.assert_allclose(apply_calibration(spread, cal, None), np.sqrt((np.array(cal["a"]) * spread) ** 2
                                                                            + np.array(cal["b"]) ** 2))  # fmt: skip


def test_model_disagreement_is_zero_for_one_expert_and_grows_when_experts_differ():
    from streamhand.models import HandPoseModel, ModelConfig

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"])).eval()
    x2d, w = torch.randn(4, 21, 2), torch.randn(4, 21, 3)
    assert model({"2d": x2d}).disagreement.abs().max() == 0
    both = model({"2d": x2d, "world": w})
    assert both.disagreement.shape == (4, 21) and (both.disagreement > 0).all()
    mu2, lv2 = model.encoders["2d"](x2d)
    from streamhand.models import product_of_experts

    own = model.decode(product_of_experts([mu2], [lv2])[0])  # the 2D expert's own answer
    assert torch.linalg.norm(own - both.joints, dim=-1).max() <= both.disagreement.max() * np.sqrt(2) + 1e-6


def test_apply_without_calibration_is_identity():
    s = np.random.default_rng(1).uniform(size=(3, 21))
    assert apply_calibration(s, None) is s


@pytest.mark.parametrize(
    ("mods", "key"),
    [(("world", "2d"), "2d+world"), (["2d"], "2d"), ({"depth", "2d", "rgb"}, "2d+rgb+depth")],
)
def test_modality_key_is_canonical(mods, key):
    assert modality_key(mods) == key


def test_lifter_applies_the_stored_calibration(tmp_path):
    from streamhand.checkpoint import save_checkpoint
    from streamhand.geometry import Intrinsics
    from streamhand.infer.lifter import Lifter
    from streamhand.infer.torch_backend import TorchBackend
    from streamhand.models import HandPoseModel, ModelConfig
    from streamhand.synth.sampler import SamplerConfig, sample_hands

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"]))
    cal = {"2d": {"a": [0.0] * 21, "b": [0.5] * 21}}
    raw = Lifter(TorchBackend(save_checkpoint(tmp_path / "raw.pt", model), n_samples=4))
    calibrated = Lifter(TorchBackend(save_checkpoint(tmp_path / "cal.pt", model, std_calibration=cal), n_samples=4))
    hs = sample_hands(np.random.default_rng(0), 2, SamplerConfig())
    k = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    out = calibrated(hs.joints_2d, hs.left, k, scale=np.array([0.04, 0.05]), modalities=("2d",))
    np.testing.assert_allclose(out.joint_std, [[0.02] * 21, [0.025] * 21])  # b (bone lengths) x scale
    fused_cal = calibrated(hs.joints_2d, hs.left, k, world=hs.joints_cam).joint_std
    fused_raw = raw(hs.joints_2d, hs.left, k, world=hs.joints_cam).joint_std
    np.testing.assert_allclose(fused_cal, fused_raw)  # no calibration stored for 2d+world: the raw spread


def test_calibrate_std_fits_every_expert_set_and_stores_it(tmp_path):
    """train.calibrate_std on labelled hands: one calibration per run-time fusion, the disagreement term only
    for the fused one, stored in the checkpoint and used by a fresh Lifter."""
    from streamhand.checkpoint import load_checkpoint, save_checkpoint
    from streamhand.geometry import Intrinsics
    from streamhand.infer.lifter import Lifter
    from streamhand.infer.torch_backend import TorchBackend
    from streamhand.models import HandPoseModel, ModelConfig
    from streamhand.synth.sampler import SamplerConfig, sample_hands
    from train.calibrate_std import calibrate, with_simulated_world, write_calibration

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"]))
    path = save_checkpoint(tmp_path / "m.pt", model)
    hs = sample_hands(np.random.default_rng(3), 64, SamplerConfig())
    cam = {q: np.full(64, v, np.float32) for q, v in zip(("fx", "fy", "cx", "cy"), (500, 500, 320, 240))}
    pairs = {"landmarks": hs.joints_2d.astype(np.float32), "left": hs.left, "joints_cam": hs.joints_cam,
             "world": np.zeros_like(hs.joints_cam, np.float32), **cam}  # fmt: skip
    sim = with_simulated_world(pairs, seed=1)
    assert np.abs(sim["world"]).max() > 0 and sim["world"].shape == hs.joints_cam.shape
    np.testing.assert_array_equal(with_simulated_world(pairs, seed=1)["world"], sim["world"])  # seeded
    cal = calibrate(path, sim, n_samples=4)
    assert set(cal) == {"2d", "world", "2d+world"}
    assert "c" in cal["2d+world"] and "c" not in cal["2d"]
    write_calibration(path, cal)
    assert load_checkpoint(path).meta["std_calibration"] == cal
    k = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    out = Lifter(TorchBackend(path, n_samples=4))(hs.joints_2d[:4], hs.left[:4], k, world=hs.joints_cam[:4])
    assert np.isfinite(out.joint_std).all() and (out.joint_std[:, 1:] > 0).all()


def test_world_landmarks_scaled_keep_each_hands_difficulty_at_the_simulated_level():
    """``--world scaled``: MediaPipe's own world landmarks, their error from the truth shrunk by one factor to the
    simulation's mean level; a hand MediaPipe read worse stays worse, in the same direction."""
    from streamhand.synth.sampler import SamplerConfig, sample_hands
    from train.calibrate_std import WORLDS, with_scaled_world

    rng = np.random.default_rng(4)
    hs = sample_hands(rng, 200, SamplerConfig())
    truth = hs.joints_cam - hs.joints_cam[:, :1]
    hard = np.linspace(0.01, 0.08, 200)[:, None, None]  # each hand's own error level, metres
    own = truth + rng.normal(size=truth.shape) * hard + np.array([0.0, 0.0, 0.3])  # MediaPipe's: centred elsewhere
    pairs = {"joints_cam": hs.joints_cam, "world": own.astype(np.float32)}
    scaled = with_scaled_world(pairs, seed=1)["world"]
    simulated = WORLDS["simulated"](pairs, seed=1)["world"]

    def err(w: np.ndarray) -> np.ndarray:
        return np.linalg.norm(w - w[:, :1] - truth, axis=-1)[:, 1:].mean(1)

    assert err(scaled).mean() == pytest.approx(err(simulated).mean(), rel=1e-4)
    assert err(scaled).mean() < 0.6 * err(own).mean()
    assert np.corrcoef(err(scaled), err(own))[0, 1] > 0.999  # every hand shrunk alike: its difficulty kept
    cos = ((scaled - truth) * (own - own[:, :1] - truth)).sum(-1)[:, 1:]
    assert (cos > 0).all()  # and its errors point where MediaPipe's did
    assert WORLDS["mediapipe"](pairs, seed=1) is pairs
    assert "landmarks_z" not in with_scaled_world(pairs, seed=1)
    # the simulation has no second reading of depth: MediaPipe's own, at its level on renders, is not mixed into it
    z = np.zeros((200, 21), np.float32)
    assert "landmarks_z" not in WORLDS["simulated"]({**pairs, "landmarks_z": z}, seed=1)


def test_scaled_world_scales_the_image_landmarks_depth_by_the_same_factor():
    """MediaPipe's other reading of depth (its image landmarks' ``landmarks_z``, pixels at the wrist's distance) comes
    closer to the truth's by the world landmarks' own factor, so that the two readings stay at one level."""
    from streamhand.synth.sampler import SamplerConfig, sample_hands
    from train.calibrate_std import with_scaled_world

    rng = np.random.default_rng(6)
    hs = sample_hands(rng, 100, SamplerConfig())
    truth = hs.joints_cam - hs.joints_cam[:, :1]
    fx = hs.intrinsics.fx
    true_z = truth[..., 2] * (fx / hs.joints_cam[:, 0, 2])[:, None]  # pixels
    z_own = true_z + rng.normal(size=true_z.shape) * 20.0 + 7.0  # MediaPipe's, its wrist not at 0
    own = truth + rng.normal(size=truth.shape) * 0.04
    pairs = {"joints_cam": hs.joints_cam, "world": own.astype(np.float32), "fx": fx,
             "landmarks_z": z_own.astype(np.float32)}  # fmt: skip
    out = with_scaled_world(pairs, seed=2)
    err = [np.linalg.norm(w - w[:, :1] - truth, axis=-1)[:, 1:].mean() for w in (out["world"], own)]
    factor = err[0] / err[1]
    assert 0.2 < factor < 0.9
    np.testing.assert_allclose(out["landmarks_z"], true_z + factor * (z_own - z_own[:, :1] - true_z), atol=1e-3)


@pytest.mark.parametrize(
    ("modalities", "sets"),
    [
        (("2d", "3d"), ["2d"]),
        (("2d", "world", "3d"), ["2d", "world", "2d+world"]),
        (("2d", "rgb", "3d"), ["2d", "rgb", "2d+rgb"]),
        (("2d", "world", "depth", "3d"),
         ["2d", "world", "2d+world", "depth", "2d+depth", "world+depth", "2d+world+depth"]),
        (("2d", "world", "rgb", "3d"), ["2d", "world", "2d+world", "rgb", "2d+rgb", "world+rgb", "2d+world+rgb"]),
    ],
)  # fmt: skip
def test_expert_sets_are_the_run_time_fusions(modalities, sets):
    """Every set of experts a run can fuse (--modalities: any non-empty subset of the model's inputs) is calibrated;
    one left out would be published with a joint_std of zero."""
    from itertools import combinations

    from streamhand.uncertainty import modality_key
    from train.calibrate_std import expert_sets

    got = [modality_key(s) for s in expert_sets(modalities)]
    assert got == sets
    inputs = [m for m in modalities if m != "3d"]
    every = {modality_key(c) for k in range(1, len(inputs) + 1) for c in combinations(inputs, k)}
    assert set(got) == every


def test_calibrate_std_renders_crops_for_an_image_expert(tmp_path):
    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig
    from streamhand.synth.sampler import SamplerConfig, sample_hands
    from train.calibrate_std import calibrate, pair_crops

    torch.manual_seed(0)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "depth", "3d"], decoders=["3d"], image_size=32,
                      image_encoder="compact")  # fmt: skip
    path = save_checkpoint(tmp_path / "m.pt", HandPoseModel(cfg))
    hs = sample_hands(np.random.default_rng(3), 24, SamplerConfig(in_frame_margin=20))
    k = hs.intrinsics
    pairs = {"landmarks": hs.joints_2d.astype(np.float32), "left": hs.left, "joints_cam": hs.joints_cam,
             "world": np.zeros_like(hs.joints_cam, np.float32), "fx": k.fx, "fy": k.fy, "cx": k.cx,
             "cy": k.cy}  # fmt: skip
    crops = pair_crops(pairs, ["depth"], 32)
    assert crops["depth"].shape == (24, 1, 32, 32) and (crops["depth"].min(axis=(1, 2, 3)) < 0).all()  # hands
    cal = calibrate(path, pairs, n_samples=4)
    assert set(cal) == {"2d", "depth", "2d+depth"} and "c" in cal["2d+depth"]


def test_a_set_of_experts_without_calibration_is_said_once(tmp_path, caplog):
    """A model calibrated for some sets of experts only: a run fusing another set is told, once, that its joint_std
    is only the posterior spread (zero without sampling), and the calibrated set is not warned of."""
    import logging

    from streamhand.checkpoint import save_checkpoint
    from streamhand.geometry import Intrinsics
    from streamhand.infer import Lifter, TorchBackend
    from streamhand.models import HandPoseModel, ModelConfig
    from streamhand.synth.sampler import sample_hands

    torch.manual_seed(0)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["2d", "world", "3d"], decoders=["3d"])
    path = save_checkpoint(tmp_path / "m.pt", HandPoseModel(cfg), std_calibration={"2d": {"a": 1.0, "b": 0.01}})
    hs = sample_hands(np.random.default_rng(0), 2)
    k = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    lifter = Lifter(TorchBackend(path, n_samples=0))
    with caplog.at_level(logging.WARNING, logger="streamhand.infer.lifter"):
        lifter(hs.joints_2d, hs.left, k, modalities=("2d",))
        assert not caplog.records
        for _ in range(2):
            out = lifter(hs.joints_2d, hs.left, k, world=hs.joints_cam, modalities=("world",))
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "the model has no calibration or error model for the experts world"]
    assert (out.joint_std == 0).all()
