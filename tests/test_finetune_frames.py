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


def _rel(checkpoint: str, root: Path, out: Path, *extra: str) -> float:
    r = train_cli("eval", "--checkpoint", checkpoint, "--data", "frames", "--root", str(root), "--json", str(out),
                  *extra)  # fmt: skip
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
        ({"root": "{tmp}/mine", "mediapipe_cache": "{tmp}/a_file/cache"}, "data.mediapipe_cache {tmp}/a_file/cache: "),
    ],
)
def test_bad_frames_recipes_are_one_line(tmp_path, data, says):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    data = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in data.items()}
    r = train_cli("fit", "--config", str(_recipe(tmp_path, **data)), "--steps", "1", "--no-progress")
    says = says.format(tmp=tmp_path)
    assert r.returncode == 2 and says in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr[-1500:]
    assert not list((tmp_path / "runs").glob("*"))  # nothing made for a run that did not start


RGB_RECIPE = ROOT / "configs" / "train" / "finetune_rgb_frames.yaml"


def test_a_crop_turned_with_its_camera_is_the_crop_of_the_turned_frame(tmp_path):
    """The turn that augments your frames' hands turns their stored crops the same way as their keypoints."""
    import cv2
    import numpy as np

    from streamhand.detect.crops import CROP_MARGIN, hand_crops
    from train.datasets.frames import load_frames
    from train.datasets.synthetic import turn_crops

    write_frames_dataset(tmp_path / "f", n=2, seed=3)
    fr = load_frames(tmp_path / "f")
    k, img, uv = fr.intrinsics, fr.image(0), fr.joints_2d[0]
    cam = (k.fx, k.fy, k.cx, k.cy)
    crop = hand_crops(img, None, [uv], ("rgb",), 224, CROP_MARGIN, cam, view="turned")["rgb"][0]
    angle = 0.5
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([k.cx, k.cy])  # the frame turned about the principal point as turn_about_axis turns rays
    turned = cv2.warpAffine(img, np.c_[turn, centre - turn @ centre], (img.shape[1], img.shape[0]))
    want = hand_crops(turned, None, [(uv - centre) @ turn.T + centre], ("rgb",), 224, CROP_MARGIN, cam,
                      view="turned")["rgb"][0]  # fmt: skip
    u8 = np.round((crop + 0.5) * 255).astype(np.uint8)[None]

    def corr(a: float) -> float:
        got = turn_crops(u8, np.array([a]))[0]
        return float(np.corrcoef(got.ravel(), want.ravel())[0, 1])

    assert corr(angle) > 0.8 and corr(angle) > corr(-angle) + 0.2
    assert np.array_equal(turn_crops(u8, np.zeros(1))[0], crop)  # no turn: the crop as the runtime gives it


def _rgb_recipe(tmp: Path, root: Path) -> Path:
    c = yaml.safe_load(RGB_RECIPE.read_text())
    c["data"].update(root=str(root), mediapipe_cache=str(tmp / "cache"), mediapipe_fraction=1.0, pool_samples=256,
                     chunk=64)  # fmt: skip
    c.update(steps=300, batch_size=32, lr=1e-3, workers=0, eval_every=300, eval_n=20, checkpoint_every=300,
             out_dir=str(tmp / "runs"))  # fmt: skip
    p = tmp / "rgb_recipe.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


@pytest.mark.slow
def test_fine_tuning_the_rgb_expert_on_own_frames_learns_them(tmp_path):
    from streamhand.checkpoint import load_checkpoint

    train = tmp_path / "mine"
    write_frames_dataset(train, n=12, seed=3)
    before = _rel("rgb", train, tmp_path / "b.json", "--modalities", "rgb")
    r = train_cli("fit", "--config", str(_rgb_recipe(tmp_path, train)), "--no-progress")
    assert r.returncode == 0, r.stderr[-1500:]
    assert [p.name.endswith("_rgb224turned.npz") for p in (tmp_path / "cache").glob("frame_pairs_v*.npz")] == [True]
    ckpt = tmp_path / "runs" / "finetune_rgb" / "last.pt"
    after = _rel(str(ckpt), train, tmp_path / "a.json", "--modalities", "rgb")
    # the RGB expert alone learned the user's hands from their crops (measured: 19.0 -> 10.9 mm on renderer 8's
    # frames, 20.8 -> 14.6 on renderer 9's)
    assert after < 0.75 * before
    ck, shipped = load_checkpoint(ckpt), load_checkpoint("rgb")
    same = {k for k, v in shipped.model.state_dict().items() if k.startswith(("encoders.2d", "encoders.world"))}
    assert same and all((ck.model.state_dict()[k] == shipped.model.state_dict()[k].float()).all() for k in same)


def test_frames_give_colour_crops_only(tmp_path):
    c = yaml.safe_load((ROOT / "configs" / "train" / "depth.yaml").read_text())
    c["data"].update(dataset="frames", root=str(tmp_path))
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(c))
    r = train_cli("fit", "--config", str(p), "--steps", "1", "--no-progress")
    assert r.returncode == 2 and "colour crops only: depth" in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_only_the_samples_that_keep_rendered_crops_are_rendered(monkeypatch, fraction):
    """Your frames' colour crops replace the renders' for their share of each chunk, so only the other samples'
    crops are rendered: every sample ends with a crop, a frame's where it was replaced."""
    import numpy as np

    import streamhand.synth.crops as synth_crops
    from streamhand.detect.crops import normalise_rgb
    from streamhand.synth.sampler import SamplerConfig, sample_hands
    from train.config import DataConfig
    from train.datasets.synthetic import chunk_data

    rendered = []
    real_render_crops = synth_crops.render_crops

    def counted(rng, joints_cam, *a, **k):
        rendered.append(len(joints_cam))
        return real_render_crops(rng, joints_cam, *a, **k)

    monkeypatch.setattr(synth_crops, "render_crops", counted)
    hs = sample_hands(np.random.default_rng(1), 5, SamplerConfig())
    k = hs.intrinsics
    grey = 128  # the frames' crops: one flat grey, so a replaced sample's crop is told from a rendered one
    mp = {"landmarks": hs.joints_2d, "joints_cam": hs.joints_cam, "world": hs.joints_cam - hs.joints_cam[:, :1],
          "left": hs.left, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy,
          "rgb": np.full((5, 3, 32, 32), grey, np.uint8)}  # fmt: skip
    cfg = DataConfig(crops=["rgb"], crop_size=32, chunk=64, mediapipe_fraction=fraction)
    data = chunk_data(7, 0, cfg, 16, mp)
    crops = data.images["rgb"].numpy()
    centre = crops[:, :, 16, 16]
    from_frames = np.all(centre == normalise_rgb(np.full((1, 1, 3), grey, np.uint8))[:, 0, 0], axis=1)
    replaced = int(round(fraction * 16))
    assert from_frames.sum() == replaced and sum(rendered) == 16 - replaced
    assert (crops.reshape(16, -1).std(1)[~from_frames] > 0.01).all()  # the rest are rendered hands, none left blank
