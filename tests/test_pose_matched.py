"""Renders of real frames' poses (``train.pose_matched``): each frame's hand drawn by the renderer in the frame's
pose, camera and framing, then read by the real MediaPipe. The "real" frames here are themselves renders written
in the frames-folder format (three 256x256 crops with their boxes, one full frame)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_eval_frames import write_frames_dataset
from train.datasets.frames import load_frames
from train.pose_matched import pose_matched_figures, render_frame_pose


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "set"
    labels = write_frames_dataset(root)
    return load_frames(root), labels["_left"]


@pytest.fixture(scope="module")
def mediapipe():
    from streamhand.detect import MediaPipeHands

    with MediaPipeHands(max_hands=2, tracking=False) as det:
        yield det


@pytest.mark.parametrize("i", [0, 3], ids=["crop", "full-frame"])
def test_a_frames_pose_is_drawn_where_its_photograph_shows_it(frames, mediapipe, i):
    fs, left = frames
    rgb = render_frame_pose(fs, i, left[i])
    k = fs.intrinsics
    assert rgb.shape == (k.height, k.width, 3) and rgb.dtype == np.uint8
    box = fs.crop_boxes[i]
    if box is not None:  # stored as the photograph is: black outside its crop box, as FrameSet.image gives it
        x, y, w, h = box
        inside = np.zeros(rgb.shape[:2], bool)
        inside[max(y, 0) : y + h, max(x, 0) : x + w] = True
        assert (rgb[~inside] == 0).all() and rgb[inside].std() > 5
        assert (fs.image(i)[~inside] == 0).all()
    dets = mediapipe(rgb)
    assert dets, "MediaPipe finds the rendered hand"
    err = min(np.median(np.linalg.norm(d.landmarks_px - fs.joints_2d[i], axis=1)) for d in dets)
    assert err < 15  # drawn at the truth's projection, through the frames' camera


def test_the_same_frame_and_seed_draw_the_same_image(frames):
    fs, left = frames
    a, b = render_frame_pose(fs, 1, left[1]), render_frame_pose(fs, 1, left[1])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_frame_pose(fs, 1, left[1], seed=7))


def test_figures_on_the_renders_of_the_frames_poses(frames, mediapipe):
    fs, left = frames
    hands = ["left" if x else "right" for x in left]
    hands[2] = None  # a frame whose hand is not known is not drawn
    got = pose_matched_figures(fs, hands, mediapipe, progress=False)
    assert set(got) == {"rendered_n", "detection_rate", "handedness_accuracy", "landmark_error_px_median",
                        "world_depth", "likeness"}  # fmt: skip
    assert got["rendered_n"] == 3 and got["detection_rate"] >= 2 / 3
    assert got["likeness"]["n"] == 3  # every hand drawn is asked about, found or not
    assert 0 <= got["handedness_accuracy"] <= 1 and 0 <= got["landmark_error_px_median"] < 15
    depth = got["world_depth"]
    assert depth["n"] == round(3 * got["detection_rate"]) and 0.5 < depth["across_slope_median"] < 1.5


class _Counting:
    """A detector that finds nothing and counts the images it was shown."""

    def __init__(self):
        self.shown = 0

    def __call__(self, rgb: np.ndarray) -> list:
        self.shown += 1
        return []


@pytest.mark.parametrize(
    ("hands", "drawn"),
    [([None] * 4, 0), (["left", None, "sideways", None], 1)],
    ids=["no-hand-known", "one-known-one-invalid"],
)
def test_nothing_found_or_nothing_drawn_gives_none_not_a_crash(frames, hands, drawn):
    fs, _ = frames
    det = _Counting()
    got = pose_matched_figures(fs, hands, det, progress=False)
    assert det.shown == got["rendered_n"] == drawn
    assert got["detection_rate"] == (0.0 if drawn else None)
    assert got["handedness_accuracy"] is None and got["landmark_error_px_median"] is None
    assert got["world_depth"] is None
