"""What this machine's CPU is: its model, its cores and the vector instruction sets that set how fast (and, for int8
graphs with signed weights, how exactly) ONNX Runtime and MediaPipe run here. ``streamhand info`` prints it and every
run report carries it, so figures measured on different machines can be told apart."""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: the instruction sets worth naming: 8-bit dot products (VNNI, AMX), bfloat16 arithmetic and the vector widths
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16", "asimd",
         "asimddp", "bf16")  # fmt: skip
#: the instruction sets with which PyTorch's bfloat16 arithmetic on a CPU runs at speed (oneDNN's AVX-512 kernels,
#: native or emulated, AMX, ARM's BF16); without them (AVX2 alone) it takes a slow path: a training step of the
#: default recipe about 30 times as long as in fp32
BF16_FLAGS = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "bf16"})


def _model_and_flags(text: str) -> tuple[str | None, set[str] | None]:
    """The first processor's model name and every flag it lists (None: no flags line)."""
    model, have = None, None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip() or None
        elif key in ("flags", "features") and have is None:
            have = set(value.split())
    return model, have


def parse_cpuinfo(text: str) -> tuple[str | None, list[str]]:
    """The first processor's model name and which of :data:`FLAGS` it has, from ``/proc/cpuinfo``'s text (x86:
    ``model name`` and ``flags``; ARM: ``Features``, and no model name)."""
    model, have = _model_and_flags(text)
    return model, [f for f in FLAGS if f in (have or ())]


def bf16_at_speed(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether PyTorch's bfloat16 arithmetic runs at speed on this CPU (:data:`BF16_FLAGS`); None where the system
    does not say (not Linux, or no flags listed)."""
    try:
        _, have = _model_and_flags(cpuinfo.read_text(errors="replace"))
    except OSError:
        return None
    return None if have is None else bool(have & BF16_FLAGS)


def cpu_facts(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """``{"model": str, "cores": int, "flags": [...]}``: the CPU's name, the cores this process may use and its
    instruction sets among :data:`FLAGS` (empty where the system does not say: not Linux)."""
    model, flags = None, []
    try:
        model, flags = parse_cpuinfo(cpuinfo.read_text(errors="replace"))
    except OSError:
        pass
    return {"model": model or platform.processor() or platform.machine() or "unknown", "cores": usable_cores(),
            "flags": flags}  # fmt: skip


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one (Linux), else every core."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def too_many_threads(threads: int, setting: str = "model.threads", cores: int | None = None) -> str | None:
    """What to say where ``threads`` (the inference backend's CPU threads, from ``setting``) is more than the cores
    this process may use (``cores``: default :func:`usable_cores`), else None: the backend's threads then spin against
    MediaPipe's for the same cores (on one core ``threads: 4`` ran at about half the frame rate of ``threads: 1``)."""
    cores = usable_cores() if cores is None else cores
    if threads <= cores:
        return None
    return (f"{setting} {threads} is more than the {cores} CPU core{'s' if cores != 1 else ''} this process may use: "
            f"the backend's threads spin against MediaPipe's for {'them' if cores != 1 else 'it'} (about half the "
            f"frame rate on one core); set {setting} to {cores}{' or fewer' if cores > 1 else ''}")  # fmt: skip


def describe_cpu(facts: dict | None = None) -> str:
    """One line, e.g. ``AMD EPYC, 2 cores (avx2, fma)``."""
    f = cpu_facts() if facts is None else facts
    sets = f" ({', '.join(f['flags'])})" if f["flags"] else ""
    return f"{f['model']}, {f['cores']} core{'s' if f['cores'] != 1 else ''}{sets}"
