"""The hand-size calibration: stored once, read by every run, validated; measured from depth as a robust median."""

from __future__ import annotations

import numpy as np
import pytest

from streamhand.place.hand_size import (
    DEFAULT_HAND_LENGTH_M,
    CalibrationError,
    HandLengthEstimate,
    calibration_path,
    chain_length,
    load_hand_length,
    resolve_hand_length,
    save_hand_length,
)
from streamhand.place.placement import JOINT_BELOW_SKIN_M, place_hand
from streamhand.synth.hand import forward_kinematics
from streamhand.synth.sampler import GESTURES


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMHAND_CONFIG", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_round_trip_and_resolution_order(config_dir):
    assert load_hand_length() is None
    assert resolve_hand_length(None) == (DEFAULT_HAND_LENGTH_M, "adult average")
    p = save_hand_length(0.171, "manual")
    assert p == calibration_path() and p.parent == config_dir
    assert load_hand_length() == pytest.approx(0.171)
    assert resolve_hand_length(None)[0] == pytest.approx(0.171)
    assert resolve_hand_length(0.2) == (0.2, "set by --hand-size or model.hand_length_m")  # a flag or config wins
    assert not list(config_dir.glob("*.tmp"))


def test_run_and_calibration_take_the_same_hand_lengths():
    from streamhand.place.hand_size import HAND_LENGTH_RANGE_M
    from streamhand.runtime_config import ModelSettings

    lo, hi = HAND_LENGTH_RANGE_M
    assert ModelSettings(hand_length_m=lo).hand_length_m == lo and ModelSettings(hand_length_m=hi).hand_length_m == hi
    for bad in (lo - 0.001, hi + 0.001):
        with pytest.raises(ValueError):
            ModelSettings(hand_length_m=bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hand_length_m: [", "not a hand calibration"),
        ("other: 1", "not a hand calibration"),
        ("hand_length_m: 3.0", "outside"),
        ("hand_length_m: abc", "not a number of metres"),
        ("hand_length_m: true", "hand_length_m 'True' is not a number of metres"),
        ("", r"not a hand calibration \(empty\)"),
        ("- 0.18", r"not a hand calibration \(no hand_length_m\)"),
        (b"\xff\xfe hand", r"not a hand calibration \(not UTF-8 text\)"),
    ],
)
def test_broken_calibration_file_is_one_line(config_dir, text, message):
    config_dir.mkdir(parents=True)
    f = config_dir / "hand.yaml"
    f.write_bytes(text) if isinstance(text, bytes) else f.write_text(text)
    with pytest.raises(CalibrationError, match=message) as e:
        load_hand_length()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("in_the_way", ["folder", "file"])
def test_a_calibration_place_that_is_no_file_is_one_line_not_none(config_dir, in_the_way):
    """A folder named hand.yaml, or STREAMHAND_CONFIG naming a file: said, not read as "no calibration" (which
    would place every hand at the average size without a word)."""
    from tests.helpers import invoke

    if in_the_way == "folder":
        (config_dir / "hand.yaml").mkdir(parents=True)
        says = "hand.yaml: a folder, not a calibration file"
    else:
        config_dir.parent.mkdir(parents=True, exist_ok=True)
        config_dir.write_text("hand_length_m: 0.18\n")
        says = "a file where the calibration's folder should be"
    with pytest.raises(CalibrationError, match=says):
        load_hand_length()
    r = invoke("calibrate-hand", "--show-only", env={"STREAMHAND_CONFIG": str(config_dir)})
    assert r.returncode == 2 and says in r.stderr.strip().splitlines()[-1], r.stderr[-800:]


@pytest.mark.parametrize("bad", [0.05, 0.4, float("nan"), -0.18])
def test_implausible_lengths_are_refused(bad):
    with pytest.raises(CalibrationError, match="outside"):
        save_hand_length(bad, "manual")
    assert load_hand_length() is None  # nothing half-written


def test_depth_measurement_recovers_the_hand_length():
    """A hand of known length placed with exact depth: the fitted scale gives its length back."""
    from streamhand.geometry import Intrinsics, project

    k = Intrinsics(640, 480, 600.0, 600.0, 319.5, 239.5)
    rng = np.random.default_rng(0)
    est = HandLengthEstimate()
    true_scale = 0.93
    for _ in range(20):
        local = forward_kinematics(GESTURES["open"][None] + rng.normal(0, 0.05, (1, 21)), true_scale)[0]
        joints = local @ np.diag([1.0, -1.0, -1.0]).T + np.array(
            [rng.uniform(-0.05, 0.05), 0.0, rng.uniform(0.35, 0.6)]
        )
        uv = project(joints, k)
        depth = np.zeros((480, 640), np.float32)
        for i, ((u, v), z) in enumerate(zip(np.round(uv).astype(int), joints[:, 2])):
            if 0 <= v < 480 and 0 <= u < 640:
                depth[max(v - 4, 0) : v + 5, max(u - 4, 0) : u + 5] = z - JOINT_BELOW_SKIN_M[i]  # skin over the joint
        rel = joints - joints[0]
        norm = rel / np.linalg.norm(rel[10] - rel[9])
        _, _, src, s = place_hand(uv, norm, 0.05, k, depth)
        assert src == "depth"
        est.add(norm, s)
    length, spread = est.result()
    assert length == pytest.approx(float(chain_length(local)), rel=0.03)
    assert spread < 0.01


def test_too_few_depth_frames_says_what_to_do():
    est = HandLengthEstimate()
    est.add(np.zeros((21, 3)), 1.0)  # a degenerate hand is ignored
    with pytest.raises(CalibrationError, match="hold one hand"):
        est.result()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --length"),
        (["--length", "0.5"], "outside"),
        (["--length", "0.18", "--source", "demo"], "not both"),
        (["--source", "images"], "--source images: the hand is measured with depth"),
        (["--show-only", "--length", "0.2"], "--show-only prints the stored calibration; give it alone"),
        (["--length", "0.18", "--frames", "20", "--model", "nonexist"], "not both (--frames, --model measure)"),
        (["--show-only", "--frames", "20"], "--show-only prints the stored calibration; give it alone"),
    ],
)
def test_calibrate_hand_bad_input_one_line_exit_2(config_dir, args, message):
    from tests.helpers import invoke

    r = invoke("calibrate-hand", *args, env={"STREAMHAND_CONFIG": str(config_dir)})
    assert r.returncode == 2, r.stderr[-800:]
    assert "Traceback" not in r.stderr and message in r.stderr
    assert not (config_dir / "hand.yaml").exists()


def test_calibrate_hand_typed_in_then_used_by_run(config_dir):
    from tests.helpers import invoke

    env = {"STREAMHAND_CONFIG": str(config_dir)}
    r = invoke("calibrate-hand", "--length", "0.172", env=env)
    assert r.returncode == 0 and "0.172" in r.stdout
    r = invoke("calibrate-hand", "--show-only", env=env)
    assert "0.172 m" in r.stdout


def test_a_calibration_that_cannot_be_read_is_one_line(config_dir, monkeypatch):
    from pathlib import Path

    config_dir.mkdir(parents=True)
    (config_dir / "hand.yaml").write_text("hand_length_m: 0.18\n")

    def refused(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refused)
    with pytest.raises(CalibrationError, match=r"hand.yaml: cannot read the calibration \(Permission denied\)"):
        resolve_hand_length(None)
    assert resolve_hand_length(0.2)[0] == 0.2  # a length given does not read the file


@pytest.mark.parametrize("in_the_way", ["folder", "file"])
def test_a_calibration_that_cannot_be_stored_is_one_line_and_leaves_nothing(config_dir, in_the_way):
    from tests.helpers import invoke

    if in_the_way == "folder":  # a folder where the file goes
        (config_dir / "hand.yaml").mkdir(parents=True)
        says = "a folder is in its place"
    else:  # a file where the config folder goes
        config_dir.parent.mkdir(parents=True, exist_ok=True)
        config_dir.write_text("not a folder")
        says = "cannot store the calibration"
    with pytest.raises(CalibrationError, match=says):
        save_hand_length(0.18, "manual")
    r = invoke("calibrate-hand", "--length", "0.18", env={"STREAMHAND_CONFIG": str(config_dir)})
    assert r.returncode == 2 and says in r.stderr and "unexpectedly" not in r.stderr, r.stderr[-800:]
    if in_the_way == "folder":
        assert [p.name for p in config_dir.iterdir()] == ["hand.yaml"]  # no part file beside it


def test_an_empty_xdg_config_home_means_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("STREAMHAND_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", "")
    assert calibration_path() == tmp_path / ".config" / "streamhand" / "hand.yaml"


@pytest.mark.slow
def test_calibrate_hand_measured_with_depth_on_the_demo(config_dir):
    """The demo has depth and a known hand: the measured length is within 8 % of the truth; a broken stored
    calibration (which the measurement replaces) does not stop it."""
    from streamhand.capture.demo import demo_hand_lengths
    from tests.helpers import invoke

    config_dir.mkdir(parents=True)
    (config_dir / "hand.yaml").write_text("garbage: [\n")
    r = invoke("calibrate-hand", "--source", "demo", "--frames", "40", env={"STREAMHAND_CONFIG": str(config_dir)})
    assert r.returncode == 0, r.stderr[-1500:]
    measured = load_hand_length()
    assert measured == pytest.approx(demo_hand_lengths()[0], rel=0.08)
