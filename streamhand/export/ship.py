"""Prepare a model's runtime graphs to ship beside its checkpoint: every modality subset's ONNX export, their
weights stored once in one shared file (the subsets' encoders and decoder are the same tensors), each graph
a small file that points into it. The runtime then runs the model with ONNX Runtime alone, no PyTorch.

``python -m streamhand.export.ship default depth`` rewrites ``streamhand/weights/onnx/<name>/``, with int8 graphs
for a run on a CPU beside the fp32 ones; ``--fp32-only rgb`` leaves them out (the rgb model's cost is its image trunk's
convolutions, which stay fp32: int8 fully connected layers would add megabytes for a few per cent of its time).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from streamhand.model_files import SHIPPED_GRAPHS, modality_tag, resolve_model

log = logging.getLogger(__name__)
WEIGHTS_FILE = "weights.bin"
_MIN_EXTERNAL = 1024  # bytes: smaller tensors stay inside their graph
_ALIGN = 64


def pack(graphs: list[Path], out_dir: Path) -> list[Path]:
    """Write ``graphs`` into ``out_dir`` with their large initializers moved into one deduplicated weights file."""
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    blob = bytearray()
    where: dict[bytes, tuple[int, int]] = {}
    written = []
    for g in graphs:
        proto = onnx.load(str(g))
        for t in proto.graph.initializer:
            raw = t.raw_data
            if len(raw) < _MIN_EXTERNAL:
                continue
            digest = hashlib.sha256(raw).digest()
            if digest not in where:
                blob.extend(b"\0" * (-len(blob) % _ALIGN))
                where[digest] = (len(blob), len(raw))
                blob.extend(raw)
            offset, length = where[digest]
            t.ClearField("raw_data")
            t.data_location = onnx.TensorProto.EXTERNAL
            del t.external_data[:]
            for k, v in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(length))):
                e = t.external_data.add()
                e.key, e.value = k, v
        dst = out_dir / g.name
        onnx.save(proto, str(dst))
        written.append(dst)
    (out_dir / WEIGHTS_FILE).write_bytes(bytes(blob))
    return written


def ship(name: str, n_samples: tuple[int, ...] = (0, 16), root: Path = SHIPPED_GRAPHS, int8: tuple[int, ...] = (0,)
         ) -> Path:  # fmt: skip
    """Export every subset of the model's run-time experts, with each count of posterior samples (0: a run of a model
    with an error model; 16: ``--samples 16`` and models without one), those with ``int8`` samples also with int8
    weights (what a run on a CPU takes: :mod:`streamhand.infer.int8`), and pack them into ``root/<name>/``."""
    from streamhand.checkpoint import load_checkpoint
    from streamhand.export.onnx_export import export_onnx
    from streamhand.infer.int8 import int8_name, quantize_graph
    from streamhand.infer.onnxruntime_backend import subsets
    from streamhand.modalities import has_expert, ordered
    from streamhand.model_files import INPUT_NAMES

    ckpt = load_checkpoint(resolve_model(name))
    mods = ordered(m for m in ckpt.model.modalities if m in INPUT_NAMES)
    with tempfile.TemporaryDirectory(prefix="streamhand-ship-") as tmp:
        graphs = []
        for s in (s for s in subsets(mods) if has_expert(list(ckpt.model.encoders), s)):
            for k in n_samples:
                name_k = f"{modality_tag(s).replace('+', '-')}{'' if k == 16 else f'.k{k}'}.onnx"
                graphs.append(export_onnx(ckpt, s, Path(tmp) / name_k, n_samples=k).path)
                if k in int8:
                    quantize_graph(graphs[-1], Path(tmp) / int8_name(name_k))
                    graphs.append(Path(tmp) / int8_name(name_k))
        out = root / name
        staging = root / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        pack(graphs, staging)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    return out


def main(argv: list[str]) -> int:
    import argparse

    from streamhand.model_files import CheckpointError

    ap = argparse.ArgumentParser(prog="python -m streamhand.export.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=["default"], help="shipped models to export (default: default)")
    ap.add_argument("--fp32-only", action="store_true", help="no int8 graphs")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in a.names:
        try:
            out = ship(name, int8=() if a.fp32_only else (0,))
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        print(f"{name}: {len(list(out.glob('*.onnx')))} graphs in {out} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
