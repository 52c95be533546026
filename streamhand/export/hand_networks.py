"""Build-time conversion of MediaPipe's bundled hand networks to PyTorch and ONNX.

It owns writing ``palm_detection_full.tflite`` and ``hand_landmark_full.tflite`` (from the installed
mediapipe package), converted by :mod:`streamhand.detect.tflite_convert`, as plain network descriptions
(``<name>.pt``, run by :class:`streamhand.detect.tflite_net.TFLiteNet`) and ONNX files (``<name>.onnx``: opset 17,
dynamic batch, ``streamhand.*`` metadata: source file and its sha256, input size and layout, output names) into a
cache folder. A self-check compares the torch module with ONNX Runtime on random inputs. Neither the runtime nor
the tests need the ``tflite`` or ``tensorflow`` packages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from streamhand.detect.tflite_convert import NETWORKS, convert_tflite, mediapipe_model_path
from streamhand.detect.tflite_net import FORMAT, TFLiteNet
from streamhand.detect.tflite_reader import read_tflite
from streamhand.model_files import ExportError
from streamhand.outputs import remove_abandoned

log = logging.getLogger(__name__)

OPSET = 17
PARITY_TOL = 1e-3  # the self-check's bound (float32 on both sides; observed differences are ~1e-5)

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_onnx(net: TFLiteNet, path: Path, metadata: dict[str, str]) -> None:
    """``net`` to ONNX (opset 17, dynamic batch) with ``metadata`` in the file's metadata_props."""
    import onnx

    h, w, c = net.input_shape[1:]
    dummy = torch.rand(2, h, w, c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (dummy,), str(path), dynamo=False, opset_version=OPSET, input_names=["input"],
                          output_names=net.output_labels,
                          dynamic_axes={n: {0: "batch"} for n in ["input", *net.output_labels]})  # fmt: skip
    m = onnx.load(str(path))
    for k, v in metadata.items():
        m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def parity_check(net: TFLiteNet, onnx_path: Path, batch: int = 2, seed: int = 0) -> float:
    """The largest absolute output difference between ``net`` and ONNX Runtime on random inputs."""
    import onnxruntime as ort

    h, w, c = net.input_shape[1:]
    x = np.random.default_rng(seed).random((batch, h, w, c), dtype=np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in net(torch.from_numpy(x))]
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})
    return max(float(np.abs(a - b).max()) for a, b in zip(ref, got))


def convert_hand_networks(out_dir: str | Path, check: bool = True) -> dict[str, Path]:
    """Convert both hand networks into ``out_dir``: ``{"<name>.pt": path, "<name>.onnx": path, ...}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for net_name, (_, labels) in NETWORKS.items():
        t0 = time.perf_counter()
        src = mediapipe_model_path(net_name)
        model = read_tflite(src)
        desc = convert_tflite(model, labels)
        sha = _sha256(src)
        h, w = model.tensors[model.inputs[0]].shape[1:3]
        meta = {
            "streamhand.format": FORMAT,
            "streamhand.source": src.name,
            "streamhand.source_sha256": sha,
            "streamhand.input_size": f"{w}x{h}",
            "streamhand.input_layout": "NHWC float32 RGB in [0, 1]",
            "streamhand.outputs": json.dumps(labels),
        }
        desc["meta"].update({"source": src.name, "source_sha256": sha, "input_size": [w, h]})
        pt = out / f"{net_name}.pt"
        onnx_path = out / f"{net_name}.onnx"
        remove_abandoned(pt)  # the part files of conversions that were killed
        remove_abandoned(onnx_path)
        # per process: two first runs converting at once each write their own and rename a whole file
        tmp_pt, tmp_onnx = (pt.with_suffix(f".pt.{os.getpid()}.tmp"), onnx_path.with_suffix(f".onnx.{os.getpid()}.tmp"))
        torch.save(desc, str(tmp_pt))
        net = TFLiteNet.load(tmp_pt).eval()
        export_onnx(net, tmp_onnx, meta)
        if check:
            diff = parity_check(net, tmp_onnx)
            if diff > PARITY_TOL:
                raise RuntimeError(f"{net_name}: torch and ONNX Runtime differ by {diff:.2e} (> {PARITY_TOL})")
        else:
            diff = float("nan")
        os.replace(tmp_onnx, onnx_path)
        os.replace(tmp_pt, pt)  # the .pt last: its presence marks a finished conversion
        paths[f"{net_name}.pt"], paths[f"{net_name}.onnx"] = pt, onnx_path
        log.info("converted %s (%d ops: %s) in %.1f s; torch vs ONNX Runtime max diff %.1e", src.name,
                 len(model.ops), model.op_counts(), time.perf_counter() - t0, diff)  # fmt: skip
    return paths


def prepare_hand_networks(models_dir: str | Path | None = None) -> Path:
    """``models_dir`` (default: the cache's, per mediapipe release) with both networks converted, converting them
    once where they are missing; the runtime's :class:`~streamhand.detect.gpu_hands.NetworkHands` reads them."""
    from streamhand.detect.gpu_hands import HandNetworksMissing, default_models_dir, require_models

    d = Path(models_dir) if models_dir is not None else default_models_dir()
    try:
        return require_models(d)
    except HandNetworksMissing:
        log.info("converting MediaPipe's hand networks into %s (once; cached for later runs)", d)
        try:
            convert_hand_networks(d)
        except OSError as e:  # a read-only or full cache: one line, with where the cache can be moved
            raise ExportError(f"MediaPipe's hand networks could not be written into {d} "
                              f"({e.strerror or type(e).__name__}); point STREAMHAND_CACHE at a writable folder"
                              ) from None  # fmt: skip
    return require_models(d)
