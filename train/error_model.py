"""Fit the error model of a trained checkpoint (:mod:`streamhand.error_model`) on renders labelled by the real
MediaPipe, and judge it on other held-out renders; store it in the checkpoint.

Each labelled render goes the runtime's way: MediaPipe's 2D (and, by default, world landmarks simulated at the level of
MediaPipe's on real photographs, as :mod:`train.calibrate_std` does), the lifter at the configured hand length, the
perspective placement. What the user would get is compared with the truth: the hand's error in its own shape (the
answer at the truth's scale, in reference bones) teaches the linear model and the per-joint profile; the ratio of
the reference bone used to the truth's teaches ``scale_sigma``; the held-out renders set ``kappa`` (``joint_std`` covers
the given share of joints within one std) and the quality's calibration."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamhand.error_model import FEATURES, ErrorModel
from streamhand.infer.lifter import Lifter
from streamhand.metrics import evaluate_uncertainty, spearman
from streamhand.place.placement import RAY_PULL
from streamhand.run.place_step import answer_hands
from streamhand.skeleton import reference_length
from streamhand.synth.sampler import IntrinsicsBatch
from streamhand.uncertainty import _nnls, modality_key

log = logging.getLogger(__name__)

#: share of joints within one ``joint_std`` that ``kappa`` aims at on the held-out renders
COVER_1STD = 0.68


@dataclass
class ClosedLoop:
    """The runtime's answers on N labelled renders, with what they should have been."""

    feats: np.ndarray  # (N, F)
    rel: np.ndarray  # (N, 21, 3) the answer's wrist-relative joints (metres)
    ref: np.ndarray  # (N,) the reference bone used (metres)
    error: np.ndarray  # (N, 21) the user's error, wrist-relative (metres)
    shape_error: np.ndarray  # (N, 21) the error at the truth's scale, in the truth's reference bones
    log_scale_ratio: np.ndarray  # (N,) log(reference bone used / the truth's)
    spread: np.ndarray  # (N, 21) the lifter's own joint_std (metres; the checkpoint's calibration)
    #: (N,) MediaPipe named the hand right (it was lifted the right way round); all True where the pairs do not say
    named_right: np.ndarray | None = None


def closed_loop(lifter: Lifter, pairs: dict[str, np.ndarray], mods: tuple[str, ...], batch: int = 256,
                ray_pull: float = RAY_PULL) -> ClosedLoop:  # fmt: skip
    """Run ``pairs`` (``train.datasets.mediapipe_pairs``) through ``lifter`` with the experts ``mods`` and place them
    as the runtime does without depth, each joint pulled ``ray_pull`` of the way toward its landmark's ray."""
    parts: dict[str, list[np.ndarray]] = {f: [] for f in ClosedLoop.__dataclass_fields__}
    n = len(pairs["left"])
    for a in range(0, n, batch):
        s = slice(a, a + batch)
        uv, truth = pairs["landmarks"][s].astype(np.float64), pairs["joints_cam"][s].astype(np.float64)
        kb = IntrinsicsBatch(0, 0, *(np.asarray(pairs[q][s], np.float64) for q in ("fx", "fy", "cx", "cy")))
        left = pairs.get("mp_left", pairs["left"])[s]  # MediaPipe's label, as a still image is lifted
        images = {m: v[s] for m, v in pairs.get("images", {}).items()}
        hs, presence, image_z = pairs.get("handedness_score"), pairs.get("score"), pairs.get("landmarks_z")
        out = lifter(uv, left, kb, images=images, world=pairs["world"][s], modalities=mods,
                     landmarks_z=None if image_z is None else image_z[s])  # fmt: skip
        # placed, pulled toward the 2D's rays and read as a run does (streamhand.run.place_step): the error is the
        # published answer's, the evidence the run's error model reads
        a = answer_hands(uv, out, kb, None, ray_pull, pairs["world"][s], None if hs is None else hs[s],
                         None if presence is None else presence[s])  # fmt: skip
        feats, answer = a.features(), a.joints
        t = truth - truth[:, :1]
        rel = answer - answer[:, :1]
        ref_true = reference_length(truth)
        shape = np.linalg.norm(out.joints_norm * ref_true[:, None, None] - t, axis=-1) / ref_true[:, None]
        parts["feats"].append(feats)
        parts["rel"].append(rel)
        parts["ref"].append(out.scale)
        parts["error"].append(np.linalg.norm(rel - t, axis=-1))
        parts["shape_error"].append(shape)
        # the hand's size against the truth's, as the shape error is taken at the truth's size (a scale fitted to the
        # truth would mix the shape's error in, and one turned the wrong way has none that fits)
        parts["log_scale_ratio"].append(np.log(out.scale / ref_true))
        parts["spread"].append(out.joint_std)
        parts["named_right"].append(left == pairs["left"][s] if "mp_left" in pairs else np.ones(len(uv), bool))
    return ClosedLoop(**{k: np.concatenate(v) for k, v in parts.items()})


#: the direction each piece of evidence may push the expected error (+1: more of it, more error): a hand that is
#: larger in the image, reprojects better, agrees with itself, has plausible bones, faces the camera, looks more like a
#: hand to the landmark network, is not expected to err more, whatever correlations among the evidence one set of
#: renders shows
SIGNS = {"log_size_px": -1.0, "log_residual": 1.0, "log_world_residual": 1.0, "log_disagreement": 1.0,
         "handedness_doubt": 1.0, "bone_implausibility": 1.0, "edge_on": 1.0, "presence_doubt": 1.0}  # fmt: skip


#: evidence the fit gives no weight unless asked (``fit_error_models(..., weigh_disagreement=True)``): the fused
#: experts' disagreement measures whichever expert is the worse one, and which one that is differs between the
#: renders (MediaPipe's world landmarks) and photographs (its 2D, which the fused answer already follows least), so a
#: weight learnt on renders points at the wrong hands on real ones (docs/evaluation.md)
LEFT_OUT = ("log_disagreement",)


def named_right_only(loop: ClosedLoop) -> ClosedLoop:
    """The hands of ``loop`` that MediaPipe named right."""
    if loop.named_right is None:
        return loop
    keep = np.asarray(loop.named_right, bool)
    return ClosedLoop(**{f: None if v is None else v[keep] for f, v in vars(loop).items()})


def fit_shape(loop: ClosedLoop, leave_out: tuple[str, ...] = ()) -> dict:
    """The linear model of the log mean shape error (least squares, each weight of its sign in :data:`SIGNS`; the
    evidence in ``leave_out`` weighs 0), the per-joint profile and ``scale_sigma`` (no coverage yet), on every hand
    of ``loop`` (:func:`fit_error_models` passes those MediaPipe named right)."""
    hand = loop.shape_error[:, 1:].mean(1)
    y = np.log(np.maximum(hand, 1e-4))
    mean, std = loop.feats.mean(0), np.maximum(loop.feats.std(0), 1e-9)
    x = (loop.feats - mean) / std
    unknown = set(leave_out) - set(FEATURES)
    if unknown:
        raise ValueError(f"no such evidence: {sorted(unknown)} (the error model's: {list(FEATURES)})")
    sign = np.array([0.0 if f in leave_out else SIGNS[f] for f in FEATURES])
    xc, yc = (x - x.mean(0)) * sign, y - y.mean()
    w = sign * _nnls(xc, yc, np.ones(len(yc)))
    bias = float(y.mean() - x.mean(0) @ w)
    # exp(log-linear) predicts the geometric mean; the profile turns it into each joint's mean error
    pred = np.exp(x @ w + bias)
    profile = (loop.shape_error / pred[:, None]).mean(0)
    profile[0] = 0.0
    return {"features": list(FEATURES), "mean": mean.tolist(), "std": std.tolist(), "weights": w.tolist(),
            "bias": bias, "profile": profile.tolist(), "scale_sigma": float(np.sqrt(np.mean(loop.log_scale_ratio**2))),
            "kappa": 1.0, "quality_bias": 1.0, "quality_sigma": 1.0}  # fmt: skip


def calibrate_on(spec: dict, loop: ClosedLoop, cover: float = COVER_1STD) -> dict:
    """``spec`` with ``kappa`` and the quality's bias and spread set on the held-out ``loop``."""
    raw = ErrorModel(spec).expected_errors(loop.feats, loop.rel, loop.ref)
    ratio = (loop.error[:, 1:] / np.maximum(raw[:, 1:], 1e-9)).ravel()
    kappa = float(np.quantile(ratio, cover))
    lq = np.log(np.maximum(loop.error[:, 1:].mean(1), 1e-6)) - np.log(np.maximum(raw[:, 1:].mean(1), 1e-9))
    return {**spec, "kappa": kappa, "quality_bias": float(np.exp(lq.mean())), "quality_sigma": float(lq.std())}


def judge(std: np.ndarray, error: np.ndarray) -> dict[str, float]:
    """How ``std`` (N, 21) tells ``error`` (N, 21) apart (wrist left out), named as the real-frame figures."""
    u = evaluate_uncertainty(std, error * 1000.0)
    return {"std_r": u.spearman, "std_f": u.frame_spearman, "cov1": u.within_1std, "cov2": u.within_2std,
            "std_over_err": u.mean_std_mm / u.mean_error_mm, "error_mm": u.mean_error_mm}  # fmt: skip


def reliability(quality: np.ndarray, actual: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Hands sorted by their predicted ``quality`` (N,) into ``bins`` equal groups: each group's mean predicted and
    ``actual`` (N,) mean joint error (metres in, mm out)."""
    order = np.argsort(quality)
    return [{"predicted_mm": float(quality[g].mean() * 1000), "actual_mm": float(actual[g].mean() * 1000),
             "n": len(g)} for g in np.array_split(order, bins) if len(g)]  # fmt: skip


def fit_error_models(lifter: Lifter, fit_pairs: dict, held_pairs: dict, sets: list[tuple[str, ...]],
                     keep_misnamed: bool = False, weigh_disagreement: bool = False) -> tuple[dict, dict]:  # fmt: skip
    """(error model per expert set, the held-out figures per set: the model's and the checkpoint's joint_std's).

    The shape model is fitted on the fitting renders MediaPipe named right (``keep_misnamed``: on all of them); the
    coverage and the quality's calibration are set on every held-out render. One fitting render in ten is lifted the
    wrong way round (MediaPipe names every one of the real dev photographs alike); those err twice as much and carry a
    quarter of the log error's variance, so in a least-squares fit they set the weights (docs/evaluation.md). The
    evidence in :data:`LEFT_OUT` weighs 0 unless ``weigh_disagreement``."""
    leave_out = () if weigh_disagreement else LEFT_OUT
    models, report = {}, {}
    for mods in sets:
        key = modality_key(mods)
        fitting = closed_loop(lifter, fit_pairs, mods)
        spec = fit_shape(fitting if keep_misnamed else named_right_only(fitting), leave_out)
        held = closed_loop(lifter, held_pairs, mods)
        spec = calibrate_on(spec, held)
        j = ErrorModel(spec)(held.feats, held.rel, held.ref)
        models[key] = spec
        report[key] = {"hands": len(held.ref), "error_model": judge(j.joint_std, held.error),
                       "checkpoint_std": judge(held.spread, held.error),
                       "quality_spearman": spearman(j.quality, held.error[:, 1:].mean(1)),
                       "reliability": reliability(j.quality, held.error[:, 1:].mean(1))}  # fmt: skip
        log.info("error model %s: %s", key, report[key]["error_model"])
    return models, report


def write_reliability_png(report: dict, path: str | Path, title: str = "held-out renders") -> Path:
    """Predicted against actual mean joint error by decile, one line per expert set."""
    from train.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    top = 0.0
    for key, r in report.items():
        p = [b["predicted_mm"] for b in r["reliability"]]
        a = [b["actual_mm"] for b in r["reliability"]]
        ax.plot(p, a, "o-", label=key)
        top = max(top, *p, *a)
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="perfect")
    ax.set(xlabel="predicted mean joint error (mm)", ylabel="actual mean joint error (mm)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
