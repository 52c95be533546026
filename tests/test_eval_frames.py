"""``python -m train eval --data frames``: the frames-folder reader, the runtime path's evaluation against 3D
truth (exact 2D and the real MediaPipe), and the joint_std figures of the synthetic eval.

Every dataset here is rendered by ``streamhand.synth`` and written in the folder format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamhand.detect.mediapipe_hands import Detection
from streamhand.geometry import Intrinsics
from streamhand.skeleton import JOINT_NAMES
from tests.helpers import train_cli
from train.datasets.frames import FrameDataError, cut, load_frames, project

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = ROOT / "streamhand" / "weights" / "default.pt"
CROP = 256


@pytest.fixture(autouse=True)
def _no_user_hand_size(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHAND_CONFIG", str(tmp_path / "config"))  # no user's hand calibration


def _render_set(n: int, seed: int = 3):
    from streamhand.synth.render import render
    from streamhand.synth.sampler import detection_test_config, sample_hands

    rng = np.random.default_rng(seed)
    hs = sample_hands(rng, n, dataclasses.replace(detection_test_config(), shared_camera=True))
    rgbs = [render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], left=[bool(hs.left[i])]).rgb
            for i in range(n)]  # fmt: skip
    return rgbs, hs


def _cut(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box (which may reach outside the frame, black there) scaled to CROP x CROP."""
    return cv2.resize(cut(rgb, box), (CROP, CROP), interpolation=cv2.INTER_AREA)


def write_frames_dataset(root: Path, n: int = 4, seed: int = 3) -> dict:
    """Frames 0..n-2 as 256x256 crops with their boxes (frame 0 labelled with its handedness); the last as a
    full-size PNG without a box. Returns the labels written, plus ``_rgb`` (the rendered frames)."""
    rgbs, hs = _render_set(n, seed)
    k = hs.intrinsics[0]
    (root / "images").mkdir(parents=True)
    frames = []
    for i, rgb in enumerate(rgbs):
        f: dict = {"joints_cam_mm": (hs.joints_cam[i] * 1000.0).tolist()}
        if i < n - 1:
            lo, hi = hs.joints_2d[i].min(0), hs.joints_2d[i].max(0)
            side = int(1.6 * max(hi - lo))
            cx, cy = (lo + hi) / 2
            box = (int(cx - side / 2), int(cy - side / 2), side, side)
            f["image"], f["crop_box_xywh"] = f"{i:05d}.jpg", list(box)
            cv2.imwrite(str(root / "images" / f["image"]), cv2.cvtColor(_cut(rgb, box), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])  # fmt: skip
        else:
            f["image"] = f"{i:05d}.png"
            cv2.imwrite(str(root / "images" / f["image"]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if i == 0:
            f["handedness"] = "left" if hs.left[i] else "right"
        frames.append(f)
    labels = {"camera": {"width": k.width, "height": k.height, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy},
              "layout": "mediapipe21", "units": "mm", "frames": frames}  # fmt: skip
    (root / "labels.json").write_text(json.dumps(labels))
    return {**labels, "_rgb": rgbs, "_left": hs.left.tolist()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("frames") / "set"
    return root, write_frames_dataset(root)


def _variant(tmp_path: Path, src: Path, edit) -> Path:
    """A copy of the dataset folder with labels.json changed by ``edit`` (dict -> dict | str | None)."""
    dst = tmp_path / "variant"
    (dst / "images").mkdir(parents=True)
    for p in (src / "images").iterdir():
        (dst / "images" / p.name).write_bytes(p.read_bytes())
    out = edit(json.loads((src / "labels.json").read_text()))
    if out is not None:
        (dst / "labels.json").write_text(out if isinstance(out, str) else json.dumps(out))
    return dst


def _set(path: str, value):
    def edit(lab: dict) -> dict:
        *keys, last = path.split(".")
        node = lab
        for k in keys:
            node = node[int(k)] if k.isdigit() else node[k]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
        return lab

    return edit


_DELETE = object()


# ------------------------------------------------------------------------------------------- the reader


def test_reader_rebuilds_full_frames(dataset):
    root, lab = dataset
    fs = load_frames(root)
    k = fs.intrinsics
    assert len(fs) == len(lab["frames"]) and (k.width, k.height) == (640, 480)
    np.testing.assert_allclose(fs.joints_cam * 1000.0, [f["joints_cam_mm"] for f in lab["frames"]])
    assert fs.handedness == [lab["frames"][0]["handedness"], None, None, None]
    for i, fr in enumerate(fs):
        assert fr.rgb.shape == (480, 640, 3) and fr.rgb.dtype == np.uint8
        box = lab["frames"][i].get("crop_box_xywh")
        if box is None:  # a full-size frame is used as it is
            np.testing.assert_array_equal(fr.rgb, lab["_rgb"][i])
            continue
        x, y, w, h = box
        inside = np.zeros((480, 640), bool)
        inside[max(y, 0) : y + h, max(x, 0) : x + w] = True
        assert not fr.rgb[~inside].any()  # blank outside the box
        diff = np.abs(fr.rgb.astype(int) - lab["_rgb"][i].astype(int))[inside]
        assert np.median(diff) <= 6  # the crop lands back where it was cut (JPEG and two resizes apart)
    np.testing.assert_allclose(fs.joints_2d, project(fs.joints_cam, k))


def test_projection_hand_computed():
    k = Intrinsics(640, 480, 500.0, 400.0, 320.0, 240.0)
    np.testing.assert_allclose(project(np.array([[0.1, -0.2, 2.0], [0.0, 0.0, 1.0]]), k), [[345, 200], [320, 240]])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lab: None, "labels not found: {root}/labels.json"),
        (lambda lab: "{not json", "not valid JSON"),
        (lambda lab: [1, 2], "expected a JSON object"),
        (_set("layout", "rhd42"), "layout 'rhd42' is not supported; expected 'mediapipe21'"),
        (_set("units", "m"), "units 'm' are not supported"),
        (_set("frames", []), "no frames"),
        (_set("camera", {"width": 640}), "'camera' needs width, height, fx, fy, cx, cy"),
        (_set("camera.fx", -1), "positive width, height, fx and fy"),
        (_set("frames.1.image", "missing.jpg"), "image not found: {root}/images/missing.jpg"),
        (_set("frames.1.joints_cam_mm", [[0, 0, 500]] * 20), "joints_cam_mm must be 21x3"),
        (_set("frames.1.joints_cam_mm", [[0, 0, -500]] * 21), "behind the camera"),
        (_set("frames.1.handedness", "both"), "handedness 'both' must be 'left' or 'right'"),
        (_set("frames.1.crop_box_xywh", [5000, 0, 100, 100]), "outside the 640x480 frame"),
        (_set("frames.1.crop_box_xywh", [0, 0, 100]), "crop_box_xywh must be 4 numbers"),
        (_set("frames.1.image", _DELETE), "frame 1: needs 'image'"),
    ],
)
def test_reader_errors(tmp_path, dataset, edit, message):
    root = _variant(tmp_path, dataset[0], edit)
    with pytest.raises(FrameDataError, match=None) as e:
        load_frames(root)
    assert message.format(root=root) in str(e.value) and "\n" not in str(e.value)


def test_reader_missing_folder(tmp_path):
    with pytest.raises(FrameDataError, match="frames folder not found"):
        load_frames(tmp_path / "nowhere")


def test_small_image_without_a_box_is_refused_when_read(tmp_path, dataset):
    root = _variant(tmp_path, dataset[0], _set("frames.1.crop_box_xywh", _DELETE))
    fs = load_frames(root)
    with pytest.raises(FrameDataError, match="image is 256x256, not the camera's 640x480, and its frame has no"):
        fs.image(1)


# ------------------------------------------------------------------------------------------- the evaluation


def _lifter(ckpt: Path, n_samples: int = 8):
    from streamhand.infer import Lifter
    from streamhand.infer.select import make_backend

    return Lifter(make_backend("torch", str(ckpt), n_samples, 1), 0.185)


class _FakeDetector:
    """Frame 0: no hand. Others: a far-away hand and, second, the exact projection with the exact 3D shape as
    world landmarks (centred like MediaPipe's), labelled as a left hand."""

    def __init__(self, fs, miss_first: bool = True):
        self.fs, self.i, self.miss_first = fs, 0, miss_first

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        i, self.i = self.i, self.i + 1
        if i == 0 and self.miss_first:
            return []
        uv, j = self.fs.joints_2d[i], self.fs.joints_cam[i]
        z = np.zeros(21)
        far = Detection(uv + 200.0, z, j - j.mean(0), "right", 0.9, 0.9)
        return [far, Detection(uv, z, j - j.mean(0), "left", 0.9, 0.9)]


def test_evaluate_frames_picks_the_nearest_detection_and_places_the_peer(dataset, tiny_checkpoint):
    from train.evaluate import evaluate_frames, frames_report_lines

    fs = load_frames(dataset[0])
    res = evaluate_frames(fs, _lifter(tiny_checkpoint), "mediapipe", ("2d",), detector=_FakeDetector(fs))
    ours, peer = res["systems"]["streamhand"], res["systems"]["mediapipe_world"]
    assert ours["det"] == peer["det"] == pytest.approx(3 / 4)
    assert ours["px"]["mean"] == pytest.approx(0.0, abs=1e-9)  # the exact detection, not the far one
    for f in ("rel", "gt_bone", "pa", "root", "abs"):  # exact world + reprojection placement = the truth
        assert peer[f]["mean"] == pytest.approx(0.0, abs=1e-3)
    assert [r["detected"] for r in res["frames"]] == [False, True, True, True]
    # labelled frame 0 was missed; unlabelled frames take the detector's handedness
    assert [r.get("handedness") for r in res["frames"][1:]] == ["left"] * 3
    assert res["handedness"] == {"labelled_and_detected": 0, "detector_disagrees": 0}
    assert set(ours["per_joint_rel_mm"]) == set(JOINT_NAMES) and ours["per_joint_rel_mm"]["wrist"] == 0.0
    assert len(ours["pck_rel"]) == 11 and np.all(np.diff(ours["pck_rel"]) >= 0)
    u = ours["uncertainty"]
    assert u["n_joints"] == 3 * 20 and 0 <= u["within_1std"] <= u["within_2std"] <= 1
    lines = frames_report_lines(res)
    assert lines[0].startswith("mediapipe world + placement: det=0.750 rel=0.0")
    assert lines[1].startswith("streamhand (mediapipe 2D, 2d): det=0.750") and "std_r=" in lines[1]


def test_an_rgb_model_gets_the_crops_of_the_frames(dataset, tmp_path):
    """An RGB expert on real frames: the crop around each hand's keypoints, as the runtime makes it."""
    import torch

    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig
    from train.evaluate import evaluate_frames

    torch.manual_seed(0)
    cfg = ModelConfig(z_dim=8, hidden=32, encoders=["rgb", "3d"], decoders=["3d"], image_size=32,
                      image_encoder="compact")  # fmt: skip
    ck = save_checkpoint(tmp_path / "rgb.pt", HandPoseModel(cfg))
    fs = load_frames(dataset[0])
    lifter = _lifter(ck)
    seen = []
    inner = lifter.backend.infer
    lifter.backend.infer = lambda x: (seen.append({k: v.shape for k, v in x.items()}), inner(x))[1]
    res = evaluate_frames(fs, lifter, "mediapipe", ("rgb",), detector=_FakeDetector(fs))
    assert seen and all(s == {"rgb": (1, 3, 32, 32)} for s in seen)
    assert res["systems"]["streamhand"]["det"] == pytest.approx(3 / 4)
    assert np.isfinite(res["systems"]["streamhand"]["rel"]["mean"])


def test_a_handedness_label_wins_over_the_detector(dataset, tiny_checkpoint):
    from train.evaluate import evaluate_frames, frames_report_lines

    root, lab = dataset
    fs = load_frames(root)
    assert lab["frames"][0]["handedness"] == "right"  # the detector says "left" for every hand
    res = evaluate_frames(fs, _lifter(tiny_checkpoint), "mediapipe", ("2d",), detector=_FakeDetector(fs, False))
    assert [r["handedness"] for r in res["frames"]] == ["right", "left", "left", "left"]
    assert res["handedness"] == {"labelled_and_detected": 1, "detector_disagrees": 1}
    assert frames_report_lines(res)[2].startswith("note: MediaPipe's handedness differs from the label on 1 of 1")


def test_evaluate_frames_with_no_hand_found(dataset, tiny_checkpoint):
    from train.evaluate import evaluate_frames, frames_report_lines

    fs = load_frames(dataset[0])
    res = evaluate_frames(fs, _lifter(tiny_checkpoint), "mediapipe", ("2d",), detector=lambda rgb: [])
    assert res["systems"]["streamhand"]["det"] == 0.0 and res["systems"]["streamhand"]["rel"] is None
    lines = frames_report_lines(res)
    assert "rel=n/a" in lines[1] and lines[-1].startswith("no hand was found")


@pytest.mark.parametrize(
    ("model", "keypoints", "requested", "expected"),
    [
        (("2d", "3d"), "mediapipe", None, ("2d",)),
        (("2d", "world", "3d"), "mediapipe", None, ("2d", "world")),
        (("2d", "world", "rgb", "3d"), "mediapipe", ("world", "2d"), ("2d", "world")),
        (("2d", "world", "3d"), "truth", None, ("2d",)),
        (("2d", "world", "3d"), "truth", ("2d",), ("2d",)),
        (("2d", "3d"), "mediapipe", ("world",), "the model has 2d,3d only"),
        (("2d", "rgb", "3d"), "mediapipe", ("rgb",), ("rgb",)),
        (("rgb", "3d"), "mediapipe", None, ("rgb",)),
        (("2d", "depth", "3d"), "mediapipe", ("depth",), "this evaluation gives 2d, world, rgb only"),
        (("2d", "world", "3d"), "truth", ("2d", "world"), "--keypoints truth feeds the exact 2D only"),
        (("2d", "3d"), "detector", None, "choose mediapipe or truth"),
        (("rgb", "3d"), "truth", None, "the model has no 2d expert"),
        (("2d", "3d"), "mediapipe", (), "name at least one"),
    ],
)
def test_frames_modalities(model, keypoints, requested, expected):
    from train.evaluate import frames_modalities

    if isinstance(expected, tuple):
        assert frames_modalities(model, keypoints, requested) == expected
    else:
        with pytest.raises(ValueError, match=None) as e:
            frames_modalities(model, keypoints, requested)
        assert expected in str(e.value)


def _invoke(*args: str):
    r = train_cli(*args)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("edit", "extra", "message"),
    [
        (lambda lab: None, [], "error: --data frames: labels not found: {root}/labels.json"),
        (_set("layout", "stb"), [], "layout 'stb' is not supported"),
        (_set("frames", []), [], "no frames"),
        (lambda lab: lab, ["--keypoints", "detector"], "--keypoints 'detector': choose mediapipe or truth"),
        (lambda lab: lab, ["--keypoints", "truth", "--modalities", "2d,world"], "feeds the exact 2D only"),
        (lambda lab: lab, ["--modalities", "world"], "the model has 2d,3d only"),
        (lambda lab: lab, ["--hand-size", "0.5"], "--hand-size: hand length 0.500 m is outside"),
        (lambda lab: lab, ["--checkpoint", "missing.pt"], "checkpoint not found"),
    ],
)
def test_cli_frames_errors(tmp_path, dataset, tiny_checkpoint, edit, extra, message):
    root = _variant(tmp_path, dataset[0], edit)
    code, out = _invoke("eval", "--data", "frames", "--root", str(root), "--checkpoint", str(tiny_checkpoint), *extra)
    assert code == 2 and message.format(root=root) in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "frames"], "--data frames needs --root"),
        (["--data", "coco"], "choose synthetic, rhd, stb, freihand, frames"),
        (["--data", "freihand", "--root", "configs", "--modalities", "2d"], "--modalities: for --data frames, synth"),
        (["--data", "rhd", "--root", "configs", "--modalities", "2d"], "--data rhd: expected configs/evaluation/anno_"),
        (["--data", "rhd", "--root", "x"], "--root: x is not a folder (does not exist)"),
        (["--root", "configs"], "--root configs: --data synthetic reads no folder"),
        (["--keypoints", "truth", "--hand-size", "0.18"], "--keypoints, --hand-size: for --data frames only"),
    ],
)
def test_cli_eval_argument_errors(tiny_checkpoint, args, message):
    code, out = _invoke("eval", "--checkpoint", str(tiny_checkpoint), *args)
    assert code == 2 and message in out


def test_cli_frames_exact_2d_end_to_end(tmp_path, dataset):
    """The shipped model on the truth's exact 2D, through `python -m train eval` itself."""
    out, png = tmp_path / "r.json", tmp_path / "pck.png"
    r = train_cli("eval", "--data", "frames", "--root", str(dataset[0]), "--checkpoint", str(DEFAULT_CKPT),
                  "--keypoints", "truth", "--json", str(out), "--pck-png", str(png))  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("streamhand (truth 2D, 2d): det=1.000 rel=") and "px=0.0" in lines[0]
    assert "mediapipe world" not in r.stdout  # no detector, no peer
    assert lines[1] == ("note: 3 of 4 frames have no handedness label and were lifted as right hands (label them, "
                        "or use --keypoints mediapipe for the detector's)")  # fmt: skip
    assert lines[2].startswith("PCK of rel") and any(s.startswith("AUC of rel: streamhand") for s in lines)
    assert sum(any(s.split() and s.split()[0] == j for s in lines) for j in JOINT_NAMES) == 21
    assert any(s.startswith("joint_std vs rel error") for s in lines)
    res = json.loads(out.read_text())
    s = res["systems"]["streamhand"]
    assert res["keypoints"] == "truth" and res["modalities"] == ["2d"] and res["n"] == 4
    assert res["hand_length_source"] == "adult average" and res["hand_length_m"] == 0.185
    assert res["handedness"] == {"assumed_right": 3}
    assert s["px"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert s["rel"]["mean"] < 40 and s["pa"]["mean"] < s["gt_bone"]["mean"] + 1e-9  # renders: a trained model
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_frames_real_mediapipe_end_to_end(tmp_path, dataset):
    """The real MediaPipe on the rebuilt frames: the shipped model beside MediaPipe's world landmarks (~1 s)."""
    out = tmp_path / "r.json"
    code, text = _invoke("eval", "--data", "frames", "--root", str(dataset[0]), "--checkpoint", str(DEFAULT_CKPT),
                         "--json", str(out))  # fmt: skip
    assert code == 0, text
    lines = [s for s in text.splitlines() if s.startswith(("mediapipe world + placement:", "streamhand ("))]
    assert len(lines) == 2 and "mediapipe 2D" in lines[1]
    res = json.loads(out.read_text())
    ours, peer = res["systems"]["streamhand"], res["systems"]["mediapipe_world"]
    assert ours["det"] >= 0.5 and peer["det"] == ours["det"]
    assert ours["px"]["mean"] < 20 and peer["px"]["mean"] == pytest.approx(ours["px"]["mean"])
    assert ours["rel"]["mean"] < 60 and peer["rel"]["mean"] < 60
    assert res["handedness"]["labelled_and_detected"] <= 1


# ------------------------------------------------------------------------------------------- synthetic eval


def test_synthetic_eval_adds_uncertainty_without_changing_the_figures(tiny_checkpoint):
    from streamhand.checkpoint import load_checkpoint
    from train.evaluate import evaluate_synthetic

    model = load_checkpoint(tiny_checkpoint).model
    plain = evaluate_synthetic(model, n=60, seed=5)
    withu = evaluate_synthetic(model, n=60, seed=5, uncertainty_samples=4)
    assert plain.uncertainty is None and "uncertainty" not in plain.as_dict()
    assert withu.epe_mean_mm == plain.epe_mean_mm and withu.per_joint_mm == plain.per_joint_mm
    u = withu.uncertainty
    assert u is not None and u.n_joints == 60 * 20 and u.mean_std_mm > 0 and -1 <= u.spearman <= 1
    again = evaluate_synthetic(model, n=60, seed=5, uncertainty_samples=4)
    assert again.uncertainty == u  # seeded posterior samples
    cal = {"a": [0.0] * 21, "b": [100.0] * 21}  # a calibration saying "100 bone lengths": all within 1 std
    wide = evaluate_synthetic(model, n=60, seed=5, uncertainty_samples=4, std_calibration=cal).uncertainty
    assert wide is not None and wide.within_1std == 1


def test_synthetic_cli_prints_the_uncertainty_line(tiny_checkpoint, tmp_path):
    out = tmp_path / "s.json"
    code, text = _invoke("eval", "--checkpoint", str(tiny_checkpoint), "--n", "50", "--json", str(out))
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("EPE mean ") and lines[1].startswith("per joint (mm): 0.0 ")
    assert any(x.startswith("joint_std (raw spread, 16 samples) vs error") for x in lines)
    res = json.loads(out.read_text())
    assert set(res["uncertainty"]) >= {"spearman", "within_1std", "within_2std"} and "epe_procrustes_mean_mm" in res


def test_frames_where_no_hand_is_found_draw_no_pck_figure(tmp_path):
    root = tmp_path / "frames"
    write_frames_dataset(root, n=2)
    for img in (root / "images").iterdir():  # every picture black: MediaPipe finds no hand
        cv2.imwrite(str(img), np.zeros(cv2.imread(str(img)).shape, np.uint8))
    png = tmp_path / "pck.png"
    r = train_cli("eval", "--checkpoint", "default", "--data", "frames", "--root", str(root), "--pck-png", str(png))
    assert r.returncode == 0, r.stderr[-1500:]
    assert "no PCK figure: no hand was found" in r.stdout and not png.exists()
    assert "No artists with labels" not in r.stderr
