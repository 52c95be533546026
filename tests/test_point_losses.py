"""Chamfer and Earth Mover's distances against brute force on tiny clouds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from train.point_losses import chamfer, emd, emd_sinkhorn


def _brute_chamfer(a: np.ndarray, b: np.ndarray) -> float:
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return float(np.mean([d[i].min() for i in range(len(a))]) + np.mean([d[:, j].min() for j in range(len(b))]))


def _brute_emd(a: np.ndarray, b: np.ndarray) -> float:
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return min(float(np.mean([d[i, p[i]] for i in range(len(a))])) for p in itertools.permutations(range(len(b))))


@pytest.mark.parametrize(("n", "m", "seed"), [(1, 1, 0), (3, 5, 1), (5, 3, 2), (6, 6, 3)])
def test_chamfer_is_brute_force(n, m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n, 3)), rng.normal(size=(2, m, 3))
    got = chamfer(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, [_brute_chamfer(a[k], b[k]) for k in range(2)], rtol=1e-9)


@pytest.mark.parametrize(("n", "seed"), [(1, 0), (4, 1), (6, 2), (7, 3)])
def test_emd_is_the_best_matching(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(3, n, 3)), rng.normal(size=(3, n, 3))
    want = [_brute_emd(a[k], b[k]) for k in range(3)]
    np.testing.assert_allclose(emd(torch.from_numpy(a), torch.from_numpy(b)).numpy(), want, rtol=1e-9)
    approx = emd_sinkhorn(torch.from_numpy(a), torch.from_numpy(b), eps=0.005, iters=500).numpy()
    np.testing.assert_allclose(approx, want, rtol=0.05, atol=0.02)


def test_distances_of_a_cloud_to_itself_and_to_a_permutation_are_zero():
    a = torch.randn(2, 8, 3, dtype=torch.float64)
    b = a[:, torch.randperm(8)]
    zero = torch.zeros(2, dtype=torch.float64)
    assert torch.allclose(chamfer(a, b), zero, atol=1e-6) and torch.allclose(emd(a, b), zero, atol=1e-6)


def test_emd_differs_from_chamfer_when_points_bunch_up():
    a = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    b = torch.tensor([[[0.0, 0, 0], [0, 0, 0]]])  # both points on one of a's
    assert float(chamfer(a, b)) == pytest.approx(0.5) and float(emd(a, b)) == pytest.approx(0.5)
    c = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [1, 0, 0]]])
    d = torch.tensor([[[0.0, 0, 0], [0.05, 0, 0], [0.1, 0, 0]]])
    assert float(emd(c, d)) > float(chamfer(c, d)) / 2


def test_emd_gradient_moves_points_toward_their_match():
    a = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]], requires_grad=True)
    b = torch.tensor([[[1.2, 0, 0], [0.1, 0, 0]]])
    emd(a, b).sum().backward()
    assert a.grad[0, 0, 0] < 0 and a.grad[0, 1, 0] < 0  # both move toward +x, each toward its partner


def test_emd_refuses_clouds_of_different_sizes():
    with pytest.raises(ValueError, match="one size"):
        emd(torch.zeros(1, 3, 3), torch.zeros(1, 4, 3))
