"""Training: the smoke recipe learns (loss falls, EPE beats the untrained model), resume is exact,
configs fail with one clear line, eval writes its JSON; the shipped model and its card are consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from streamhand.checkpoint import DEFAULT_WEIGHTS, CheckpointError, load_checkpoint
from streamhand.configio import ConfigError, load_yaml
from streamhand.models import HandPoseModel
from tests.helpers import ROOT, train_cli
from train.config import TrainConfig
from train.evaluate import evaluate_synthetic
from train.fit import fit
from train.losses import reconstruction

SMOKE = ROOT / "configs" / "train" / "smoke.yaml"
#: what a card says beside a fit whose options the checkpoint did not record
UNRECORDED = "  # options not recorded (the defaults shown may not be what was run)"


@pytest.mark.slow
def test_smoke_training_learns(tmp_path):
    cfg = load_yaml(TrainConfig, SMOKE, {"out_dir": str(tmp_path), "eval_every": 100})
    torch.manual_seed(cfg.seed)
    untrained = evaluate_synthetic(HandPoseModel(cfg.model), n=300, seed=99)
    path = fit(cfg, progress=False)
    hist = json.loads((tmp_path / "smoke" / "history.json").read_text())
    ck = load_checkpoint(path)
    trained = evaluate_synthetic(ck.model, n=300, seed=99)
    assert trained.epe_mean_mm < 0.8 * untrained.epe_mean_mm
    assert len(hist) == 3 and hist[-1]["loss"] < 0.8 * hist[0]["loss"]  # the (smoothed) loss falls
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == cfg.steps and "optimizer" in raw and raw["train_config"]["seed"] == cfg.seed


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("squared", 25.0 + 4.0), ("euclidean", 5.0 + 2.0)],  # joint errors (3, 4, 0) and (0, 0, 2)
)
def test_reconstruction_terms(kind, expected):
    target = torch.zeros(2, 2, 3)
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]] * 2)
    assert float(reconstruction(pred, target, kind)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_bf16_training_keeps_float32_weights(tmp_path, monkeypatch):
    monkeypatch.setattr("streamhand.cpu.bf16_at_speed", lambda *a: True)  # bf16 even on a CPU where it is slow
    over = {"out_dir": str(tmp_path), "steps": 60, "eval_every": 60, "precision": "bf16"}
    path = fit(load_yaml(TrainConfig, SMOKE, over), progress=False)
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float32 for v in raw["state_dict"].values() if v.is_floating_point())
    hist = raw["history"]
    assert torch.isfinite(torch.tensor(hist[-1]["loss"])) and hist[-1]["val_epe_mean_mm"] < 200


@pytest.mark.parametrize(
    ("precision", "device", "flags", "trained_in", "warned"),
    [
        ("bf16", "cpu", "avx2 fma", "fp32", True),  # AVX2 alone: bf16 about 30 times slower than fp32 there
        ("bf16", "cpu", "avx2 fma avx512f", "bf16", False),
        ("bf16", "cpu", None, "fp32", True),  # the system does not say (Windows, macOS): fp32, which is never slow
        ("bf16", "cuda", "avx2 fma", "bf16", False),  # a GPU's bf16 does not depend on the CPU
        ("fp32", "cpu", "avx2 fma avx512f", "fp32", False),
    ],
)
def test_bf16_recipe_trains_in_fp32_where_the_cpu_is_slow_at_it(tmp_path, caplog, precision, device, flags,
                                                                  trained_in, warned):  # fmt: skip
    from train.fit import precision_here

    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"model name\t: a CPU\nflags\t\t: {flags}\n")
    cfg = load_yaml(TrainConfig, SMOKE, {"precision": precision})
    with caplog.at_level("WARNING", logger="train.fit"):
        got = precision_here(cfg, torch.device(device), cpuinfo)
    assert got.precision == trained_in
    assert got.model_dump(exclude={"precision"}) == cfg.model_dump(exclude={"precision"})  # nothing else changed
    assert ("training in fp32" in caplog.text) is warned


def test_a_training_run_logged_to_a_file_says_how_far_it_is(tmp_path, caplog):
    over = {"steps": 50, "eval_every": 1000, "out_dir": str(tmp_path), "data": {"chunk": 256, "pool_samples": 640}}
    with caplog.at_level("INFO"):
        fit(load_yaml(TrainConfig, SMOKE, over), progress=True)  # pytest captures the output: not a terminal
    assert "pool of smoke: sample 640/640, about 0 s left" in caplog.text  # the replayed pool, made first
    assert "train smoke: step 50/50, loss " in caplog.text and " samples/s, val EPE " in caplog.text
    assert "mm, about 0 s left" in caplog.text


@pytest.mark.parametrize("data", [{"chunk": 4096}, {"chunk": 256, "pool_samples": 640}])  # new data; a replayed pool
def test_resume_is_exact(tmp_path, data):
    base = {"steps": 40, "eval_every": 1000, "checkpoint_every": 20, "out_dir": str(tmp_path), "data": data}
    a = fit(load_yaml(TrainConfig, SMOKE, {**base, "name": "a"}), progress=False)
    fit(load_yaml(TrainConfig, SMOKE, {**base, "name": "b", "steps": 20}), progress=False)
    b = fit(load_yaml(TrainConfig, SMOKE, {**base, "name": "b"}), resume=tmp_path / "b" / "last.pt", progress=False)
    sa, sb = torch.load(a, weights_only=True)["state_dict"], torch.load(b, weights_only=True)["state_dict"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], msg=k)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stepz: 10\n", "did you mean 'steps'"),
        ("model:\n  z_dimm: 8\n", "did you mean 'z_dim'"),
        ("lr: -1\n", "lr: Input should be greater than 0"),
        ("precision: fp8\n", "precision"),
        ("loss:\n  recon_3d: l1\n", "loss.recon_3d"),
        ("loss:\n  objective: magic\n", "loss.objective"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
        ("loss:\n  weight_3d: .nan\n", "loss.weight_3d: Input should be a finite number"),
        ("weight_decay: .inf\n", "weight_decay: Input should be a finite number"),
        ("loss:\n  weight_2d: -5\n", "loss.weight_2d: Input should be greater than or equal to 0"),
        ("data:\n  depth_range: [-1, 0]\n", "data.depth_range.0: Input should be greater than 0.05"),
        ("data:\n  depth_range: [0.9, 0.25]\n", "c.yaml: data.depth_range .0.9, 0.25.: the first is the least,"),
        ("data:\n  width: 0\n", "data.width: Input should be greater than or equal to 64"),
        ("name: ../../escape\n", "name: String should match pattern"),
        ("name: ''\n", "name: String should match pattern"),
        ("model:\n  z_dim: 8\n  hidden: .nan\n", "model.hidden"),
        ("steps: true\n", "steps: true is an on/off value, which steps is not"),
        ("data:\n  mediapipe_augment: false\n", None),  # a switch takes one
    ],
)
def test_config_errors(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    if message is None:
        load_yaml(TrainConfig, p)
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as e:
        load_yaml(TrainConfig, p)
    assert "\n" not in str(e.value)


def test_eval_cli_writes_json(tmp_path, tiny_checkpoint):
    out = tmp_path / "out.json"
    r = train_cli("eval", "--checkpoint", str(tiny_checkpoint), "--n", "200", "--json", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    for k in ("epe_mean_mm", "epe_median_mm", "auc_20_50", "n"):
        assert k in res
    assert res["n"] == 200 and res["noise_px"] == 2.0 and res["seed"] == 1234


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--checkpoint", "missing.pt"], "checkpoint not found"),
        (["eval", "--checkpoint", "configs"], "configs: a folder; give the checkpoint file in it"),
        (["eval", "--checkpoint", "pyproject.toml"], "pyproject.toml: not a checkpoint (a checkpoint is the zip"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "coco"], "choose synthetic"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "rhd"], "needs --root"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "rhd", "--root", "nowhere"], "--root: nowhere is not a folder"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "rhd", "--root", "configs"], "RHD annotations not found"),
        (["fit", "--config", "missing.yaml"], "config file not found"),
        (["fit", "--config", "{ckpt}"], "not a UTF-8 text file"),
        (["fit", "--config", "configs/train/smoke.yaml", "--resume", "nope.pt"], "checkpoint not found"),
        (["card", "--checkpoint", "{ckpt}", "--out", "never.pt", "--metrics", "pyproject.toml"],
         "--metrics pyproject.toml: not a readable JSON file (JSONDecodeError)"),
        (["card", "--checkpoint", "{ckpt}", "--out", "never.json"], "--out never.json: the shipped weights are a .pt"),
        (["calibrate-std", "--checkpoint", "default"], "a shipped model's files belong to the package; copy it"),
        (["fit-error-model", "--checkpoint", "rgb"], "a shipped model's files belong to the package; copy it"),
        (["fit-error-model", "--checkpoint", "nope.pt"], "checkpoint not found (this command rewrites a checkpoint"),
        (["latent-walk", "--checkpoint", "{ckpt}", "--out", "walk.txt"], "--out walk.txt: the figure is a PNG"),
        (["latent-walk", "--checkpoint", "{ckpt}", "--out", "{tmp}"],
         "is a folder; give a file name, e.g. {tmp}/figure.png"),
        (["embed", "--checkpoint", "{ckpt}", "--out", "embedding"], "--out embedding: the figure is a PNG"),
        (["eval", "--checkpoint", "{ckpt}", "--pck-png", "pck.svg"], "--pck-png pck.svg: the figure is a PNG"),
        (["embed", "--checkpoint", "{ckpt}", "--seed", "-5"], "--seed"),
        (["eval", "--checkpoint", "{ckpt}", "--noise-px", "nan"], "'--noise-px'"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "frames", "--root", "configs", "--n", "5"],
         "--n: --data frames evaluates every frame as it is"),
        (["compare", "--steps", "1", "--only", "S1", "--rhd-root", "configs", "--out", "{tmp}"],
         "--rhd-root configs: evaluation/anno_evaluation.pickle not found"),
        (["ensemble", "{ckpt}", "{ckpt}", "--out", "pooled.json"], "--out pooled.json: the pooled model is a"),
        (["ensemble", "{ckpt}", "default", "--out", "{ckpt}"], "one of the runs to pool; give a new file"),
        (["card", "--checkpoint", "{ckpt}", "--out", "{tmp}/c.pt", "--metrics", "{tmp}/a/m.json", "--metrics",
          "{tmp}/b/m.json"], "another file of that name (m) is given too"),
        (["card", "--checkpoint", "{ckpt}", "--out", "{tmp}/c.pt", "--metrics", "{tmp}/nan.json"],
         "NaN is not a JSON number"),
        (["tune-smoothing", "--model", "nonexist", "--frames", "10"], "ONE LINE: checkpoint not found: nonexist"),
        (["compare", "--image-size", "33", "--steps", "1", "--out", "{tmp}/c"],
         "ONE LINE: --image-size 33: the compact image"),
    ],
)
def test_train_cli_errors(tiny_checkpoint, tmp_path, args, message):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "m.json").write_text('{"epe_mm": 1.0}')
    (tmp_path / "nan.json").write_text('{"epe_mm": NaN}')
    r = train_cli(*[a.replace("{ckpt}", str(tiny_checkpoint)).replace("{tmp}", str(tmp_path)) for a in args])
    if message.startswith("ONE LINE: "):  # refused before any work: nothing else was said (rendered, trained)
        message = message.removeprefix("ONE LINE: ")
        assert r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    message = message.replace("{tmp}", str(tmp_path))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_a_flag_does_not_hide_a_bad_value_in_the_recipe(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(re.sub(r"(?m)^steps:.*$", "steps: sixty", SMOKE.read_text()))
    r = train_cli("fit", "--config", str(bad), "--steps", "5", "--out-dir", str(tmp_path))
    assert r.returncode == 2 and f"{bad}: steps: Input should be a valid integer" in r.stderr, r.stderr[-1500:]
    r = train_cli("fit", "--config", str(SMOKE), "--steps", "0", "--out-dir", str(tmp_path))
    assert r.returncode == 2 and "'--steps'" in r.stderr and str(SMOKE) not in r.stderr, r.stderr[-1500:]
    assert not list(tmp_path.glob("smoke*"))


def test_resuming_what_is_not_quite_the_run_says_so(tmp_path, caplog):
    """A run of another recipe of the same model is resumed, with a warning saying what will differ (a packaged
    model, without a run's optimizer and random state, is refused: tests/test_fit_runs.py)."""
    from train.fit import _resume_state

    smoke = load_yaml(TrainConfig, SMOKE)
    then = {**smoke.model_dump(mode="json"), "lr": 1.0, "seed": 99, "steps": 5, "out_dir": "elsewhere"}
    p = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "step": 1, "train_config": then, "optimizer": {}, "torch_rng": torch.get_rng_state()},
               p)  # fmt: skip
    with caplog.at_level("WARNING", logger="train.fit"):
        _resume_state(p, smoke)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said
    assert said[0].endswith("differs from this one in lr, seed: it continues under this one"), said


def test_fit_keeps_a_kept_run_unless_told_to_start_it_again(tmp_path):
    args = ["fit", "--config", str(SMOKE), "--steps", "1", "--out-dir", str(tmp_path), "--no-progress"]
    assert train_cli(*args).returncode == 0
    kept = tmp_path / "smoke" / "last.pt"
    before = kept.read_bytes()
    r = train_cli(*args)
    assert r.returncode == 2 and "a run of this name is kept there; --resume" in r.stderr, r.stderr[-1500:]
    assert r.stderr.strip().count("\n") == 0 and kept.read_bytes() == before
    other = tmp_path / "other.pt"
    other.write_bytes(before)
    r = train_cli(*args[:3], "--steps", "2", *args[5:], "--resume", str(other))  # another file: not this run
    assert r.returncode == 2 and "a run of this name is kept there" in r.stderr and kept.read_bytes() == before
    r = train_cli(*args[:3], "--steps", "2", *args[5:], "--resume", str(kept))  # this run: continued
    assert r.returncode == 0, r.stderr[-1500:]
    r = train_cli(*args, "--overwrite")
    assert r.returncode == 0, r.stderr[-1500:]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("jpg", "not a readable training checkpoint (UnpicklingError)"),
        ("weights", "not a training checkpoint (no state_dict and step)"),
        ("other_model", "its model differs from the recipe's (z_dim: 999 there, "),
        ("finished", "that run already finished its 100000 steps, past the 300 steps asked (the recipe)"),
        ("empty_recipe", "an empty recipe"),
    ],
)
def test_fit_refuses_what_it_cannot_resume_in_one_line(tmp_path, tiny_checkpoint, make, message):
    """Before any training: a picture, a model's weights without training state, a run of another model, a run
    already at its last step, an empty recipe."""
    smoke = load_yaml(TrainConfig, SMOKE)
    model = smoke.model.model_dump(mode="json")
    p = tmp_path / "last.pt"
    if make == "jpg":
        p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    elif make == "weights":
        p = tiny_checkpoint
    else:
        saved = {**model, "z_dim": 999} if make == "other_model" else model
        step = 100_000 if make == "finished" else 1
        torch.save({"state_dict": {}, "step": step, "train_config": {"model": saved, "steps": step}, "optimizer": {},
                    "torch_rng": torch.get_rng_state()}, p)  # a run's last.pt  # fmt: skip
    args = ["fit", "--config", str(SMOKE), "--resume", str(p), "--out-dir", str(tmp_path)]
    if make == "empty_recipe":
        (tmp_path / "empty.yaml").write_text("# nothing yet\n")
        args = ["fit", "--config", str(tmp_path / "empty.yaml"), "--out-dir", str(tmp_path)]
    r = train_cli(*args)
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr[-800:]
    assert not (tmp_path / "smoke" / "last.pt").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("view", None), ("view", "image"), ("handedness", "none"), ("norm_2d", "pixels")],  # None: a pre-view model
)
def test_checkpoint_from_other_conventions_is_refused(tmp_path, tiny_checkpoint, key, value):
    raw = torch.load(tiny_checkpoint, weights_only=True)
    if value is None:
        del raw["skeleton"][key]
    else:
        raw["skeleton"][key] = value
    p = tmp_path / "old.pt"
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match="skeleton conventions") as e:
        load_checkpoint(p)
    assert "\n" not in str(e.value)
    r = train_cli("eval", "--checkpoint", str(p), "--n", "10")
    assert r.returncode == 2 and "skeleton conventions" in r.stderr and "Traceback" not in r.stderr


def test_checkpoint_rejects_foreign_files(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"hello": torch.zeros(1)}, p)
    with pytest.raises(CheckpointError, match="not a streamhand checkpoint"):
        load_checkpoint(p)


def test_shipped_model_and_card():
    assert DEFAULT_WEIGHTS.is_file(), "streamhand/weights/default.pt is missing"
    assert DEFAULT_WEIGHTS.stat().st_size < 20 * 1024 * 1024
    ck = load_checkpoint()
    card = json.loads(Path(DEFAULT_WEIGHTS).with_suffix(".json").read_text())
    assert card["model_id"] == ck.model_id
    assert card["model_config"] == ck.meta["model_config"]
    assert card["seed"] == ck.meta["train_config"]["seed"]
    assert "eval_synthetic" in card["metrics"]
    assert {"2d", "3d"} <= set(ck.model.modalities)
    fused = [m for m in ck.model.modalities if m != "3d"]
    assert set(ck.meta["std_calibration"]) == {"2d", "world", "2d+world"} == {"2d", *fused[1:], "+".join(fused)}


def test_packaging_keeps_the_calibration(tmp_path, tiny_checkpoint):
    """``train card`` writes the weights with the joint_std calibration the checkpoint carries."""
    from streamhand.checkpoint import save_checkpoint
    from train.model_card import package

    ck = load_checkpoint(tiny_checkpoint)
    cal = {"2d": {"a": [1.0] * 21, "b": [0.01] * 21}}
    src = save_checkpoint(tmp_path / "trained.pt", ck.model, std_calibration=cal, step=3)
    pt, _ = package(src, tmp_path / "shipped.pt", {"eval_synthetic": {}}, "tiny")
    assert load_checkpoint(pt).meta["std_calibration"] == cal


def test_packaging_in_half_precision_halves_the_file_and_loads_as_float32(tmp_path):
    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig
    from train.model_card import package

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(hidden=256, encoders=["2d", "3d"], decoders=["3d"]))
    src = save_checkpoint(tmp_path / "trained.pt", model, train_config={"name": "depth", "seed": 1, "data": {}})
    full, _ = package(src, tmp_path / "full.pt", {}, "x")
    half, card_path = package(src, tmp_path / "half.pt", {}, "x", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    ck = load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in ck.model.parameters())
    x = {"2d": torch.randn(4, 21, 2)}
    want = load_checkpoint(full).model(x).joints
    np.testing.assert_allclose(ck.model(x).joints.detach(), want.detach(), atol=2e-2 * float(want.detach().abs().max()))
    card = json.loads(card_path.read_text())
    assert card["weights"] == "float16"
    assert card["reproduce"][0] == "python -m train fit --config configs/train/depth.yaml --seed 1"  # its own seed


@pytest.mark.parametrize("name", sorted(p.stem for p in DEFAULT_WEIGHTS.parent.glob("*.pt")))
def test_every_shipped_model_has_its_card_and_calibration(name):
    from streamhand.checkpoint import shipped_models
    from streamhand.uncertainty import modality_key
    from train.calibrate_std import expert_sets

    pt = shipped_models()[name]
    ck = load_checkpoint(name)
    card = json.loads(pt.with_suffix(".json").read_text())
    assert card["model_id"] == ck.model_id and pt.stat().st_size < 20 * 1024 * 1024
    assert {"eval_synthetic", "synth_report"} <= set(card["metrics"])
    runtime = tuple(m for m in ck.model.modalities if m != "3d")
    assert set(ck.meta["std_calibration"]) == {modality_key(s) for s in expert_sets(runtime)}
    assert set(ck.meta["error_model"]) == {modality_key(s) for s in expert_sets(runtime)}


def test_out_dir_does_not_move_the_mediapipe_pairs_cache():
    """The labelled renders are cached where ``mediapipe-pairs`` makes them, whatever the run's --out-dir."""
    import inspect

    from train import fit as fit_module

    cfg = load_yaml(TrainConfig, ROOT / "configs" / "train" / "default.yaml", {"out_dir": "/elsewhere"})
    assert cfg.data.mediapipe_cache == "runs/cache"
    assert "mediapipe_cache" in inspect.getsource(fit_module._fit) and '"cache"' not in inspect.getsource(fit_module)


def test_a_cards_commands_remake_it_from_its_own_recipe():
    """The published recipe found by its name (finetune_frames.yaml is named `finetune`), the checkpoint where its
    out_dir keeps it, the labelled renders as its shards make them; a recipe of one's own is the card's."""
    import yaml

    from train.config import TrainConfig
    from train.model_card import reproduce

    def recipe(f: str) -> dict:
        recipe = TrainConfig.model_validate(yaml.safe_load((ROOT / f"configs/train/{f}.yaml").read_text()))
        return recipe.model_dump(mode="json")  # as a checkpoint records it

    fitted = {"std_calibration": {"2d": {}}, "error_model": {"2d": {}}}  # recorded before the options were
    assert reproduce(recipe("finetune_frames")) == ["python -m train fit --config configs/train/finetune_frames.yaml"]
    assert reproduce(recipe("finetune_frames"), meta=fitted) == [
        "python -m train fit --config configs/train/finetune_frames.yaml",
        "python -m train calibrate-std --checkpoint runs/finetune/finetune/last.pt" + UNRECORDED,
        "python -m train fit-error-model --checkpoint runs/finetune/finetune/last.pt" + UNRECORDED,
    ]
    default = recipe("default")["data"]
    made = reproduce(recipe("default"))[: default["mediapipe_shards"]]
    assert made[0].startswith(f"python -m train mediapipe-pairs --n {default['mediapipe_pairs'] // 2} --seed 4242")
    assert made[1].startswith("python -m train mediapipe-pairs --n 5000 --seed 4243")
    ran = {**fitted, "std_calibration_options": {"n": 20, "seed": 7, "world": "mediapipe"}}
    elsewhere = reproduce({**recipe("default"), "out_dir": "exp", "steps": 7, "device": "cuda"}, meta=ran)  # flags
    assert elsewhere[2:4] == ["python -m train fit --config configs/train/default.yaml --steps 7 --out-dir exp",
                              "python -m train calibrate-std --checkpoint exp/default/last.pt --n 20 --seed 7 "
                              "--world mediapipe"]  # fmt: skip
    assert reproduce({**recipe("default"), "lr": 1.0})[0].startswith("# RECIPE.yaml")  # a published recipe changed
    mine = reproduce({"name": "mine", "out_dir": "exp", "data": {"mediapipe_pairs": 300, "mediapipe_seed": 7}},
                     meta={"std_calibration": {"2d": {}}, "std_calibration_options": {"n": 30}})  # fmt: skip
    assert mine == ["# RECIPE.yaml: this card's train_config, written out as YAML",
                    "python -m train mediapipe-pairs --n 300 --seed 7", "python -m train fit --config RECIPE.yaml",
                    "python -m train calibrate-std --checkpoint exp/mine/last.pt --n 30"]  # fmt: skip


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_during_fit_says_what_is_kept(tmp_path, sig):
    """Ctrl-C (or a batch system's SIGTERM) mid-training: 130, no traceback, and one line saying the step reached
    and the checkpoint kept, with the command that continues it."""
    import signal
    import subprocess
    import sys
    import time

    recipe = tmp_path / "long.yaml"
    text = re.sub(r"(?m)^steps:.*$", "steps: 100000", SMOKE.read_text())
    recipe.write_text(re.sub(r"(?m)^checkpoint_every:.*$", "checkpoint_every: 10", text))
    cmd = [sys.executable, "-m", "train", "fit", "--config", str(recipe), "--out-dir", str(tmp_path), "--no-progress"]
    # as from a terminal: Ctrl-C's signal handled (a test runner's worker may ignore it, and a child inherits that)
    p = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    kept = tmp_path / "smoke" / "last.pt"
    t0 = time.monotonic()
    while not kept.exists() and time.monotonic() - t0 < 120 and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(getattr(signal, sig))
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    said = [line for line in err.splitlines() if "interrupted at step" in line]
    assert len(said) == 1 and f"is kept: --resume {kept} continues" in said[0], err[-2000:]


@pytest.mark.parametrize("damage", [b"PK\x03\x04 cut short", b"not an archive at all"])
def test_an_unreadable_labelled_cache_is_made_again(tmp_path, monkeypatch, caplog, damage):
    """A cache of MediaPipe-labelled renders cut short (or not this program's) is labelled again, with a warning,
    instead of failing every command that reads it."""
    import numpy as np

    import train.datasets.mediapipe_pairs as mp_pairs

    made = {"joints": np.zeros((2, 21, 3), np.float32)}
    monkeypatch.setattr(mp_pairs, "generate", lambda n, seed: made)
    path = mp_pairs.cache_path(tmp_path, 2, 7)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    caplog.set_level("WARNING")
    got = mp_pairs.load_or_generate(tmp_path, 2, 7)
    assert set(got) == {"joints"} and "unreadable" in caplog.text and "labelling the hands again" in caplog.text
    assert mp_pairs.load_or_generate(tmp_path, 2, 7)["joints"].shape == (2, 21, 3)  # the cache is sound again
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_shipped_model_is_packaged_by_its_name(tmp_path):
    r = train_cli("card", "--checkpoint", "default", "--out", str(tmp_path / "d.pt"), "--half")
    assert r.returncode == 0, r.stderr[-1500:]
    assert (tmp_path / "d.pt").is_file() and json.loads((tmp_path / "d.json").read_text())


def test_compare_trains_each_model_afresh_over_a_kept_one(tmp_path, monkeypatch):
    """``compare --overwrite`` trained over kept models without telling the fit, so a stop before the new
    checkpoint left the old model's files (a new last.pt beside an old history.json): each fit discards them."""
    import train.compare as cmp
    import train.fit as fit_module

    asked = []

    def stopped(cfg, **options):
        asked.append(options.get("overwrite"))
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "fit", stopped)
    with pytest.raises(cmp.Interrupted):
        cmp.compare(1, tmp_path, ["S1"])
    assert asked == [True]


def test_ctrl_c_during_compare_keeps_the_finished_models_rows(tmp_path, monkeypatch):
    """The models measured before Ctrl-C are printed and written; the run says which one was stopped (exit 130)."""
    import train.compare as cmp
    import train.fit as fit_module

    def stopped(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "fit", stopped)
    with pytest.raises(cmp.Interrupted) as e:
        cmp.compare(1, tmp_path, ["S1"])
    assert (e.value.rows, e.value.at) == ([], "S1")
    done = cmp.Row("S1", str(tmp_path / "s1" / "last.pt"), {"epe_mean_mm": 30.0, "auc_20_50": 0.5},
                   paper=cmp.SEED_MODELS["S1"][2])  # fmt: skip

    def after_one(*_a, **_k):
        raise cmp.Interrupted([done], "S2")

    monkeypatch.setattr(cmp, "compare", after_one)
    out = tmp_path / "c.json"
    r = train_cli("compare", "--steps", "1", "--only", "S1,S2", "--out", str(tmp_path / "o"), "--json", str(out))
    assert r.returncode == 130, r.stderr
    assert "S1" in r.stdout and "stopped: S2 was interrupted" in r.stderr
    assert [row["name"] for row in json.loads(out.read_text())] == ["S1"]


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_good_checkpoint(tmp_path):
    """A learning rate that blows the loss up: the run stops at the first step whose loss is not a number (exit 1,
    one line naming the step and what is kept), instead of training NaN weights to the end and exiting 0."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(SMOKE.read_text().replace("lr: 1.0e-3", "lr: 1.0e+30").replace("steps: 300", "steps: 200")
                      .replace("checkpoint_every: 300", "checkpoint_every: 1"))  # fmt: skip
    r = train_cli("fit", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"), "--no-progress")
    assert r.returncode == 1, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the loss became nan at step ") and "Traceback" not in r.stderr, last
    step = int(last.split("at step ")[1].split()[0])
    assert f"the last checkpoint, of step {step - 1}, is kept" in last or step == 1
    if step > 1:
        kept = torch.load(tmp_path / "runs" / "smoke" / "last.pt", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in kept.values() if v.is_floating_point())
