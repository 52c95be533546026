"""Photometric augmentation of rendered colour crops (train/datasets/photometric.py, DataConfig.crop_photometric)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from train.config import DataConfig
from train.datasets.photometric import photometric
from train.datasets.synthetic import chunk_data


def _crops(n: int = 12, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.uniform(-0.4, 0.4, (n, 3, 1, 1)).astype(np.float32)
    ramp = np.linspace(-0.1, 0.1, size, dtype=np.float32)[None, None, :, None]
    return base + ramp + rng.normal(0, 0.02, (n, 3, size, size)).astype(np.float32)


@pytest.mark.parametrize(("share", "changed"), [(0.0, 0), (1.0, 12)])
def test_share_sets_how_many_crops_change(share: float, changed: int) -> None:
    x = _crops()
    y = photometric(np.random.default_rng(1), x, share)
    diff = np.abs(y - x).reshape(len(x), -1).max(1)
    assert int((diff > 1e-6).sum()) == changed


def test_output_is_an_encoder_input_and_the_input_is_untouched() -> None:
    x = _crops()
    before = x.copy()
    y = photometric(np.random.default_rng(2), x, 0.7)
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.min() >= -0.5 and y.max() <= 0.5
    np.testing.assert_array_equal(x, before)


def test_seeded() -> None:
    x = _crops()
    a = photometric(np.random.default_rng(3), x, 0.5)
    b = photometric(np.random.default_rng(3), x, 0.5)
    c = photometric(np.random.default_rng(4), x, 0.5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_changes_look_not_layout() -> None:
    """A changed crop keeps its picture: each one still correlates with the crop it came from."""
    x = _crops()
    y = photometric(np.random.default_rng(5), x, 1.0)
    for a, b in zip(x, y):
        ga, gb = a.mean(0).ravel(), b.mean(0).ravel()
        assert np.corrcoef(ga, gb)[0, 1] > 0.3


def test_training_chunk_keeps_the_renders_of_a_run_without_it() -> None:
    cfg = DataConfig(crops=["rgb"], crop_size=32, crop_view="turned", chunk=64, crop_photometric=0.5)
    on = chunk_data(5, 0, cfg, 8)
    off = chunk_data(5, 0, cfg.model_copy(update={"crop_photometric": 0.0}), 8)
    np.testing.assert_array_equal(on.joints_cam, off.joints_cam)
    a, b = on.images["rgb"].numpy(), off.images["rgb"].numpy()
    same = np.abs(a - b).reshape(8, -1).max(1) < 1e-6
    assert 0 < same.sum() < 8  # some crops as rendered, the others changed


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_share_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValidationError):
        DataConfig(crop_photometric=bad)
