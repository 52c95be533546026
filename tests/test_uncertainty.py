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
