"""DCMLS (Gu et al.): the discriminator and translator losses with the equations' labels, the ablation
switches, a smoke training with falling loss, and the model through export, ONNX Runtime and the demo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from streamhand.models import ModelConfig, build_model
from streamhand.models.dcmls import DisentangledModel
from train.config import TrainConfig
from train.dcmls import (
    context_discriminator_loss,
    dcmls_loss,
    encoder_adversarial_loss,
    pose_discriminator_loss,
    translator_loss,
)
from train.fit import fit

CFG = {"architecture": "dcmls", "z_dim": 30, "hidden": 32, "encoders": ["2d", "3d"], "decoders": ["3d"]}


def _summing(model: DisentangledModel) -> None:
    """Make both discriminators output the sum of their input (a known logit)."""
    for d in (model.pose_discriminator, model.context_discriminator):
        for layer in d:
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.zeros_(layer.bias)
                torch.nn.init.eye_(layer.weight) if layer.out_features > 1 else torch.nn.init.ones_(layer.weight)


def _softplus(x: float) -> float:
    return float(np.log1p(np.exp(x)))


A, B = 0.1, 0.03  # per latent unit: logits 15 A (x's pose part, the translated context) and 15 B (y's)
LAT = {"zh_x": torch.full((1, 15), A), "zh_y": torch.full((1, 15), B), "z_t": torch.full((1, 15), A),
       "zc_y": torch.full((1, 15), B), "mu_t": torch.full((1, 15), A)}  # fmt: skip


@pytest.fixture
def summing_model():
    m = build_model(ModelConfig(**CFG))
    assert (m.zh, m.zc) == (15, 15)
    _summing(m)
    return m


# BCE with logits: BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l)
@pytest.mark.parametrize(
    ("loss", "want"),
    [
        (pose_discriminator_loss, 0.5 * _softplus(-15 * A) + 0.5 * _softplus(15 * B)),  # Eq. 4: x 1, y 0
        (encoder_adversarial_loss, 0.5 * _softplus(15 * A) + 0.5 * _softplus(-15 * B)),  # Eq. 5: swapped
        (context_discriminator_loss, 0.5 * _softplus(15 * A) + 0.5 * _softplus(-15 * B)),  # Eq. 6: T(x) 0, y 1
        (translator_loss, 15 * (A - B) + 0.5 * _softplus(-15 * A) + 0.5 * _softplus(15 * B)),  # Eq. 7: L1 + swapped
    ],
    ids=["D_h", "E", "D_c", "T"],
)
def test_adversarial_terms_have_the_equations_labels(summing_model, loss, want):
    assert float(loss(summing_model, LAT).detach()) == pytest.approx(want, rel=1e-5)


def test_the_generator_step_has_every_term():
    torch.manual_seed(0)
    m = build_model(ModelConfig(**CFG))
    loss, logs = dcmls_loss(m, {"2d": torch.randn(8, 21, 2)}, {"3d": torch.randn(8, 21, 3)}, 1e-3, {})
    assert set(logs) == {"rec_3d->3d", "rec_2d->2d", "loss_E", "loss_T", "rec_2d->3d", "loss"}
    loss.backward()
    assert m.translator.net[0].weight.grad is not None


@pytest.mark.parametrize(
    ("switches", "parts"),
    [
        ({}, {"translator", "context_discriminator"}),
        ({"disentangle": False}, set()),
    ],
)
def test_ablation_switches_shape_the_model(switches, parts):
    m = build_model(ModelConfig(**CFG, **switches))
    have = {n for n in ("translator", "context_discriminator") if getattr(m, n) is not None}
    assert have == parts and m.zh + m.zc == 30


def test_a_dcmls_model_needs_one_input_and_the_3d_vae():
    with pytest.raises(ValueError, match="encoders \\[x, 3d\\]"):
        build_model(ModelConfig(**{**CFG, "encoders": ["2d", "world", "3d"]}))


@pytest.fixture(scope="module")
def dcmls_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dcmls")
    cfg = TrainConfig(name="dcmls", steps=80, batch_size=32, lr=1e-3, eval_every=40, eval_n=200,
                      checkpoint_every=80, device="cpu", out_dir=str(out), model=CFG, data={"chunk": 512},
                      loss={"objective": "cross", "warmup_steps": 1, "recon_3d": "euclidean"})  # fmt: skip
    torch.manual_seed(0)
    return fit(cfg, progress=False), out


def test_dcmls_smoke_training_lowers_the_loss_and_the_error(dcmls_run):
    _, out = dcmls_run
    hist = json.loads((out / "dcmls" / "history.json").read_text())
    assert hist[-1]["loss"] < hist[0]["loss"] and hist[-1]["val_epe_mean_mm"] < hist[0]["val_epe_mean_mm"]


def test_a_dcmls_checkpoint_runs_the_same_in_onnxruntime(dcmls_run):
    from streamhand.export.onnx_export import prepare_graph
    from streamhand.infer.onnxruntime_backend import OnnxRuntimeBackend
    from streamhand.infer.torch_backend import TorchBackend

    path, _ = dcmls_run
    x = {"2d": np.random.default_rng(0).uniform(-0.5, 0.5, (3, 21, 2)).astype(np.float32)}
    got = OnnxRuntimeBackend(path, n_samples=4, prepare=prepare_graph).infer(x)
    want = TorchBackend(path, n_samples=4).infer(x)
    np.testing.assert_allclose(got.joints, want.joints, atol=1e-4)
    np.testing.assert_allclose(got.joint_std, want.joint_std, atol=1e-4)
    assert (got.joint_std > 0).all()


@pytest.mark.slow
def test_a_dcmls_model_runs_on_the_demo(dcmls_run, tmp_path):
    from tests.conftest import free_port
    from tests.helpers import invoke

    path, _ = dcmls_run
    rep = tmp_path / "r.json"
    r = invoke("run", "--source", "demo", "--model", str(path), "--frames", "15", "--no-realtime", "--port",
               str(free_port()), "--control-port", str(free_port()), "--report", str(rep))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(rep.read_text())
    assert report["modalities"] == ["2d"] and report["frames_processed"] == 15 and np.isfinite(report["epe_mean_mm"])
