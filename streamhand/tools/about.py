"""What ``streamhand info`` prints: the CPU, versions of what the runtime uses, where the caches are, the backend
``auto`` picks here and why, and each shipped model's card (its summary and headline figures). Needs no PyTorch."""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("torch", "numpy", "numba", "mediapipe", "opencv-contrib-python", "onnx", "onnxruntime", "pyzmq", "msgpack",
            "msgspec", "pyrealsense2", "tensorrt")  # fmt: skip
CARD_FIGURES = {"EPE mean (mm)": "epe_mean_mm", "EPE median (mm)": "epe_median_mm", "AUC 20-50": "auc_20_50",
                "MediaPipe detection rate": "detection_rate"}  # fmt: skip


#: optional packages imported only where used: installed is not enough (pyrealsense2 needs libusb-1.0, TensorRT CUDA)
IMPORT_CHECKED = ("pyrealsense2", "tensorrt")


def _version(pkg: str) -> str:
    try:
        version = md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"
    if pkg in IMPORT_CHECKED:  # each imports under its package's name
        import importlib

        from streamhand.errors import first_line

        try:
            importlib.import_module(pkg)
        except Exception as e:  # ImportError, or a native library's OSError: installed, but not usable here
            return f"{version} (does not import: {first_line(e, type(e).__name__)[:100]})"
    return version


def describe() -> Iterator[str]:
    from streamhand.cpu import describe_cpu
    from streamhand.infer.select import choose, installed, model_encoders
    from streamhand.model_files import INPUT_NAMES, shipped_models
    from streamhand.sidecar import this_machine
    from streamhand.version import __version__

    yield f"streamhand {__version__}  python {sys.version.split()[0]}"
    yield f"  CPU                      {describe_cpu()}"
    for pkg in PACKAGES:
        yield f"  {pkg:24s} {_version(pkg)}"
    yield f"  compiled arithmetic      {compiled_state()}"
    yield f"  streamhand cache         {cache_state()}"
    yield f"  CUDA GPU                 {this_machine().gpu or 'none'}"
    try:
        import onnxruntime as ort

        yield f"  onnxruntime providers    {', '.join(ort.get_available_providers())}"
    except ImportError:
        pass
    model = model_encoders(None)
    mods = tuple(m for m in model.encoders if m in INPUT_NAMES)
    c = choose("auto", installed(Path("engines"), model.model_id, mods, 16))
    yield f"  backend (auto)           {c.backend} on {c.device}: {c.reason}"
    for name, pt in shipped_models().items():
        yield from _card(name, pt.with_suffix(".json"))


def compiled_state() -> str:
    """Whether the per-frame arithmetic runs compiled, and where numba keeps the machine code."""
    from streamhand import codec, jit

    if not jit.COMPILED:
        return "no: plain Python (numba missing or NUMBA_DISABLE_JIT set)"
    if jit.UNCACHED:
        return "numba; not kept on disk (no writable folder: set NUMBA_CACHE_DIR), compiled in every process"
    if jit.NOT_KEPT:  # a damaged cache file or a full disk met in this process
        return f"numba; not kept on disk ({next(iter(jit.NOT_KEPT.values()))}), compiled in every process"
    folder = jit.cache_folder(codec._encode_2d)
    where = f" (the codec's in {folder})" if folder else ""  # numba's own record of it, where it keeps one
    return f"numba; machine code kept on disk{where}"


def _size(n: float) -> str:
    """``n`` bytes for a person: ``512 B``, ``3.4 MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def cache_state(shown: int = 4) -> str:
    """streamhand's cache folder, what it holds in all, and its ``shown`` largest parts (all may be deleted)."""
    from streamhand.cache import cache_dir, cache_usage

    folder = cache_dir()
    parts = cache_usage()
    if not parts:
        return f"{folder} ({'empty' if folder.is_dir() else 'not made yet'})"
    listed = ", ".join(f"{name} {_size(n)}" for name, n in list(parts.items())[:shown])
    more = f", {len(parts) - shown} more" if len(parts) > shown else ""
    return f"{folder} ({_size(sum(parts.values()))}: {listed}{more}; any of it may be deleted, it is made again)"


def _card(name: str, path: Path) -> Iterator[str]:
    try:
        card = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(card, dict):
            raise ValueError(f"a JSON {type(card).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        yield f"model {name!r}: its model card {path} cannot be read ({type(e).__name__}: {e})"
        return
    yield f"model {name!r} ({card.get('model_id', '?')}): {card.get('summary', 'no model card')}"
    for key, m in (card.get("metrics") or {}).items():
        if not isinstance(m, dict):
            continue
        shown = {label: m.get(k) for label, k in CARD_FIGURES.items()}
        shown["closed-loop EPE mean (mm)"] = (
            (m.get("closed_loop") or {}).get("mediapipe_handedness", {}).get("epe_mean_mm")
        )
        parts = [f"{k} {v:.3g}" for k, v in shown.items() if isinstance(v, (int, float))]
        if isinstance(m.get("renderer"), int):  # the renders' figures depend on the renderer that drew them
            parts.append(f"renderer {m['renderer']}")
        yield f"  {key:24s} {', '.join(parts)}"
