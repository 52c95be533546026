"""The JSON sidecar written beside every TensorRT engine, and the check that an engine suits this machine
(torch-free: the runtime reads what ``streamhand build-engine`` writes).

An engine runs only on the GPU model and TensorRT version it was built with; the sidecar records both
(plus CUDA/torch versions, precision, I/O names, shapes and dtypes, the ONNX sha256, the build options and
time), and :func:`compatibility_problems` says, in words, why a given engine cannot be used here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIDECAR_FORMAT = "streamhand-engine/1"
REQUIRED = ("format", "model_id", "modalities", "tensorrt", "gpu", "compute_capability", "precision", "inputs",
            "outputs", "onnx_sha256", "batch")  # fmt: skip


class SidecarError(ValueError):
    """A sidecar that is missing, unreadable or incomplete."""


@dataclass(frozen=True)
class Machine:
    """What an engine must match: the GPU and the TensorRT version of this machine."""

    gpu: str | None  # e.g. "NVIDIA H100 80GB HBM3"; None without a CUDA GPU
    compute_capability: str | None  # "9.0"
    tensorrt: str | None  # "10.13.0.35"; None without TensorRT


def sidecar_path(engine: str | Path) -> Path:
    return Path(engine).with_suffix(".json")


def write_sidecar(engine: str | Path, data: dict[str, Any]) -> Path:
    p = sidecar_path(engine)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps({"format": SIDECAR_FORMAT, **data}, indent=2, sort_keys=True))
    os.replace(tmp, p)
    return p


def read_sidecar(engine: str | Path) -> dict[str, Any]:
    p = sidecar_path(engine)
    if not p.is_file():
        raise SidecarError(f"{p}: no sidecar beside the engine (rebuild it with `streamhand build-engine`)")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SidecarError(f"{p}: unreadable sidecar ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise SidecarError(f"{p}: the sidecar is not a JSON object")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise SidecarError(f"{p}: the sidecar lacks {', '.join(missing)}")
    if data["format"] != SIDECAR_FORMAT:
        raise SidecarError(f"{p}: sidecar format {data['format']!r}, expected {SIDECAR_FORMAT!r}")
    wrong = _wrong_field(data)
    if wrong:
        raise SidecarError(f"{p}: the sidecar's {wrong} (rebuild the engine with `streamhand build-engine`)")
    return data


def _is_tensors(v: object) -> bool:
    return isinstance(v, list) and all(
        isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("shape"), list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in t["shape"]) for t in v
    )  # fmt: skip


def _wrong_field(data: dict[str, Any]) -> str:
    """The first field of a sidecar that is not what the reader relies on, in words ("" where all are)."""
    checks: list[tuple[str, bool, str]] = [
        ("model_id", isinstance(data["model_id"], str), "a text"),
        ("modalities", isinstance(data["modalities"], list) and all(isinstance(m, str) for m in data["modalities"]),
         "a list of names"),
        ("tensorrt", isinstance(data["tensorrt"], str), "a version text"),
        ("gpu", isinstance(data["gpu"], str), "a GPU's name"),
        ("compute_capability", isinstance(data["compute_capability"], (str, int, float)), "a version"),
        ("precision", isinstance(data["precision"], str), "a text"),
        ("inputs", _is_tensors(data["inputs"]), "a list of {name, shape}"),
        ("outputs", _is_tensors(data["outputs"]), "a list of {name, shape}"),
        ("onnx_sha256", isinstance(data["onnx_sha256"], str), "a text"),
        ("batch", isinstance(data["batch"], list) and len(data["batch"]) == 3
         and all(isinstance(b, int) and not isinstance(b, bool) for b in data["batch"])
         and 1 == data["batch"][0] <= data["batch"][1] <= data["batch"][2], "1 = MIN <= OPT <= MAX (one hand a call)"),
        ("options", isinstance(data.get("options", {}), dict), "an object"),
        ("version_compatible", isinstance(data.get("version_compatible", False), bool), "true or false"),
    ]  # fmt: skip
    return next((f"{k} {json.dumps(data.get(k))[:60]} is not {want}" for k, ok, want in checks if not ok), "")


def _major(version: str) -> str:
    return str(version).split(".")[0]


def compatibility_problems(sidecar: dict[str, Any], here: Machine) -> list[str]:
    """Why an engine with this sidecar cannot run here (empty: it can)."""
    problems = []
    if here.gpu is None:
        problems.append("this machine has no CUDA GPU")
    elif sidecar["gpu"] != here.gpu or str(sidecar["compute_capability"]) != str(here.compute_capability):
        problems.append(f"built for {sidecar['gpu']} (sm {sidecar['compute_capability']}), "
                        f"this GPU is {here.gpu} (sm {here.compute_capability})")  # fmt: skip
    if here.tensorrt is None:
        problems.append("TensorRT is not installed (pip install 'streamhand[tensorrt]')")
    elif _major(sidecar["tensorrt"]) != _major(here.tensorrt):
        problems.append(f"built with TensorRT {sidecar['tensorrt']}, this is TensorRT {here.tensorrt} (another major)")
    elif sidecar["tensorrt"] != here.tensorrt and not sidecar.get("version_compatible", False):
        problems.append(f"built with TensorRT {sidecar['tensorrt']}, this is TensorRT {here.tensorrt}")
    return problems


def this_machine() -> Machine:
    """The GPU (through torch) and TensorRT version here, without importing TensorRT's libraries eagerly."""
    gpu = cc = trt = None
    try:
        if not _nvidia_device():  # no driver node: no CUDA GPU, and no reason to import torch to ask
            raise ImportError
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
            major, minor = torch.cuda.get_device_capability(0)
            cc = f"{major}.{minor}"
    except Exception:  # a broken CUDA install reads as no GPU
        gpu = cc = None
    trt = tensorrt_version()
    return Machine(gpu, cc, trt)


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU here; False without torch or without an NVIDIA device (torch not imported)."""
    return this_machine().gpu is not None


def _nvidia_device() -> bool:
    """Whether an NVIDIA driver exposes a device here (Linux: /dev/nvidia0; elsewhere: assume it may)."""
    import sys

    return not sys.platform.startswith("linux") or os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def tensorrt_version() -> str | None:
    """The installed TensorRT's version from its package metadata (its libraries are not loaded)."""
    from importlib import metadata

    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13", "tensorrt_cu12"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None
