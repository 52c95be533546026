"""Hands the model cannot read well (train/hard_hands.py): each kind changes the hand and only where it should, the
same hands in every kind, and the measurement through the real runtime (MediaPipe, the shipped model)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import train_cli
from train.hard_hands import KINDS, frames, hard_hands, report_lines


def _first(kind: str, seed: int = 3):
    return next(frames(kind, 1, seed))


@pytest.mark.parametrize("kind", ["drawing", "blur", "hidden"])
def test_each_kind_changes_the_render_of_the_same_hand(kind):
    import cv2

    clean, _, truth, uv = _first("clean")
    got, _, truth2, uv2 = _first(kind)
    assert got.shape == clean.shape and got.dtype == np.uint8
    assert np.array_equal(truth, truth2) and np.array_equal(uv, uv2)  # the same hand
    lo, hi = uv.min(0).astype(int), uv.max(0).astype(int)
    box = (slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    if kind == "blur":  # the hand's detail is gone: a fraction of its sharpness is left
        sharp = [cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_64F)[box].var() for im in (clean, got)]
        assert sharp[1] < 0.2 * sharp[0]
    else:
        changed = np.abs(got.astype(int) - clean.astype(int)).max(-1)
        assert (changed[box] > 30).mean() > 0.1  # the hand looks different
    assert np.array_equal(_first(kind)[0], got)  # and the same for the same seed


def test_hidden_covers_the_hand_and_leaves_the_rest():
    clean, _, _, uv = _first("clean")
    got = _first("hidden")[0]
    changed = np.abs(got.astype(int) - clean.astype(int)).max(-1) > 0
    covered = changed[np.round(uv[:, 1]).astype(int).clip(0, 479), np.round(uv[:, 0]).astype(int).clip(0, 639)]
    assert 4 <= covered.sum() <= 16  # 30-50 % of the 21 joints, with a margin
    far = np.ones_like(changed)
    lo, hi = uv.min(0).astype(int) - 40, uv.max(0).astype(int) + 40
    far[max(lo[1], 0) : hi[1], max(lo[0], 0) : hi[0]] = False
    assert not changed[far].any()


def test_a_glove_is_not_skin():
    clean, _, _, uv = _first("clean")
    glove = _first("glove")[0]
    c = np.round(uv[9]).astype(int)  # the middle finger's knuckle
    patch_c = clean[c[1] - 2 : c[1] + 3, c[0] - 2 : c[0] + 3].reshape(-1, 3).mean(0)
    patch_g = glove[c[1] - 2 : c[1] + 3, c[0] - 2 : c[0] + 3].reshape(-1, 3).mean(0)
    assert np.abs(patch_c - patch_g).max() > 20


def test_the_measurement_and_its_table():
    rep = hard_hands(None, n=3, kinds=("clean", "blur"), progress=False)
    assert set(rep) == {"clean", "blur", "hard"} and rep["clean"]["n"] == 3 and rep["hard"]["n"] == 3
    for s in rep.values():
        assert 0 <= s["detected"] <= 1
        if "error_mm" in s:
            assert s["error_mm"] > 0 and s["std_over_error"] == pytest.approx(s["std_mm"] / s["error_mm"])
            assert 0 <= s["confidence"] <= 1 and 0.5 <= s["score"] <= 1  # the presence MediaPipe published it at
    lines = report_lines({"clean": {"n": 2, "detected": 0.0}, "blur": {"n": 2, "detected": 0.5, "error_mm": 40.0,
                          "std_mm": 20.0, "std_over_error": 0.5, "quality_mm": 15.0, "confidence": None,
                          "score": 0.81}})  # fmt: skip
    assert "no hand found" in lines[1] and lines[2].split()[-2:] == ["0.81", "-"] and " 0.50 " in lines[2]
    assert lines[0].split()[-2:] == ["score", "conf"]


@pytest.mark.slow
def test_flip_average_reads_each_hand_with_its_mirror(monkeypatch):
    """``flip_average=True`` measures through MediaPipe's networks with every crop read mirrored too."""
    import streamhand.detect.gpu_hands as gh

    calls = []

    def counting(run, crops):
        calls.append(len(crops))
        return real(run, crops)

    real = gh.flip_averaged
    monkeypatch.setattr(gh, "flip_averaged", counting)
    rep = hard_hands(None, n=2, kinds=("clean",), progress=False, flip_average=True)
    assert rep["clean"]["n"] == 2 and calls and all(c >= 1 for c in calls)
    calls.clear()
    hard_hands(None, n=1, kinds=("clean",), progress=False)
    assert calls == []  # and a plain measurement does not


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "clean,paint"], "--kinds 'clean,paint': choose from " + ", ".join(KINDS)),
        (["--kinds", ""], "--kinds '': choose from"),
    ],
)
def test_bad_kinds_are_one_line(args, message):
    r = train_cli("hard-hands", "--n", "1", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
