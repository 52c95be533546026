"""Fine-tuning a shipped model on one's own frames (``data.dataset: frames``): MediaPipe's 2D and world landmarks on
the user's images paired with their 3D, mixed into training from the default model; ``train eval`` before and after.
The frames are rendered here and written in the real-frames format; real MediaPipe, real training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, train_cli
from tests.test_eval_frames import write_frames_dataset

RECIPE = ROOT / "configs" / "train" / "finetune_frames.yaml"


def _recipe(tmp: Path, **data) -> Path:
    c = yaml.safe_load(RECIPE.read_text())
    c["data"].update({"mediapipe_cache": str(tmp / "cache"), **data})
    c.update(steps=80, batch_size=32, lr=3e-4, eval_every=80, eval_n=50, checkpoint_every=80, out_dir=str(tmp / "runs"))
    p = tmp / "recipe.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


def _rel(checkpoint: str, root: Path, out: Path) -> float:
    r = train_cli("eval", "--checkpoint", checkpoint, "--data", "frames", "--root", str(root), "--json", str(out))
    assert r.returncode == 0, r.stderr[-1500:]
    rows = [f["streamhand"]["rel"] for f in json.loads(out.read_text())["frames"] if f.get("detected")]
    assert rows
    return sum(rows) / len(rows)


@pytest.mark.slow
def test_fine_tune_on_own_frames_learns_them(tmp_path):
    train, test = tmp_path / "mine" / "train", tmp_path / "mine" / "test"
    write_frames_dataset(train, n=12, seed=3)
    write_frames_dataset(test, n=6, seed=4)
    before_train = _rel("default", train, tmp_path / "b1.json")
    before_test = _rel("default", test, tmp_path / "b2.json")
    r = train_cli("fit", "--config", str(_recipe(tmp_path, root=str(train), mediapipe_fraction=1.0)), "--no-progress")
    assert r.returncode == 0, r.stderr[-1500:]
    assert len(list((tmp_path / "cache").glob("frame_pairs_v*.npz"))) == 1  # MediaPipe's pairs, kept for next time
    ckpt = tmp_path / "runs" / "finetune" / "last.pt"
    after_train = _rel(str(ckpt), train, tmp_path / "a1.json")
    after_test = _rel(str(ckpt), test, tmp_path / "a2.json")
    assert after_train < 0.6 * before_train  # it learned the user's frames (here: all of them, to the letter)
    assert after_test < 2.0 * before_test  # and did not forget hands in general
    from streamhand.checkpoint import load_checkpoint

    data = load_checkpoint(ckpt).meta["data"]
    assert data["labelled_hands"] == "frames" and data["root"] == str(train)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"root": None}, "needs data.root"),
        ({"root": "{tmp}/nowhere"}, "frames folder not found"),
        ({"root": "{tmp}/empty"}, "labels not found"),
        ({"root": "{tmp}/mine", "mediapipe_fraction": 0.0}, "would never use the frames"),
        ({"dataset": "photos"}, "dataset"),
    ],
)
def test_bad_frames_recipes_are_one_line(tmp_path, data, says):
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    data = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in data.items()}
    r = train_cli("fit", "--config", str(_recipe(tmp_path, **data)), "--steps", "1", "--no-progress")
    assert r.returncode == 2 and says in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr[-1500:]
