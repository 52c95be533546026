"""The error model: what a published hand's ``joint_std`` and ``quality`` say, from evidence about the answer itself.

Each placed hand is described by a few numbers that predict how wrong it is (:func:`hand_features`): the hand's size
in pixels; how far the placed 3D reprojects from MediaPipe's 2D landmarks (in hand sizes); how far MediaPipe's own
metric landmarks, placed the same way, reproject from its 2D (the detector disagreeing with itself); how far the
fused experts' answers lie from the fused one; MediaPipe's handedness score; how implausible the published answer's
bone lengths are (after the pull toward the 2D's rays, which stretches bones where the lifted shape and the 2D
disagree); how edge-on the palm is to the camera; and the landmark network's doubt that the crop holds a hand (one
minus its presence score). A linear model of the log of the hand's mean shape error
(in reference bones) on these, times a per-joint profile, gives each joint's shape error; the hand's unknown size adds
an error growing with each joint's distance from the wrist (``scale_sigma``, the spread of people's hand sizes and of
the lifter's proportions as the renders measured it). Both are learned on renders labelled by the real MediaPipe,
and the coverage factor ``kappa`` and the quality calibration on other held-out renders
(``python -m train fit-error-model``); nothing is fitted on real photographs.

Per hand it gives: ``joint_std`` (21,) metres, ``kappa`` times each joint's expected error (the wrist: 0);
``quality`` the expected mean joint error in metres (wrist-relative, the system's own scale); ``confidence`` the
probability that the mean joint error is below ``CONFIDENT_BELOW_M`` (from the spread of the actual error around
``quality`` on the held-out renders). It is stored in the checkpoint and the exported graphs as ``error_model``,
per set of fused experts: ``{"2d+world": {"features": [...], "mean": [...], "std": [...], "weights": [...],
"bias": b, "profile": [21], "scale_sigma": s, "kappa": k, "quality_bias": c, "quality_sigma": q}}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamhand.geometry import intrinsic_columns
from streamhand.modalities import INPUTS
from streamhand.modalities import key as modality_key
from streamhand.place.placement import solve_roots
from streamhand.skeleton import BONES

__all__ = ["CONFIDENT_BELOW_M", "FEATURES", "ErrorModel", "HandJudgement", "default_samples", "hand_features"]

#: ``confidence`` is the chance that a hand's mean joint error is below this (metres)
CONFIDENT_BELOW_M = 0.02
#: the evidence, in the order of :func:`hand_features`'s columns
FEATURES = ("log_size_px", "log_residual", "log_world_residual", "log_disagreement", "handedness_doubt",
            "bone_implausibility", "edge_on", "presence_doubt")  # fmt: skip
#: bone lengths of the average adult hand in reference bones (middle MCP-PIP), mediapipe21 bone order: what
#: ``bone_implausibility`` compares an answer with (streamhand.synth.hand at scale 1, proportions 1)
_BONE_TEMPLATE: np.ndarray | None = None
_PARENT, _CHILD = (np.array(v) for v in zip(*BONES))


def _template() -> np.ndarray:
    global _BONE_TEMPLATE
    if _BONE_TEMPLATE is None:
        from streamhand.synth.hand import forward_kinematics

        j = forward_kinematics(np.zeros((1, 21)), np.ones(1), np.ones((1, 5, 3)), np.zeros(1, bool))[0]
        lengths = np.array([np.linalg.norm(j[b] - j[a]) for a, b in BONES])
        _BONE_TEMPLATE = lengths / np.linalg.norm(j[10] - j[9])
    return _BONE_TEMPLATE


def _reprojection(uv: np.ndarray, cam: np.ndarray, fx, fy, cx, cy) -> np.ndarray:
    """(B, 21) pixel distance of the camera-frame points ``cam`` (B, 21, 3) projected from ``uv`` (B, 21, 2)."""
    z = np.maximum(cam[..., 2], 1e-3)
    u = fx[:, None] * cam[..., 0] / z + cx[:, None]
    v = fy[:, None] * cam[..., 1] / z + cy[:, None]
    return np.hypot(u - uv[..., 0], v - uv[..., 1])


def _norm(x: np.ndarray) -> np.ndarray:
    """The length of each vector along the last axis (np.linalg.norm without its overhead)."""
    return np.sqrt((x * x).sum(-1))


def _mean1(x: np.ndarray) -> np.ndarray:
    """The mean of each row of a (B, n) array: ``x.mean(1)``, the same numbers without its overhead."""
    return x.sum(1) / x.shape[1]


def hand_features(
    uv: np.ndarray,
    joints_cam: np.ndarray,
    k: tuple[Any, Any, Any, Any],
    world: np.ndarray | None = None,
    disagreement: np.ndarray | None = None,
    handedness_score: np.ndarray | None = None,
    presence: np.ndarray | None = None,
    needed: np.ndarray | None = None,
    answer: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The evidence about B placed hands: ((B, len(FEATURES)) features, (B, 21) each joint's reprojection residual in
    hand sizes, None where ``log_residual`` is not needed).

    ``uv`` (B, 21, 2) MediaPipe's landmarks (px); ``joints_cam`` (B, 21, 3) the placed answer (metres, camera frame,
    before smoothing); ``k`` (fx, fy, cx, cy), all scalars or all (B,); ``world`` (B, 21, 3) MediaPipe's metric
    landmarks; ``disagreement`` (B, 21) the fused experts' distance from the fused answer in reference bones (None: one
    expert); ``handedness_score`` (B,) MediaPipe's; ``presence`` (B,) the landmark network's hand-presence score
    (``Detection.score``). ``needed`` (len(FEATURES),) bool: the features a model weighs
    (the others, left 0, are not computed: a run spends nothing on evidence its error model ignores). ``answer``
    (B, 21, 3) the published joints (``joints_cam`` pulled toward the 2D's rays,
    :func:`streamhand.place.placement.pull_to_rays`; None: the placement itself): the bones and the palm's facing
    are read from it, the reprojection from the placement."""
    need = dict(zip(FEATURES, np.ones(len(FEATURES), bool) if needed is None else np.asarray(needed, bool)))
    uv = np.asarray(uv, np.float64)
    cam = np.asarray(joints_cam, np.float64)
    b = len(uv)
    zeros = np.zeros(b)
    fx, fy, cx, cy = np.broadcast_to(intrinsic_columns(*k)[..., 0], (4, b))  # one broadcast, four rows
    size = np.maximum((uv.max(1) - uv.min(1)).max(1), 1.0)
    res = _reprojection(uv, cam, fx, fy, cx, cy) / size[:, None] if need["log_residual"] else None
    if world is not None and need["log_world_residual"]:
        w = np.asarray(world, np.float64)
        w = w - w[:, :1]
        wres = _reprojection(uv, w + solve_roots(uv, w, fx, fy, cx, cy)[:, None], fx, fy, cx, cy)
        log_wres = np.log(_mean1(wres) / size + 1e-3)
    else:
        log_wres = zeros
    dis = zeros if disagreement is None else np.log(_mean1(np.asarray(disagreement)[:, 1:]) + 1e-3)
    doubt = zeros if handedness_score is None else 1.0 - np.clip(np.asarray(handedness_score, float), 0, 1)
    absent = zeros if presence is None else 1.0 - np.clip(np.asarray(presence, float), 0, 1)
    pub = cam if answer is None else np.asarray(answer, np.float64)
    rel = pub - pub[:, :1]
    if need["bone_implausibility"]:
        bones = _norm(rel[:, _CHILD] - rel[:, _PARENT])
        ref = np.maximum(_norm(rel[:, 10] - rel[:, 9]), 1e-6)
        implausible = _mean1(np.abs(np.log(np.maximum(bones / ref[:, None], 1e-3) / _template())))
    else:
        implausible = zeros
    edge_on = _edge_on(pub, rel) if need["edge_on"] else zeros
    log_res = np.log(_mean1(res[:, 1:]) + 1e-3) if res is not None else zeros
    feats = np.stack([np.log(size / 100.0), log_res, log_wres, dis, doubt, implausible, edge_on, absent], 1)
    return feats, res


_NEXT, _AFTER = np.array([1, 2, 0]), np.array([2, 0, 1])  # each axis's next and the one after: a cross product's


def _edge_on(cam: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """(B,) how edge-on each palm is to the camera: 1 minus the cosine between its normal and the ray to it."""
    a, c = rel[:, 5], rel[:, 17]  # the palm's normal: index MCP x pinky MCP (from the wrist), a cross product
    normal = a[:, _NEXT] * c[:, _AFTER] - a[:, _AFTER] * c[:, _NEXT]  # (a_y c_z - a_z c_y, a_z c_x - a_x c_z, ...)
    normal /= np.maximum(_norm(normal), 1e-9)[:, None]
    ray = cam[:, [0, 5, 9, 13, 17]].sum(1)
    ray /= np.maximum(_norm(ray), 1e-9)[:, None]
    return 1.0 - np.abs((normal * ray).sum(-1))


@dataclass(frozen=True)
class HandJudgement:
    """What the error model says of B hands."""

    joint_std: np.ndarray  # (B, 21) metres
    quality: np.ndarray  # (B,) expected mean joint error, metres
    confidence: np.ndarray  # (B,) probability that the mean joint error is below CONFIDENT_BELOW_M


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal's cumulative distribution, elementwise."""
    return np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in np.ravel(x)]).reshape(np.shape(x))


class ErrorModel:
    """One fitted error model (one set of fused experts); see the module's docstring for ``spec``."""

    def __init__(self, spec: dict):
        missing = {"features", "mean", "std", "weights", "bias", "profile", "scale_sigma", "kappa", "quality_bias",
                   "quality_sigma"} - set(spec)  # fmt: skip
        if missing:
            raise ValueError(f"error model lacks {', '.join(sorted(missing))}")
        names = list(spec["features"])
        if len(set(names)) < len(names) or any(f not in FEATURES for f in names):
            raise ValueError(f"error model features {names} are not among this version's {list(FEATURES)}")
        mean, std, weights = (np.asarray(spec[q], float) for q in ("mean", "std", "weights"))
        if not len(weights) == len(mean) == len(std) == len(names):
            raise ValueError(f"error model's weights, mean and std do not match its {len(names)} features")
        # a model fitted before some evidence existed weighs it 0 (it is then not computed)
        at = [FEATURES.index(f) for f in names]
        self.mean, self.std, self.weights = np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES))
        self.mean[at], self.std[at], self.weights[at] = mean, np.maximum(std, 1e-9), weights
        self.bias = float(spec["bias"])
        self.profile = np.asarray(spec["profile"], float)
        if self.profile.shape != (21,):
            raise ValueError(f"error model's profile has {self.profile.size} joints, not 21")
        self.needed = self.weights != 0  # the evidence it weighs: the rest is not computed for it
        self.scale_sigma, self.kappa = float(spec["scale_sigma"]), float(spec["kappa"])
        self.quality_bias, self.quality_sigma = float(spec["quality_bias"]), max(float(spec["quality_sigma"]), 1e-3)
        self.spec = spec

    def expected_errors(self, feats: np.ndarray, rel: np.ndarray, ref_m: np.ndarray) -> np.ndarray:
        """(B, 21) each joint's expected error (metres): the shape error predicted from ``feats`` (B, F) in reference
        bones times ``ref_m`` (B,), and the scale's error along ``rel`` (B, 21, 3), the answer's wrist-relative
        joints (metres)."""
        log_e = ((np.asarray(feats, float) - self.mean) / self.std) @ self.weights + self.bias
        shape = np.exp(log_e)[:, None] * self.profile[None] * np.asarray(ref_m, float)[:, None]
        size = self.scale_sigma * _norm(rel)
        return np.sqrt(shape**2 + size**2)

    def __call__(self, feats: np.ndarray, rel: np.ndarray, ref_m: np.ndarray) -> HandJudgement:
        e = self.expected_errors(feats, rel, ref_m)
        e[:, 0] = 0.0  # the wrist is the origin of wrist-relative joints
        quality = self.quality_bias * _mean1(e[:, 1:])
        conf = _phi((np.log(CONFIDENT_BELOW_M) - np.log(np.maximum(quality, 1e-6))) / self.quality_sigma)
        return HandJudgement(self.kappa * e, quality, conf)

    def judge_hands(self, uv: np.ndarray, joints_cam: np.ndarray, k: tuple[Any, Any, Any, Any], ref_m: np.ndarray,
                    world: np.ndarray | None = None, disagreement: np.ndarray | None = None,
                    handedness_score: np.ndarray | None = None, presence: np.ndarray | None = None,
                    answer: np.ndarray | None = None) -> HandJudgement:  # fmt: skip
        """B placed hands (the arguments of :func:`hand_features`; ``ref_m`` (B,) the reference bone each was placed
        with). The size term follows the published ``answer``'s joints (the placement's where None)."""
        feats, _ = hand_features(uv, joints_cam, k, world, disagreement, handedness_score, presence, self.needed,
                                 answer)  # fmt: skip
        pub = np.asarray(joints_cam if answer is None else answer, np.float64)
        return self(feats, pub - pub[:, :1], np.asarray(ref_m, np.float64))


def default_samples(judged: Iterable[str], modalities: Iterable[str]) -> int:
    """Posterior samples a run fusing ``modalities`` takes unless told, given the sets of experts (``2d+world``) a
    model's error model ``judged``: none where it judges this set (joint_std comes from it), else 16 (a set it does
    not judge, in a checkpoint fitted before the fits covered every set, would otherwise publish a joint_std of 0)."""
    mods = {m for e in modalities for m in e.split("+")} & set(INPUTS)
    return 0 if modality_key(mods) in set(judged) else 16


def error_model_for(models: dict | None, key: str) -> ErrorModel | None:
    """The fitted model for the expert set ``key`` (``"2d+world"``) of a model's ``error_model`` metadata, if any."""
    spec = (models or {}).get(key)
    return ErrorModel(spec) if spec else None
