"""A training run's files and messages: what `card` says was run after training, `--overwrite` discarding the old
run, `--resume` refusing a packaged model and saying truly why a run is past its steps, no empty folder left by a
failed or stopped run, a resumed run's history as a straight run's, `card --metrics` taking JSON objects only."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from streamhand.checkpoint import DEFAULT_WEIGHTS
from streamhand.configio import load_yaml
from tests.helpers import ROOT, train_cli
from train.config import TrainConfig
from train.fit import fit

SMOKE = ROOT / "configs" / "train" / "smoke.yaml"


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory) -> Path:
    """A run's last.pt of the smoke recipe (2 steps), made by `python -m train fit`."""
    out = tmp_path_factory.mktemp("run")
    r = train_cli("fit", "--config", str(SMOKE), "--steps", "2", "--out-dir", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-1500:]
    return out / "smoke" / "last.pt"


def _copy(src: Path, dst: Path) -> Path:
    """``src`` copied to ``dst`` (its folder made)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


def _card_steps(checkpoint: Path, out: Path) -> list[str]:
    """The `reproduce` steps of the card `train card` writes for ``checkpoint``."""
    r = train_cli("card", "--checkpoint", str(checkpoint), "--out", str(out))
    assert r.returncode == 0, r.stderr[-1500:]
    return json.loads(out.with_suffix(".json").read_text())["reproduce"]


def test_card_lists_the_fits_the_checkpoint_holds_with_the_options_they_ran_with(run_checkpoint, tmp_path,
                                                                                 monkeypatch):  # fmt: skip
    """`calibrate-std` and `fit-error-model` record their options in the checkpoint and the card's steps repeat
    them; a fit the checkpoint does not hold is not listed; one stored before the record says so."""
    import train.calibrate_std as calibrate_std
    import train.datasets.mediapipe_pairs as mp_pairs
    import train.error_model as error_model

    # MediaPipe's labelling and the fits themselves are not what is tested: stand-ins, the commands as they are
    monkeypatch.setattr(mp_pairs, "load_or_generate", lambda cache, n, seed: {"left": np.zeros(n, bool)})
    monkeypatch.setattr(calibrate_std, "calibrate", lambda ck, pairs: {"2d": {"a": [1.0] * 21, "b": [0.1] * 21}})
    monkeypatch.setattr(error_model, "fit_error_models", lambda *a: ({"2d": {"stand": "in"}}, {}))
    ck = _copy(run_checkpoint, tmp_path / "runs" / "smoke" / "last.pt")
    last = re.escape(f"{run_checkpoint.parents[1]}/smoke/last.pt")  # where the recipe's out_dir keeps it

    steps = _card_steps(ck, tmp_path / "bare.pt")
    assert not [s for s in steps if "calibrate-std" in s or "fit-error-model" in s], steps  # it holds neither

    cache = tmp_path / "mpcache"
    r = train_cli("calibrate-std", "--checkpoint", str(ck), "--n", "20", "--seed", "777", "--world", "mediapipe",
                  "--cache", str(cache))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    steps = _card_steps(ck, tmp_path / "calibrated.pt")
    # the options that make the model, not where this machine cached its labels (no path of it in a card)
    assert re.fullmatch(f"python -m train calibrate-std --checkpoint {last} --n 20 --seed 777 --world mediapipe",
                        steps[-1]), steps  # fmt: skip
    assert not [s for s in steps if "fit-error-model" in s], steps

    r = train_cli("fit-error-model", "--checkpoint", str(ck), "--n", "40", "--seed", "5", "--shards", "1",
                  "--held-n", "20", "--held-seed", "3", "--world", "mediapipe", "--keep-misnamed", "--cache",
                  str(cache))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    steps = _card_steps(ck, tmp_path / "fitted.pt")
    assert "calibrate-std" in steps[-2] and "--seed 777" in steps[-2], steps
    assert re.fullmatch(f"python -m train fit-error-model --checkpoint {last} --n 40 --seed 5 --shards 1 --held-n 20 "
                        "--held-seed 3 --world mediapipe --keep-misnamed", steps[-1]), steps  # fmt: skip

    raw = torch.load(ck, weights_only=True)  # as a checkpoint calibrated before the options were recorded
    del raw["std_calibration_options"], raw["error_model_options"]
    torch.save(raw, ck)
    steps = _card_steps(ck, tmp_path / "older.pt")
    assert re.fullmatch(f"python -m train calibrate-std --checkpoint {last}  # options not recorded "
                        r"\(the defaults shown may not be what was run\)", steps[-2]), steps  # fmt: skip
    assert "fit-error-model" in steps[-1] and "options not recorded" in steps[-1], steps


def _stop_at_the_first_batch(*_a: object, **_k: object):
    """A stand-in for the training batches: Ctrl-C as the first one is made."""
    raise KeyboardInterrupt
    yield  # a generator, as the batches are


def test_overwrite_discards_the_old_run_as_the_new_one_starts(run_checkpoint, tmp_path, monkeypatch):
    """Started again with --overwrite and stopped before its first checkpoint: none of the old run is left to be
    taken for this one's (no last.pt to --resume, no history.json); other files in the folder are kept."""
    folder = tmp_path / "smoke"
    _copy(run_checkpoint, folder / "last.pt")
    (folder / "history.json").write_text("[]")
    (folder / "notes.txt").write_text("mine")
    monkeypatch.setattr("train.fit.batches", _stop_at_the_first_batch)
    r = train_cli("fit", "--config", str(SMOKE), "--steps", "2", "--out-dir", str(tmp_path), "--no-progress",
                  "--overwrite")  # fmt: skip
    assert r.returncode == 130, (r.returncode, r.stderr[-1500:])
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_overwrite_refuses_to_continue_the_run_it_discards(run_checkpoint, tmp_path):
    kept = _copy(run_checkpoint, tmp_path / "smoke" / "last.pt")
    before = kept.read_bytes()
    r = train_cli("fit", "--config", str(SMOKE), "--steps", "4", "--out-dir", str(tmp_path), "--no-progress",
                  "--overwrite", "--resume", str(kept))  # fmt: skip
    assert r.returncode == 2 and "give one" in r.stderr and r.stderr.count("\n") == 1, r.stderr[-1500:]
    assert kept.read_bytes() == before


@pytest.mark.parametrize("which", ["packaged", "shipped"])
def test_resume_refuses_a_packaged_model_and_says_how_to_start_from_it(run_checkpoint, tmp_path, which):
    """A model made by `train card` (or a shipped one) has weights but no run's training state: refused in one
    line that names the recipe's init_from."""
    recipe = SMOKE
    if which == "packaged":
        p = tmp_path / "packaged.pt"
        assert train_cli("card", "--checkpoint", str(run_checkpoint), "--out", str(p)).returncode == 0
        hint = f"init_from: {p}"
    else:  # the shipped model's own recipe
        p, hint, recipe = DEFAULT_WEIGHTS, "init_from: default", ROOT / "configs" / "train" / "default.yaml"
    r = train_cli("fit", "--config", str(recipe), "--steps", "3", "--out-dir", str(tmp_path / "runs"),
                  "--resume", str(p), "--no-progress")  # fmt: skip
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    assert r.stderr.count("\n") == 1 and "a packaged model" in r.stderr and hint in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("saved_step", "run_steps", "flag", "message"),
    [
        (220, 5000, ["--steps", "150"], "that run is already at step 220 of its 5000, past the 150 steps asked "
                                        "(--steps)"),
        (300, 300, [], "that run already finished its 300 steps, at the 300 steps asked (the recipe)"),
        (300, 300, ["--steps", "200"], "that run already finished its 300 steps, past the 200 steps asked (--steps)"),
    ],
)
def test_resume_past_the_steps_asked_says_where_the_run_is(tmp_path, saved_step, run_steps, flag, message):
    smoke = load_yaml(TrainConfig, SMOKE).model_dump(mode="json")
    p = tmp_path / "last.pt"
    torch.save({"state_dict": {}, "step": saved_step, "train_config": {**smoke, "steps": run_steps},
                "optimizer": {}, "torch_rng": torch.get_rng_state()}, p)  # fmt: skip
    r = train_cli("fit", "--config", str(SMOKE), *flag, "--resume", str(p), "--out-dir", str(tmp_path))
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr[-1500:]


@pytest.mark.parametrize("recipe", ["rhd_rgb", "rhd_yang_s4", "rhd_dcmls", "stb"])
def test_a_recipe_whose_dataset_is_missing_names_its_key_and_makes_no_folder(tmp_path, recipe):
    text = (ROOT / "configs" / "train" / f"{recipe}.yaml").read_text()
    key = "stb_root" if recipe == "stb" else "rhd_root"
    mine = tmp_path / "r.yaml"
    mine.write_text(re.sub(rf"(?m)^  {key}:.*$", f"  {key}: {tmp_path / 'nowhere'}", text))
    r = train_cli("fit", "--config", str(mine), "--steps", "2", "--out-dir", str(tmp_path / "r"), "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-1500:]
    first = "labels/B2Counting_SK.mat" if recipe == "stb" else "training/anno_training.pickle"
    assert f"data.{key}: {tmp_path / 'nowhere' / first} not found (and " in r.stderr, r.stderr
    assert f"; set data.{key} to your copy of " in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("how", ["diverged", "stopped"])
def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_empty_folder(tmp_path, monkeypatch, how):
    """The folders the run made are removed where it left them empty; a folder that was there before stays."""
    recipe = tmp_path / "r.yaml"
    text = SMOKE.read_text()
    if how == "diverged":
        text = text.replace("lr: 1.0e-3", "lr: 1.0e+30")
    else:
        monkeypatch.setattr("train.fit.batches", _stop_at_the_first_batch)
    recipe.write_text(text)
    for out, code in ((tmp_path / "new" / "deeper", (1, 130)), (tmp_path / "there", (1, 130))):
        if out.name == "there":
            out.mkdir()
        r = train_cli("fit", "--config", str(recipe), "--steps", "20", "--out-dir", str(out), "--no-progress")
        assert r.returncode == code[how == "stopped"] and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml", "there"]
    assert not list((tmp_path / "there").iterdir())


def test_a_resumed_runs_history_is_a_straight_runs(tmp_path):
    """The smoothed loss is carried in the checkpoint: a run stopped and resumed logs what a straight run logs."""
    base = {"steps": 40, "eval_every": 10, "checkpoint_every": 20, "out_dir": str(tmp_path), "eval_n": 50}
    fit(load_yaml(TrainConfig, SMOKE, {**base, "name": "a"}), progress=False)
    fit(load_yaml(TrainConfig, SMOKE, {**base, "name": "b", "steps": 20}), progress=False)
    fit(load_yaml(TrainConfig, SMOKE, {**base, "name": "b"}), resume=tmp_path / "b" / "last.pt", progress=False)
    a, b = (json.loads((tmp_path / n / "history.json").read_text()) for n in ("a", "b"))
    keys = ("step", "loss", "val_epe_mean_mm")
    assert [[h[k] for k in keys] for h in b] == [[h[k] for k in keys] for h in a]


@pytest.mark.parametrize(("text", "holds"), [("[1, 2]", "an array"), ('"fast"', "a string"), ("3", "a number"),
                                             ("null", "null")])  # fmt: skip
def test_card_refuses_metrics_that_are_not_a_json_object(run_checkpoint, tmp_path, text, holds):
    m = tmp_path / "list.json"
    m.write_text(text)
    r = train_cli("card", "--checkpoint", str(run_checkpoint), "--out", str(tmp_path / "c.pt"), "--metrics", str(m))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-1500:]
    assert f"--metrics {m}: a card embeds a JSON object of figures" in r.stderr and f"holds {holds}" in r.stderr
    assert not (tmp_path / "c.pt").exists() and not (tmp_path / "c.json").exists()
