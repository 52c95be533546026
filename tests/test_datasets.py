"""Dataset readers on tiny datasets written here in each dataset's exact on-disk format."""

import json
import pickle

import numpy as np
import pytest

from streamhand.geometry import Intrinsics, project
from streamhand.skeleton import to_rhd, to_stb
from streamhand.synth.sampler import SamplerConfig, sample_hands
from train.datasets.real import load_freihand, load_rhd, load_stb


@pytest.fixture
def hands():
    return sample_hands(np.random.default_rng(5), 4, SamplerConfig(facing_fraction=1.0, in_frame_margin=40))


def test_rhd_reader(tmp_path, hands):
    k = Intrinsics.from_fov(320, 320, 60)
    anno = {}
    for i in range(2):
        left, right = hands.joints_cam[2 * i], hands.joints_cam[2 * i + 1]
        xyz = to_rhd(left, right)
        uv = project(xyz, k)
        anno[i] = {"xyz": xyz.astype(np.float32), "uv_vis": np.concatenate([uv, np.ones((42, 1))], 1),
                   "K": k.matrix()}  # fmt: skip
    anno[1]["uv_vis"][30, 2] = 0  # a hidden keypoint: that hand is left out
    (tmp_path / "evaluation").mkdir()
    with (tmp_path / "evaluation" / "anno_evaluation.pickle").open("wb") as f:
        pickle.dump(anno, f)
    hs = load_rhd(tmp_path)
    assert len(hs) == 3 and list(hs.left) == [True, False, True]
    np.testing.assert_allclose(hs.joints_cam[1], hands.joints_cam[1], atol=1e-6)
    np.testing.assert_allclose(hs.joints_2d[0], project(hands.joints_cam[0], k), atol=1e-3)
    np.testing.assert_allclose(hs.intrinsics.fx, k.fx) and np.testing.assert_allclose(hs.intrinsics.cy, k.cy)


def test_stb_reader(tmp_path, hands):
    scipy_io = pytest.importorskip("scipy.io", reason="STB's .mat labels need scipy")
    (tmp_path / "labels").mkdir()
    para = np.transpose(to_stb(hands.joints_cam), (2, 1, 0))  # (3, 21, N) mm
    for seq in ("B1Counting", "B1Random"):
        scipy_io.savemat(str(tmp_path / "labels" / f"{seq}_SK.mat"), {"handPara": para})
    hs = load_stb(tmp_path)
    assert len(hs) == 8 and hs.k.shape == (8, 3, 3)
    np.testing.assert_allclose(hs.joints_cam[:4], hands.joints_cam, atol=1e-9)


def test_freihand_reader(tmp_path, hands):
    k = Intrinsics.from_fov(224, 224, 50)
    (tmp_path / "training_xyz.json").write_text(json.dumps(hands.joints_cam.tolist()))
    (tmp_path / "training_K.json").write_text(json.dumps([k.matrix().tolist()] * 4))
    hs = load_freihand(tmp_path)
    np.testing.assert_allclose(hs.joints_2d, project(hands.joints_cam, k), atol=1e-9)
    assert hs.k.shape == (4, 3, 3) and np.allclose(hs.intrinsics.cx, k.cx)


@pytest.mark.parametrize("loader", [load_rhd, load_freihand])
def test_readers_missing_files(tmp_path, loader):
    with pytest.raises(FileNotFoundError):
        loader(tmp_path)
