"""``python -m train synth-report --frames DIR`` (the renders' figures on a folder of real frames, beside the
renders') and ``python -m train render-sheet``.

The "real" frames here are rendered by ``streamhand.synth`` and written in the frames-folder format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamhand.codec import IMAGE_DEPTH_WEIGHT
from streamhand.synth.render import RENDER_VERSION
from tests.helpers import train_cli
from tests.test_eval_frames import DEFAULT_CKPT, _FakeDetector, write_frames_dataset

RENDERS_EXPERTS = {"2d", "world", "2d+world"}  # the shipped model's expert sets


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("frames") / "set"
    write_frames_dataset(root)  # 4 hands: three 256x256 crops with their boxes, one full frame
    return root


def _invoke(*args: str) -> tuple[int, str]:
    """``python -m train ARGS`` in this process: (exit code, stdout and stderr together)."""
    r = train_cli(*args)
    return r.returncode, r.stdout + r.stderr


def _finite(v: object) -> bool:
    return isinstance(v, float | int) and math.isfinite(v)


@pytest.mark.slow
def test_synth_report_with_frames_end_to_end(frames_dir, tmp_path):
    """Renders and real frames through the real MediaPipe and the shipped model: both columns, the JSON."""
    out = tmp_path / "r.json"
    code, text = _invoke("synth-report", "--n", "2", "--checkpoint", str(DEFAULT_CKPT), "--frames", str(frames_dir),
                         "--json", str(out))  # fmt: skip
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "renders", "real", "frames", "renders", "of", "their", "poses"]
    closed = next(i for i, s in enumerate(lines) if s.startswith("closed loop"))
    assert "renders: the rendered frames" in lines[closed + 1] and "real frames: the real frames" in lines[closed + 1]
    assert any(s.startswith("  world, MediaPipe's handedness") for s in lines)
    assert any(s.startswith("real frames at the run-time scale") for s in lines)
    rep = json.loads(out.read_text())
    # what the figures depend on: the renderer's version and the image depth's share the closed loop lifted with
    assert rep["renderer"] == RENDER_VERSION and rep["image_depth"] == IMAGE_DEPTH_WEIGHT
    assert f"renderer version{' ' * 38}{RENDER_VERSION}" in lines
    real = rep["real_frames"]
    assert set(real) == {"root", "detection_n", "detection_rate", "handedness_labelled", "handedness_accuracy",
                         "landmark_error_px_median", "world_depth", "likeness", "pose_matched_renders",
                         "closed_loop"}  # fmt: skip
    pm = real["pose_matched_renders"]  # the frames' poses drawn by the renderer, MediaPipe on them
    # every hand asked about where its truth is, found or not: the renders, the frames, the renders of their poses
    for lk, n in ((rep["likeness"], 2), (real["likeness"], 4), (pm["likeness"], pm["rendered_n"])):
        assert lk["n"] == n and 0 <= lk["palm_found"] <= 1 and 0 <= lk["presence_p10"] <= lk["presence_mean"] <= 1
        assert -9.3 < lk["palm_logit_mean"] < 9.3
    assert any(s.startswith("  at the true hand: palm score") for s in lines)
    found = round(4 * real["detection_rate"])
    assert pm["rendered_n"] in (found, found + 1)  # those MediaPipe found, and frame 0, which is labelled
    assert pm["world_depth"] is None or -3 < pm["world_depth"]["depth_slope_median"] < 3
    for depth in (real["world_depth"], rep["world_depth"]):  # MediaPipe's world landmarks against the truth
        # a slope below 0 happens (a hand read with its depths reversed); a few hands make no steady median
        assert -3 < depth["depth_slope_q25"] <= depth["depth_slope_median"] <= depth["depth_slope_q75"] < 3
        assert 0.5 < depth["across_slope_median"] < 1.5 and 0 < depth["across_error_mm"] < 40
    assert any(s.startswith("MediaPipe world landmarks: depth slope") for s in lines)
    assert real["detection_n"] == 4 and 0.5 <= real["detection_rate"] <= 1
    assert _finite(real["landmark_error_px_median"]) and real["landmark_error_px_median"] < 20
    assert real["handedness_labelled"] <= 1  # only frame 0 is labelled
    rc = real["closed_loop"]
    assert set(rc) == {"hand_length_m", "model_id", "mediapipe_handedness", "true_handedness", "experts",
                       "truth_2d_reference"}  # fmt: skip
    assert rc["true_handedness"] is None  # not every frame is labelled
    assert set(rc["experts"]) == set(rep["closed_loop"]["experts"]) == RENDERS_EXPERTS
    for entry in [*rc["experts"].values(), rc["mediapipe_handedness"], rc["truth_2d_reference"]]:
        assert set(entry) == {"epe_mean_mm", "epe_runtime_scale_mean_mm", "n", "modalities"}
        assert _finite(entry["epe_mean_mm"]) and _finite(entry["epe_runtime_scale_mean_mm"])
        assert 0 < entry["epe_mean_mm"] < 80 and entry["n"] == round(4 * real["detection_rate"])
    assert rc["mediapipe_handedness"]["modalities"] == ["2d", "world"]


def test_real_frames_are_lifted_at_the_truths_scale_as_renders_are(frames_dir):
    """With exact detections (the truth's projection, labelled left), the 2d expert's figure is the renders' own
    definition: the lifter at the truth's reference bone, wrist-relative mean EPE; the exact-2D reference agrees."""
    from streamhand.infer import Lifter, TorchBackend
    from streamhand.metrics import evaluate_poses
    from streamhand.skeleton import reference_length
    from train.datasets.frames import load_frames
    from train.synth_report import frames_figures, report_lines

    fs = load_frames(frames_dir)
    res = frames_figures(fs, str(DEFAULT_CKPT), progress=False, detector=_FakeDetector(fs), pose_matched=False)
    assert res["detection_rate"] == pytest.approx(3 / 4)  # frame 0 is missed
    assert res["landmark_error_px_median"] == pytest.approx(0.0, abs=1e-9)  # the exact one, not the far one
    assert res["handedness_labelled"] == 0 and res["handedness_accuracy"] is None
    j, k = fs.joints_cam[1:], fs.intrinsics
    lift = Lifter(TorchBackend(str(DEFAULT_CKPT)))(fs.joints_2d[1:], np.ones(3, bool), k, scale=reference_length(j))
    expected = evaluate_poses(lift.joints_rel, j - j[:, :1], "root").epe_mean_mm
    rc = res["closed_loop"]
    assert rc["experts"]["2d"]["epe_mean_mm"] == pytest.approx(expected, rel=1e-6)
    assert rc["truth_2d_reference"]["epe_mean_mm"] == pytest.approx(expected, rel=1e-6)
    assert rc["experts"]["world"]["epe_mean_mm"] != pytest.approx(expected)
    depth = res["world_depth"]  # the fake's world landmarks are the truth's shape: read exactly as deep
    assert depth["n"] == 3 and depth["depth_slope_median"] == pytest.approx(1.0)
    assert depth["depth_error_mm"] == pytest.approx(0.0, abs=1e-6)
    assert depth["across_slope_median"] == pytest.approx(1.0)
    rep = {"pose_samples_per_s": 1.0, "render_256_per_s": 1.0, "detection_n": 10, "detection_rate": 0.5,
           "detection_rate_palm": float("nan"), "detection_rate_back": 0.5, "handedness_accuracy": 0.9,
           "landmark_error_px_median": 7.0, "closed_loop": {}, "real_frames": res}  # fmt: skip
    lines = report_lines(rep)
    assert any(s.startswith("MediaPipe handedness correct") and s.endswith("n/a (not labelled)") for s in lines)
    assert any(s.startswith("  2d, MediaPipe's handedness") and s.split()[-1] == f"{expected:.1f}" for s in lines)
    row = next(s for s in lines if s.startswith("MediaPipe world landmarks: depth slope"))
    assert row.split()[-3:] == ["n/a", "1.00", "[1.00..1.00]"]  # no renders' figure given; the real frames'
    assert next(s for s in lines if s.startswith("  mean error in depth")).split()[-3:] == ["0.0", "/", "0.0"]


def _hands(n: int = 6) -> np.ndarray:
    from streamhand.synth.sampler import sample_hands

    return sample_hands(np.random.default_rng(3), n).joints_cam


def _flatten(j: np.ndarray, depth: float = 1.0, across: float = 1.0) -> np.ndarray:
    rel = j - j[:, :1]
    return j.mean(1, keepdims=True) + rel * np.array([across, across, depth])  # centred elsewhere, as MediaPipe's


@pytest.mark.parametrize(
    ("depth", "across"),
    [(1.0, 1.0), (0.5, 1.0), (0.0, 1.0), (1.0, 2.0), (1.5, 0.8)],
    ids=["exact", "half-as-deep", "flat", "twice-as-wide", "deeper-and-narrower"],
)
def test_depth_reading_measures_how_deep_the_landmarks_read_the_hand(depth, across):
    from train.world_depth import depth_reading

    j = _hands()
    got = depth_reading(_flatten(j, depth, across), j)
    rel = (j - j[:, :1])[:, 1:]
    assert got["n"] == len(j)
    assert got["depth_slope_q25"] == pytest.approx(depth) and got["depth_slope_q75"] == pytest.approx(depth)
    assert got["depth_slope_median"] == pytest.approx(depth) and got["across_slope_median"] == pytest.approx(across)
    assert got["depth_error_mm"] == pytest.approx(1000 * abs(1 - depth) * np.abs(rel[..., 2]).mean())
    assert got["across_error_mm"] == pytest.approx(1000 * abs(1 - across) * np.abs(rel[..., :2]).mean())


@pytest.mark.parametrize("world", [np.zeros((0, 21, 3)), np.zeros(0)], ids=["no-hands", "empty-list"])
def test_depth_reading_of_no_hands_is_none(world):
    from train.world_depth import depth_reading

    assert depth_reading(world, np.zeros((0, 21, 3))) is None


@pytest.mark.parametrize("case", ["missing", "no_labels", "bad_json"])
def test_synth_report_bad_frames_folder(tmp_path, frames_dir, case):
    root = tmp_path / "frames"
    if case != "missing":
        (root / "images").mkdir(parents=True)
    if case == "bad_json":
        (root / "labels.json").write_text("{not json")
    code, out = _invoke("synth-report", "--n", "1", "--frames", str(root))
    expected = {"missing": f"{root} is not a folder (does not exist)", "no_labels": "labels not found",
                "bad_json": "not valid JSON"}[case]  # fmt: skip
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert out.startswith("error: --frames: ") and expected in out and "Traceback" not in out


@pytest.mark.parametrize("depth", [False, True])
def test_render_sheet_writes_a_png_of_the_expected_size(tmp_path, depth):
    from train.synth_report import sheet_shape

    out = tmp_path / "sheet.png"
    args = ["render-sheet", "--out", str(out), "--n", "4", "--size", "64", "--cols", "3", "--no-progress"]
    code, text = _invoke(*args, *(["--depth"] if depth else []))
    assert code == 0, text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.shape == ((256 if depth else 128), 192, 3) == (*sheet_shape(4, 64, 3, depth), 3)
    assert img[:64, :64].std() > 5  # a rendered tile, not the blank background
    assert (img[64 * (2 if depth else 1) :, 64:] == 40).all()  # two of the last row's three cells stay empty
    assert text.strip() == f"render sheet (4 hands, 192x{256 if depth else 128}): {out}"


@pytest.mark.parametrize(
    ("where", "message"),
    [("dir", "is a folder"), ("afile/sheet.png", "is a file, not a folder"), ("sheet.jpg", "the figure is a PNG"),
     ("sheet", "the figure is a PNG")],
)  # fmt: skip
def test_render_sheet_bad_out(tmp_path, where, message):
    (tmp_path / "afile").write_text("a file where the folder would be")
    out = tmp_path if where == "dir" else tmp_path / where
    code, text = _invoke("render-sheet", "--out", str(out), "--n", "2")
    assert code == 2 and len(text.strip().splitlines()) == 1, text
    assert text.startswith(f"error: --out {out}: ") and message in text


def _depth(slope: float) -> dict:
    return {"n": 2, "depth_slope_median": slope, "depth_slope_q25": slope - 0.1, "depth_slope_q75": slope + 0.1,
            "across_slope_median": 1.0, "depth_error_mm": 20.0, "across_error_mm": 8.0}  # fmt: skip


@pytest.mark.parametrize(
    ("pm", "found", "depth"),
    [({"rendered_n": 4, "detection_rate": 0.5, "handedness_accuracy": 1.0, "landmark_error_px_median": 8.0,
       "world_depth": _depth(0.3)}, "0.500 (2 of 4)", "0.30 [0.20..0.40]"),
     ({"rendered_n": 0, "detection_rate": None, "handedness_accuracy": None, "landmark_error_px_median": None,
       "world_depth": None}, "n/a (none)", "n/a")],
    ids=["found", "none-drawn"],
)  # fmt: skip
def test_the_report_puts_the_renders_of_the_frames_poses_beside_the_photographs(pm, found, depth):
    from train.synth_report import report_lines

    real = {"root": "x", "detection_n": 4, "detection_rate": 1.0, "handedness_labelled": 0,
            "handedness_accuracy": None, "landmark_error_px_median": 9.0, "world_depth": _depth(1.0),
            "pose_matched_renders": pm, "closed_loop": {}}  # fmt: skip
    rep = {"pose_samples_per_s": 1.0, "render_256_per_s": 1.0, "detection_n": 10, "detection_rate": 0.5,
           "detection_rate_palm": 0.5, "detection_rate_back": 0.5, "handedness_accuracy": 0.9,
           "landmark_error_px_median": 7.0, "world_depth": _depth(0.6), "closed_loop": {},
           "real_frames": real}  # fmt: skip
    lines = report_lines(rep)
    assert lines[0].split() == ["figure", "renders", "real", "frames", "renders", "of", "their", "poses"]
    assert next(s for s in lines if s.startswith("MediaPipe detection rate")).endswith(found)
    slope = next(s for s in lines if s.startswith("MediaPipe world landmarks: depth slope"))
    assert "0.60 [0.50..0.70]" in slope and "1.00 [0.90..1.10]" in slope and slope.endswith(depth)
    palm = next(s for s in lines if s.startswith("  at the true hand: palm score"))
    assert palm.split()[-3:] == ["n/a", "n/a", "n/a"]  # no likeness figures in any column: said, not a KeyError
    lk = {"n": 4, "palm_found": 0.75, "palm_logit_mean": 1.234, "palm_logit_median": 2.0, "presence_mean": 0.9,
          "presence_p10": 0.8}  # fmt: skip
    lines = report_lines({**rep, "likeness": lk, "real_frames": {**real, "likeness": {**lk, "palm_found": 1.0}}})
    palm = next(s for s in lines if s.startswith("  at the true hand: palm score"))
    assert "0.750 / 1.23" in palm and "1.000 / 1.23" in palm
    assert "0.900 / 0.800" in next(s for s in lines if s.startswith("  at the true hand: presence"))
    without = report_lines({**rep, "real_frames": {**real, "pose_matched_renders": None}})
    assert without[0].split() == ["figure", "renders", "real", "frames"]


@pytest.mark.slow
def test_synth_report_reads_renders_flip_averaged(tmp_path):
    """``--flip-average``: the renders go through MediaPipe's networks, each hand with its mirrored crop, and the
    report says so; the closed loop lifts what that reading gives."""
    out = tmp_path / "r.json"
    code, text = _invoke("synth-report", "--n", "3", "--checkpoint", str(DEFAULT_CKPT), "--flip-average",
                         "--json", str(out))  # fmt: skip
    assert code == 0, text
    assert any(s.startswith("hands read by") and "mirror" in s for s in text.splitlines())
    rep = json.loads(out.read_text())
    assert rep["detector"] == "MediaPipe's networks, each hand with its mirror"
    assert rep["detection_n"] == 3 and 0 <= rep["detection_rate"] <= 1
    if rep["detection_rate"] > 0:
        assert _finite(rep["closed_loop"]["experts"]["2d+world"]["epe_mean_mm"])


def test_a_bad_picture_among_the_frames_is_said_before_any_render(tmp_path, monkeypatch):
    import train.synth_report as sr

    root = tmp_path / "frames"
    write_frames_dataset(root, n=3)
    next(iter(sorted((root / "images").iterdir()))).write_bytes(b"not a picture")

    def rendered(*_a, **_k):
        raise AssertionError("the renders were made before the frames were checked")

    monkeypatch.setattr(sr, "synth_report", rendered)
    code, text = _invoke("synth-report", "--n", "10", "--frames", str(root))
    assert code == 2 and text.startswith("error: --frames: cannot read image"), text


def test_a_model_without_a_keypoint_expert_is_refused_before_any_render(tmp_path):
    """The closed loop lifts MediaPipe's landmarks: a model reading only the RGB crop (Yang et al.'s S1) is refused
    in one line, where it crashed after every render."""
    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig

    cfg = ModelConfig(encoders=["rgb"], decoders=["3d"], z_dim=8, hidden=32, image_size=32, image_encoder="compact")
    ckpt = save_checkpoint(tmp_path / "s1.pt", HandPoseModel(cfg))
    code, text = _invoke("synth-report", "--n", "10", "--checkpoint", str(ckpt))
    assert code == 2 and text.strip().splitlines() == [
        f"error: --checkpoint {ckpt}: synth-report lifts MediaPipe's landmarks (a 2d or world expert); this model "
        "reads rgb"
    ]
