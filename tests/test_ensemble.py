"""Ensembles of image experts: the pooled Gaussian, `python -m train ensemble` (and its refusals), the pooled model
through ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamhand.checkpoint import load_checkpoint, save_checkpoint
from streamhand.export import export_onnx
from streamhand.export.graph import INPUT_NAMES
from streamhand.infer.torch_backend import TorchBackend
from streamhand.models import HandPoseModel, ModelConfig
from streamhand.models.encoders import EnsembleEncoder
from tests.helpers import train_cli

_CFG = {"z_dim": 8, "hidden": 32, "encoders": ["2d", "world", "rgb", "3d"], "decoders": ["3d"], "image_size": 32,
        "image_encoder": "compact", "crop_view": "turned"}  # fmt: skip


class _Fixed(torch.nn.Module):
    def __init__(self, mu: list[float], logvar: list[float]):
        super().__init__()
        self.mu, self.logvar = torch.tensor([mu]), torch.tensor([logvar])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu.expand(x.shape[0], -1), self.logvar.expand(x.shape[0], -1)


def test_the_pooled_expert_is_the_mixtures_mean_and_variance():
    # members N(0, 1) and N(2, 3) in one dimension, N(1, e^-2) twice in another: the mixture's mean 1 and
    # variance (1 + 3) / 2 + 1 = 3; agreeing members keep their own Gaussian
    enc = EnsembleEncoder([_Fixed([0.0, 1.0], [0.0, -2.0]), _Fixed([2.0, 1.0], [float(np.log(3.0)), -2.0])])
    mu, logvar = enc(torch.zeros(2, 5))
    np.testing.assert_allclose(mu.numpy(), [[1.0, 1.0]] * 2, atol=1e-6)
    np.testing.assert_allclose(logvar.exp().numpy(), [[3.0, np.exp(-2.0)]] * 2, rtol=1e-5)
    with pytest.raises(ValueError, match="at least two"):
        EnsembleEncoder([_Fixed([0.0], [0.0])])


def test_an_ensemble_is_for_the_product_of_experts_architecture():
    with pytest.raises(ValueError, match="poe"):
        ModelConfig(**_CFG, image_ensemble=2, architecture="dcmls")
    assert isinstance(HandPoseModel(ModelConfig(**_CFG, image_ensemble=3)).encoders["rgb"], EnsembleEncoder)


def _run(path, seed: int, shared: HandPoseModel, step: int = 100) -> str:
    """A run of one recipe with another seed: the shared keypoint experts and decoder, its own RGB encoder."""
    torch.manual_seed(seed)
    model = HandPoseModel(ModelConfig(**_CFG))
    state = {k: v for k, v in shared.state_dict().items() if not k.startswith("encoders.rgb.")}
    model.load_state_dict({**model.state_dict(), **state})
    save_checkpoint(path, model.eval(), train_config={"name": "rgb", "seed": seed}, step=step,
                    std_calibration={"2d": {"a": [1.0]}})  # fmt: skip
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    shared = HandPoseModel(ModelConfig(**_CFG))
    return [_run(d / f"s{s}.pt", s, shared) for s in (11, 12, 13)]


def _inputs(b: int = 4) -> dict[str, np.ndarray]:
    g = np.random.default_rng(3)
    return {"2d": g.normal(0, 0.3, (b, 21, 2)).astype(np.float32), "world": g.normal(0, 0.3, (b, 21, 3)).astype(
        np.float32), "rgb": (g.random((b, 3, 32, 32)) - 0.5).astype(np.float32)}  # fmt: skip


def test_train_ensemble_pools_the_runs_image_experts_and_keeps_the_shared_parts(runs, tmp_path):
    out = tmp_path / "ens.pt"
    r = train_cli("ensemble", *runs, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "seed 11" in r.stdout and "seed 13" in r.stdout
    ens = load_checkpoint(out)
    assert ens.model.cfg.image_ensemble == 3
    assert [m["seed"] for m in ens.meta["ensemble"]["members"]] == [11, 12, 13]
    assert "std_calibration" not in ens.meta and "error_model" not in ens.meta  # refitted for the pooled expert
    members = [load_checkpoint(p).model for p in runs]
    x = {m: torch.from_numpy(v) for m, v in _inputs().items()}
    with torch.no_grad():
        each = [m.encoders["rgb"](x["rgb"]) for m in members]
        mu, _ = ens.model.encoders["rgb"](x["rgb"])
        torch.testing.assert_close(mu, torch.stack([e[0] for e in each]).mean(0))
        for k in ("2d", "world"):  # the shared experts are the members' own
            torch.testing.assert_close(ens.model.encoders[k](x[k]), members[0].encoders[k](x[k]))
        rgb_alone = ens.model({"rgb": x["rgb"]}).joints
        assert not torch.allclose(rgb_alone, members[0]({"rgb": x["rgb"]}).joints)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("one", "at least two checkpoints"),
        ("same", "the same weights"),
        ("other_keypoints", "same keypoint experts"),
        ("other_model", "its model differs"),
        ("missing", "not found"),
        ("no_image", "no image encoder"),
        ("packaged_copy", "trained with seed 11, as"),
    ],
)
def test_train_ensemble_refuses_what_it_cannot_pool(runs, tmp_path, case, message):
    if case == "one":
        args = [runs[0]]
    elif case == "same":
        args = [runs[0], runs[0]]
    elif case == "other_keypoints":  # another recipe's run: its keypoint experts are not the same
        args = [runs[0], _run(tmp_path / "x.pt", 12, HandPoseModel(ModelConfig(**_CFG)))]
    elif case == "other_model":
        other = HandPoseModel(ModelConfig(**{**_CFG, "image_size": 64}))
        args = [runs[0], str(save_checkpoint(tmp_path / "x.pt", other))]
    elif case == "missing":
        args = [runs[0], str(tmp_path / "nothere.pt")]
    elif case == "packaged_copy":  # the run and its shipped form (float16 weights: another id, the same run)
        assert train_cli("card", "--checkpoint", runs[0], "--out", str(tmp_path / "c.pt"), "--half").returncode == 0
        args = [runs[0], str(tmp_path / "c.pt")]
    else:
        plain = {**_CFG, "encoders": ["2d", "3d"]}
        args = [str(save_checkpoint(tmp_path / f"k{i}.pt", HandPoseModel(ModelConfig(**plain)))) for i in range(2)]
    out = tmp_path / "ens.pt"
    r = train_cli("ensemble", *args, "--out", str(out))
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_the_pooled_model_runs_in_onnx_runtime_as_in_pytorch(runs, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "ens.pt"
    assert train_cli("ensemble", *runs[:2], "--out", str(out)).returncode == 0
    ck = load_checkpoint(out)
    mods = ("2d", "world", "rgb")
    art = export_onnx(ck, mods, tmp_path / "m.onnx", n_samples=4)
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    x = _inputs(3)
    got = sess.run(None, {INPUT_NAMES[m]: x[m] for m in mods})
    want = TorchBackend(ck, n_samples=4).infer(x)
    for g, w in zip(got, (want.joints, want.joint_std, want.disagreement)):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


def test_fit_takes_another_seed_from_the_command_line(monkeypatch, tmp_path):
    from pathlib import Path

    seen = {}

    def fake_fit(cfg, resume=None, progress=True, **_options):
        seen["cfg"] = cfg
        return tmp_path / "last.pt"

    monkeypatch.setattr("train.fit.fit", fake_fit)
    smoke = Path(__file__).resolve().parents[1] / "configs" / "train" / "smoke.yaml"
    r = train_cli("fit", "--config", str(smoke), "--seed", "13", "--out-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert seen["cfg"].seed == 13 and seen["cfg"].out_dir == str(tmp_path)


def test_an_ensembles_card_names_its_members_and_how_to_remake_it(runs, tmp_path):
    import json

    from train.model_card import package

    out = tmp_path / "ens.pt"
    assert train_cli("ensemble", *runs[:2], "--out", str(out)).returncode == 0
    pt, card_path = package(out, tmp_path / "shipped.pt", {}, "two seeds", half=True)
    card = json.loads(card_path.read_text())
    assert [m["seed"] for m in card["ensemble"]["members"]] == [11, 12]
    assert card["reproduce"][:3] == [
        "python -m train fit --config configs/train/rgb.yaml --seed 11 --out-dir runs/rgb_s11",
        "python -m train fit --config configs/train/rgb.yaml --seed 12 --out-dir runs/rgb_s12",
        "python -m train ensemble runs/rgb_s11/rgb/last.pt runs/rgb_s12/rgb/last.pt --out runs/rgb/ensemble.pt",
    ]
    assert load_checkpoint(pt).model.cfg.image_ensemble == 2
