import numpy as np
import pytest

from streamhand import metrics


def _pose(rng):
    return rng.normal(scale=0.05, size=(2, 21, 3))


def test_epe_hand_computed():
    gt = np.zeros((1, 21, 3))
    pred = np.zeros((1, 21, 3))
    pred[0, 1:, 0] = 0.010  # every non-root joint 10 mm off
    e = metrics.joint_errors_mm(pred, gt)
    assert e[0, 0] == 0 and e[0, 1:] == pytest.approx(10.0)
    m = metrics.evaluate_poses(pred, gt)
    assert m.epe_mean_mm == pytest.approx(200 / 21)
    assert m.epe_median_mm == pytest.approx(10.0)
    assert m.auc_20_50 == pytest.approx(1.0)
    assert len(m.per_joint_mm) == 21


def test_root_alignment_removes_translation(rng):
    gt = _pose(rng)
    assert metrics.evaluate_poses(gt + np.array([1.0, 2.0, 3.0]), gt).epe_mean_mm == pytest.approx(0, abs=1e-9)


def test_scale_alignment_removes_scale_only(rng):
    gt = _pose(rng)
    assert metrics.evaluate_poses(1.3 * gt, gt, "scale").epe_mean_mm == pytest.approx(0, abs=1e-9)
    assert metrics.evaluate_poses(1.3 * gt, gt, "root").epe_mean_mm > 1


def test_procrustes_removes_similarity(rng):
    gt = _pose(rng)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    pred = 0.7 * gt @ q.T + 0.2
    assert metrics.evaluate_poses(pred, gt, "procrustes").epe_mean_mm == pytest.approx(0, abs=1e-6)
    assert metrics.evaluate_poses(pred, gt, "scale").epe_mean_mm > 1


@pytest.mark.parametrize(
    ("errors", "lo", "hi", "expected"),
    [
        ([10.0], 20, 50, 1.0),
        ([60.0], 20, 50, 0.0),
        ([35.0], 20, 50, 0.5),  # PCK 0,0,0,1,1,1,1 over 20..50 step 5 -> trapezoid = 17.5/30
    ],
)
def test_auc_cases(errors, lo, hi, expected):
    if expected == 0.5:
        expected = 17.5 / 30
    assert metrics.auc(np.array(errors), lo, hi, 5) == pytest.approx(expected)


def test_pck_curve():
    np.testing.assert_allclose(metrics.pck_curve(np.array([1, 2, 3, 4]), np.array([0, 2, 4])), [0, 0.5, 1])


@pytest.mark.parametrize(
    ("pred", "gt", "align"),
    [(np.zeros((1, 21, 3)), np.zeros((1, 21, 2)), "root"), (np.zeros((21, 3)), np.zeros((21, 3)), "root"),
     (np.zeros((1, 21, 3)), np.zeros((1, 21, 3)), "bogus")],
)  # fmt: skip
def test_metric_errors(pred, gt, align):
    with pytest.raises(ValueError):
        metrics.joint_errors_mm(pred, gt, align)
