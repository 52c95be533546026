"""MediaPipe's hand networks on PyTorch (CPU or CUDA) or ONNX Runtime, with our own tracking logic.

:class:`NetworkHands` is a drop-in for :class:`streamhand.detect.mediapipe_hands.MediaPipeHands` (same
:class:`~streamhand.detect.mediapipe_hands.Detection` out, the same knobs) that runs the palm detector and the
hand landmark network of the installed mediapipe package, converted once
(:mod:`streamhand.export.hand_networks`, cached in :func:`default_models_dir`). The graph logic
follows MediaPipe's hand tracking graph: palm detection only while fewer than ``max_hands`` hands are tracked
(every frame in static mode), the next region from the landmarks, all hands of a frame in one batched landmark
call. Handedness is un-mirrored exactly as in :mod:`streamhand.detect.mediapipe_hands`, and one hand reported
twice is reported once (:mod:`streamhand.detect.dedup`). ``flip_average=True`` reads every hand twice, from its crop
and from the crop mirrored, in the same batch, and averages the two readings (:func:`flip_averaged`).

:func:`compare_with_reference` and :func:`time_per_frame` measure agreement and latency against another detector.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamhand.cache import cache_dir
from streamhand.detect import palm as P
from streamhand.detect.dedup import merge_duplicates
from streamhand.detect.mediapipe_hands import Detection

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime", "tensorrt")
DEVICES = ("cpu", "cuda")
PALM_MODEL = "palm_detection_full"
LANDMARK_MODEL = "hand_landmark_full"
#: MediaPipe's handedness labels (modules/hand_landmark/handedness.txt): the network's score is for "Left"
#: in MediaPipe's mirrored convention, which is the person's right hand in a true (un-mirrored) image
_MP_FIRST_LABEL_IS_PERSON = "right"


def default_models_dir() -> Path:
    """Where converted hand networks are cached: the cache folder's ``hand_networks/<mediapipe version>``
    (:func:`streamhand.cache.cache_dir`), so that another mediapipe release is converted afresh."""
    return cache_dir("hand_networks", f"mediapipe-{mediapipe_version()}")


class HandNetworksMissing(ValueError):
    """MediaPipe's hand networks are not converted yet (``streamhand.export.hand_networks`` converts them)."""


class HandNetworksDamaged(HandNetworksMissing):
    """Converted networks in ``folder`` that do not load (a conversion cut short by a kill, a damaged disk): the
    detector's first use converts them again."""

    def __init__(self, message: str, folder: Path):
        super().__init__(message)
        self.folder = folder


def require_models(models_dir: str | Path | None = None) -> Path:
    """``models_dir`` (default: the cache's) if both converted networks are in it, else :class:`HandNetworksMissing`."""
    d = Path(models_dir) if models_dir is not None else default_models_dir()
    need = [f"{n}.{ext}" for n in (PALM_MODEL, LANDMARK_MODEL) for ext in ("pt", "onnx")]
    if not all((d / f).is_file() for f in need):
        raise HandNetworksMissing(f"MediaPipe's hand networks are not converted in {d} "
                                  "(streamhand build-engine --hand-networks converts them)")  # fmt: skip
    return d


class _TorchRunner:
    def __init__(self, path: Path, device: str, threads: int | None):
        import torch

        from streamhand.detect.tflite_net import TFLiteNet
        from streamhand.gpu.cuda_graphs import GraphReplay

        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        self.net = TFLiteNet.load(path).eval().to(self.device)
        self._graphs = GraphReplay(self.device)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            if self.device.type == "cuda":
                # each batch size is captured once as a CUDA graph and replayed (the networks are small), with one
                # transfer each way
                return self._graphs.host(x.shape[0], lambda: self.net, np.asarray(x, dtype=np.float32))
            return [o.float().numpy() for o in self.net(torch.from_numpy(x))]

    def warm_up(self, batch_sizes: range) -> None:
        """On CUDA, capture each batch size's graph now (the first capture of a batch size also loads its
        kernels: seconds on a GPU's first use, which mid-run would stall the frame it falls on)."""
        if self.device.type != "cuda":
            return
        _, h, w, c = self.net.input_shape
        for b in batch_sizes:
            self(np.zeros((b, h, w, c), np.float32))


def mediapipe_version() -> str:
    """The installed mediapipe's version ("unknown" where it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        return "unknown"


def engine_source_problems(sidecar: dict, converted: Path, mediapipe: str) -> list[str]:
    """Why a hand network's engine was not built from the networks this install runs (empty: it was): its sidecar
    names another mediapipe release, or its ONNX differs from the conversion in ``converted`` (where there is one).
    Without this an upgraded mediapipe would run the old networks' engines without a word."""
    from streamhand.model_files import file_sha256

    built_from = sidecar.get("mediapipe")
    if built_from and built_from != mediapipe:
        return [f"built from mediapipe {built_from}'s hand networks, this is mediapipe {mediapipe}: rebuild it "
                "(`streamhand build-engine --hand-networks`)"]  # fmt: skip
    if converted.is_file() and file_sha256(converted) != sidecar.get("onnx_sha256"):
        return [f"built from another conversion of {converted.name} than the one in {converted.parent}: rebuild it "
                "(`streamhand build-engine --hand-networks`)"]  # fmt: skip
    return []


class _TrtRunner:
    """A TensorRT engine of one network (``streamhand build-engine --hand-networks``), checked against its sidecar:
    this machine, and the networks it was built from (``converted``: this install's conversion of that network)."""

    def __init__(self, path: Path, device: str, threads: int | None, converted: Path):
        from streamhand.gpu.tensorrt_runner import TensorRTRunner
        from streamhand.sidecar import SidecarError, compatibility_problems, read_sidecar, this_machine

        if device != "cuda":
            raise ValueError("runtime 'tensorrt' runs on device 'cuda' only")
        try:
            side = read_sidecar(path)
        except SidecarError as e:
            raise ValueError(f"{e} (build it with `streamhand build-engine --hand-networks`)") from None
        problems = engine_source_problems(side, converted, mediapipe_version()) + compatibility_problems(
            side, this_machine())  # fmt: skip
        if problems:
            raise ValueError(f"{path.name}: {'; '.join(problems)}")
        shapes = {t["name"]: t["shape"] for t in side["inputs"] + side["outputs"]}
        self.input = side["inputs"][0]["name"]
        self.outputs = [t["name"] for t in side["outputs"]]
        self.max_batch = int(side["batch"][2])
        self.runner = TensorRTRunner(path, self.max_batch, shapes)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        out = self.runner({self.input: x})
        return [out[n] for n in self.outputs]


class _OrtRunner:
    def __init__(self, path: Path, device: str, threads: int | None):
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("device 'cuda' asked for, but ONNX Runtime has no CUDAExecutionProvider")
            providers.insert(0, "CUDAExecutionProvider")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), so, providers=providers)
        self.input = self.sess.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return list(self.sess.run(None, {self.input: x}))


def flip_averaged(run: Callable[[np.ndarray], list[np.ndarray]], crops: np.ndarray) -> list[np.ndarray]:
    """The landmark network's outputs for ``crops`` (N, 224, 224, 3), each the mean of its reading of the crop and
    of the crop mirrored left to right, un-mirrored: landmarks' x reflected about the crop's centre, world
    landmarks' x negated, the handedness score turned to the other hand's; presence averaged, depth as read. The
    same outputs, in the same shapes, as ``run(crops)``; one call of ``run`` with 2N crops."""
    n = len(crops)
    lms, presence, handed, world = (np.asarray(o, np.float32) for o in run(
        np.ascontiguousarray(np.concatenate([crops, crops[:, :, ::-1]]))))  # fmt: skip
    lm_m = lms[n:].reshape(n, -1, 3).copy()
    lm_m[..., 0] = (P.LANDMARK_INPUT - 1) - lm_m[..., 0]  # crop pixel j was pixel 223 - j of the mirror
    w_m = world[n:].reshape(n, -1, 3).copy()
    w_m[..., 0] = -w_m[..., 0]
    return [(lms[:n] + lm_m.reshape(lms[:n].shape)) / 2, (presence[:n] + presence[n:]) / 2,
            (handed[:n] + 1.0 - handed[n:]) / 2, (world[:n] + w_m.reshape(world[:n].shape)) / 2]


def _engine(engines_dir: str | Path, network: str) -> Path:
    """The engine of ``network`` in ``engines_dir`` (fp16 preferred), or ValueError saying how to build one."""
    for precision in ("fp16", "fp32"):
        p = Path(engines_dir) / f"{network}_{precision}.engine"
        if p.is_file():
            return p
    raise ValueError(f"no TensorRT engine for {network} in {engines_dir} (`streamhand build-engine --hand-networks`)")


class NetworkHands:
    """MediaPipe's hand networks with our tracking; ``tracking=True`` detects palms only when a hand is missing.

    ``runtime`` "torch" runs the converted ``.pt`` networks (on CUDA as CUDA graphs), "onnxruntime" the ``.onnx``
    files, "tensorrt" the engines ``streamhand build-engine --hand-networks`` wrote to ``engines_dir``; ``device``
    "cuda" needs a CUDA build of that runtime. ``threads`` (optional) sets the runtime's CPU threads (for torch: the
    process-wide ``torch.set_num_threads``). ``Detection.score`` is the landmark network's hand-presence score
    (as MediaPipe's graph gives it, :mod:`streamhand.detect.mediapipe_graph`); a hand whose presence score is under
    ``min_tracking_confidence`` is dropped. ``flip_average`` averages each hand's reading with its mirrored crop's
    (:func:`flip_averaged`; twice the landmark network's work).
    """

    def __init__(
        self,
        max_hands: int = 2,
        tracking: bool = True,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        runtime: str = "torch",
        device: str = "cpu",
        models_dir: str | Path | None = None,
        threads: int | None = None,
        engines_dir: str | Path = "engines",
        flip_average: bool = False,
    ):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if not (isinstance(max_hands, int) and max_hands >= 1):
            raise ValueError(f"max_hands must be a positive integer, got {max_hands!r}")
        for knob, v in (("min_detection_confidence", min_detection_confidence),
                        ("min_tracking_confidence", min_tracking_confidence)):  # fmt: skip
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{knob} must be in [0, 1], got {v!r}")
        self.max_hands = max_hands
        self.tracking = tracking
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.runtime, self.device = runtime, device
        self.flip_average = bool(flip_average)
        if runtime == "tensorrt":
            d = Path(models_dir) if models_dir is not None else default_models_dir()
            self._palm = _TrtRunner(_engine(engines_dir, PALM_MODEL), device, threads, d / f"{PALM_MODEL}.onnx")
            self._landmark = _TrtRunner(_engine(engines_dir, LANDMARK_MODEL), device, threads,
                                        d / f"{LANDMARK_MODEL}.onnx")  # fmt: skip
        else:
            d = require_models(models_dir)
            runner = _TorchRunner if runtime == "torch" else _OrtRunner
            ext = "pt" if runtime == "torch" else "onnx"
            try:
                self._palm = runner(d / f"{PALM_MODEL}.{ext}", device, threads)
                self._landmark = runner(d / f"{LANDMARK_MODEL}.{ext}", device, threads)
            except ValueError:  # a device this machine lacks
                raise
            except Exception as e:  # PyTorch's and ONNX Runtime's own types for a file they cannot read
                why = " ".join(str(e).split())[:200]
                raise HandNetworksDamaged(f"MediaPipe's converted hand networks in {d} do not load ({why})",
                                          d) from None  # fmt: skip
            if isinstance(self._palm, _TorchRunner) and device == "cuda":
                t0 = time.perf_counter()
                self._palm.warm_up(range(1, 2))
                # new palms join the tracked hands before duplicates merge: up to 2 * max_hands - 1 crops a frame,
                # each read twice when flip-averaged
                crops = (2 * max_hands - 1) * (2 if self.flip_average else 1)
                self._landmark.warm_up(range(1, crops + 1))
                log.info("hand networks: CUDA graphs captured in %.1f s", time.perf_counter() - t0)
        self._anchors = P.ssd_anchors()
        self._tracked: list[P.Region] = []
        self.last_regions: list[P.Region] = []  # the regions the landmark network saw on the last frame

    def reset(self) -> None:
        """Forget tracked hands (the next frame starts with palm detection)."""
        self._tracked = []

    def detect_palms(self, rgb: np.ndarray, min_score: float | None = None) -> list[P.PalmDetection]:
        """Palms in ``rgb`` (pixels, best first) scoring at least ``min_score`` (default: the detector's
        ``min_detection_confidence``), before the ``max_hands`` limit."""
        h, w = rgb.shape[:2]
        m = P.letterbox_matrix(w, h)
        x = P.warp(rgb, m, P.PALM_INPUT, zero_border=True).astype(np.float32)[None] / 255.0
        boxes, scores = self._palm(x)
        floor = self.min_detection_confidence if min_score is None else float(min_score)
        return P.palms_from_outputs(boxes[0], scores[0], self._anchors, m, floor)

    def presence_at(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> float:
        """The landmark network's hand-presence score (0..1) for the crop tracking would take around the hand whose
        (21, 2) landmarks (pixels) are ``landmarks_px`` (MediaPipe's region from landmarks), whatever it is."""
        _, (_, presence, _, _) = self._read(np.ascontiguousarray(rgb), [P.landmarks_to_region(landmarks_px)])
        return float(presence[0, 0])

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """Detect hands in an RGB uint8 image (H, W, 3)."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {got}")
        if min(rgb.shape[:2]) < 2:
            raise ValueError(f"image too small: {rgb.shape}")
        rgb = np.ascontiguousarray(rgb)
        tracked = self._tracked if self.tracking else []
        regions = list(tracked)
        if len(tracked) < self.max_hands:
            palms = self.detect_palms(rgb)[: self.max_hands]
            regions = P.associate([P.palm_to_region(p) for p in palms], tracked)
        self.last_regions = regions
        if not regions:
            self._tracked = []
            return []
        mats, (lms, presence, handed, world) = self._read(rgb, regions)
        dets: list[Detection] = []
        next_regions: list[P.Region] = []
        for i, (r, m) in enumerate(zip(regions, mats)):
            if float(presence[i, 0]) < self.min_tracking_confidence:
                continue
            raw = lms[i].reshape(21, 3).astype(np.float64)
            px = P.apply_matrix(m, raw[:, :2])
            z = raw[:, 2] / P.LANDMARK_INPUT / P.NORMALIZE_Z * r.width  # MediaPipe's z (normalised) times width
            c, s = math.cos(r.rotation), math.sin(r.rotation)
            wl = world[i].reshape(21, 3).astype(np.float64)
            wr = np.stack([c * wl[:, 0] - s * wl[:, 1], s * wl[:, 0] + c * wl[:, 1], wl[:, 2]], -1)
            p_first = float(handed[i, 0])  # MediaPipe: "Left" (its first label) with this score, else "Right"
            if p_first >= 0.5:
                label, hscore = _MP_FIRST_LABEL_IS_PERSON, p_first
            else:
                label, hscore = ("left" if _MP_FIRST_LABEL_IS_PERSON == "right" else "right"), 1.0 - p_first
            dets.append(Detection(px, z, wr, label, hscore, float(presence[i, 0])))
            next_regions.append(P.landmarks_to_region(px))
        merged = merge_duplicates(dets)
        if len(merged) < len(dets):
            log.debug("merged %d duplicate detection(s) of one hand", len(dets) - len(merged))
            keep = {id(d) for d in merged}
            next_regions = [r for d, r in zip(dets, next_regions) if id(d) in keep]
        self._tracked = next_regions[: self.max_hands]
        return merged

    def _read(self, rgb: np.ndarray, regions: list[P.Region]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The landmark network on the crops of ``rgb`` (contiguous) that ``regions`` give: (each crop's matrix,
        the network's outputs: landmarks, presence, handedness, world landmarks)."""
        mats = [P.region_matrix(r, P.LANDMARK_INPUT) for r in regions]
        batch = np.stack([P.warp(rgb, m, P.LANDMARK_INPUT, zero_border=False) for m in mats])
        return mats, self._landmarks(batch.astype(np.float32) / 255.0)

    def _landmarks(self, crops: np.ndarray) -> list[np.ndarray]:
        """The landmark network on ``crops`` (flip-averaged if asked), in batches the runtime takes."""
        if self.flip_average:
            return flip_averaged(self._run_landmark, crops)
        return self._run_landmark(crops)

    def _run_landmark(self, x: np.ndarray) -> list[np.ndarray]:
        step = getattr(self._landmark, "max_batch", None) or len(x)
        if len(x) <= step:
            return self._landmark(x)
        parts = [self._landmark(x[i : i + step]) for i in range(0, len(x), step)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

    def close(self) -> None:
        self._tracked = []

    def __enter__(self) -> NetworkHands:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _match(ours: Sequence[Detection], ref: Sequence[Detection]) -> list[tuple[int, int, float]]:
    """Greedy pairs (i ours, j ref, mean landmark distance px), closest first, each hand used once."""
    pairs = sorted(
        (float(np.linalg.norm(a.landmarks_px - b.landmarks_px, axis=1).mean()), i, j)
        for i, a in enumerate(ours)
        for j, b in enumerate(ref)
    )
    used_i: set[int] = set()
    used_j: set[int] = set()
    out = []
    for d, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            out.append((i, j, d))
    return out


def compare_with_reference(
    ours: Callable[[np.ndarray], list[Detection]],
    reference: Callable[[np.ndarray], list[Detection]],
    frames: Iterable[np.ndarray],
) -> dict[str, float]:
    """Run both detectors on ``frames``: hands found by each, hands paired (same hand: mean landmark distance
    under half the hand's size), per-landmark pixel differences of the pairs (median, mean, 95th percentile),
    the share of pairs with the same handedness, and the pairs' mean z (image-width units) and world (mm)
    differences."""
    n = found_ours = found_ref = frames_both = frames_any_ours = frames_any_ref = 0
    diffs: list[np.ndarray] = []
    z_diffs: list[np.ndarray] = []
    world_diffs: list[np.ndarray] = []
    same_hand = paired = 0
    for rgb in frames:
        a, b = ours(rgb), reference(rgb)
        n += 1
        found_ours += len(a)
        found_ref += len(b)
        frames_any_ours += bool(a)
        frames_any_ref += bool(b)
        frames_both += bool(a) and bool(b)
        for i, j, d in _match(a, b):
            size = max(np.ptp(b[j].landmarks_px, axis=0).max(), 1.0)
            if d > 0.5 * size:
                continue
            paired += 1
            diffs.append(np.linalg.norm(a[i].landmarks_px - b[j].landmarks_px, axis=1))
            z_diffs.append(np.abs(a[i].landmarks_z - b[j].landmarks_z))
            world_diffs.append(np.linalg.norm(a[i].world - b[j].world, axis=1))
            same_hand += a[i].handedness == b[j].handedness
    all_d = np.concatenate(diffs) if diffs else np.zeros(0)
    return {
        "frames": n,
        "hands_ours": found_ours,
        "hands_reference": found_ref,
        "frames_with_hand_ours": frames_any_ours,
        "frames_with_hand_reference": frames_any_ref,
        "frames_with_hand_both": frames_both,
        "pairs": paired,
        "median_px": float(np.median(all_d)) if all_d.size else float("nan"),
        "mean_px": float(all_d.mean()) if all_d.size else float("nan"),
        "p95_px": float(np.percentile(all_d, 95)) if all_d.size else float("nan"),
        "handedness_agreement": same_hand / paired if paired else float("nan"),
        "z_mean_abs": float(np.concatenate(z_diffs).mean()) if z_diffs else float("nan"),
        "world_mean_mm": float(np.concatenate(world_diffs).mean() * 1e3) if world_diffs else float("nan"),
    }


def time_per_frame(detector: Callable[[np.ndarray], Any], frames: Sequence[np.ndarray], warmup: int = 3) -> dict:
    """Per-frame latency of ``detector`` over ``frames`` (ms: median, mean, 90th percentile)."""
    for rgb in frames[:warmup]:
        detector(rgb)
    t = []
    for rgb in frames:
        t0 = time.perf_counter()
        detector(rgb)
        t.append((time.perf_counter() - t0) * 1e3)
    a = np.asarray(t)
    return {"median_ms": float(np.median(a)), "mean_ms": float(a.mean()), "p90_ms": float(np.percentile(a, 90))}
