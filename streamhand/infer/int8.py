"""Int8 graphs for ONNX Runtime on a CPU: the lifter's fully connected layers with 8-bit weights.

At batch 1-2 the lifter's matrix products read every weight once per call, so on a CPU its time is the time to
stream its weights from memory (about 16 MB in fp32 for the default model); with 8-bit weights (per output
channel) and 8-bit activations quantized on the fly (ONNX Runtime's dynamic quantization) it reads a quarter of
that. Only ``Gemm`` / ``MatMul`` are quantized (the image experts' convolutions stay fp32).

The weights are unsigned (``uint8``, each channel with its zero point), as the activations are. With signed
weights ONNX Runtime multiplies ``uint8 x int8`` and, on x86 CPUs without AVX-512 VNNI (AVX2 only: many AMD EPYC
and older Intel parts), adds pairs of products in 16 bits, which saturate: there the default model's answers
moved by up to 10 % of the hand's size (95 % on one joint of the depth model's 2d graph) and the demo's error
rose from 14.6 to 15.3 mm. ``uint8 x uint8`` products are summed exactly on every CPU, so an int8 graph gives the
same answers everywhere. The graph keeps its ``streamhand.*`` metadata with ``precision: int8`` and
``int8_weights: uint8`` (int8 graphs quantized before, with signed weights, are quantized again at first use);
its outputs differ from the fp32 graph's by about 1 % of the hand's size on average (``tests/test_int8.py``
bounds it), which moves the demo's error by less than a tenth of a millimetre (docs/figures.md).

The shipped models carry int8 graphs beside their fp32 ones (:mod:`streamhand.export.ship`); any other fp32 graph
is quantized at its first use on a CPU (:func:`int8_graph`, cached beside it).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

from streamhand.model_files import ExportError
from streamhand.outputs import private_folder, remove_abandoned

_QUIET = threading.Lock()  # held while logging is turned down around the quantizer

log = logging.getLogger(__name__)
QUANTIZED_OPS = ("Gemm", "MatMul")
#: which graphs a run may take in int8: ``auto`` picks int8 on ONNX Runtime's CPU provider, fp32 elsewhere
PRECISION_CHOICES = ("auto", "fp32", "int8")
#: the experts whose graphs are fully connected layers only: ``auto`` quantizes these at first use (an image
#: expert's convolutions stay fp32 and are its cost, so for them only a shipped int8 graph is taken)
KEYPOINT_INPUTS = frozenset({"2d", "world"})
#: the weights' type in the int8 graphs this version makes (``int8_weights`` in their metadata)
INT8_WEIGHTS = "uint8"


def all_keypoints(modalities) -> bool:
    """Whether a graph of these experts is fully connected layers only (worth quantizing)."""
    return set(modalities) <= KEYPOINT_INPUTS


def int8_metadata(fp32_meta: dict) -> dict:
    """The metadata of the int8 graph this version makes from a graph with ``fp32_meta``."""
    return {**fp32_meta, "precision": "int8", "int8_weights": INT8_WEIGHTS}


def current_int8(meta: dict) -> bool:
    """Whether an int8 graph's metadata says it was quantized as this version quantizes (unsigned weights)."""
    return meta == int8_metadata(meta)


def quantize_graph(src: Path, dst: Path) -> dict:
    """Write the int8 version of the fp32 streamhand graph ``src`` (external weights are read) to ``dst``
    atomically; returns its metadata (:func:`int8_metadata` of ``src``'s)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from streamhand.model_files import read_onnx_metadata, write_onnx_metadata

    meta = read_onnx_metadata(src)
    if meta.get("precision", "fp32") != "fp32":
        raise ExportError(f"{src}: only an fp32 graph can be quantized (this one is {meta.get('precision')})")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamhand-int8-") as tmp:
        # the quantizer writes its shape-inferred copy (``<graph>-inferred.onnx``) beside the graph it is given, and
        # removes it: beside ``src`` runs quantizing the same graph raced on that file, and a read-only install or a
        # full disk failed every run (leaving a partial copy in the cache). So it is given a copy in this private
        # folder (external weights read into it), removed with everything the quantizer left here
        copy, out = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        # the quantizer's advice to pre-process (shape inference) goes to the root logger: logging is turned down
        # meanwhile, one quantization at a time (two threads each putting back what the other had set left the
        # process's logging off for good)
        with _QUIET:
            previous = logging.root.manager.disable
            logging.disable(logging.WARNING)
            try:
                copy.write_bytes(onnx.load(str(src)).SerializeToString())  # a few MB: no external weights needed
                quantize_dynamic(str(copy), str(out), per_channel=True, weight_type=QuantType.QUInt8,
                                 op_types_to_quantize=list(QUANTIZED_OPS))  # fmt: skip
            except Exception as e:  # the tool raises what onnx raises: one line for the caller
                raise ExportError(f"{src}: int8 quantization failed ({type(e).__name__}: {e})") from None
            finally:
                logging.disable(previous)
        proto = onnx.load(str(out))
    meta = int8_metadata(meta)
    write_onnx_metadata(proto, meta)
    remove_abandoned(dst)  # the part files of quantizations killed before they could remove their own
    part = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")  # two runs quantizing at once do not share a file
    try:
        onnx.save(proto, str(part))
        part.replace(dst)
    except BaseException:  # a full disk, Ctrl-C: no part file left in the cache
        part.unlink(missing_ok=True)
        raise
    return meta


def int8_name(fp32_name: str) -> str:
    """``2d-world.k0.onnx`` -> ``2d-world.k0.int8.onnx``."""
    return f"{fp32_name.removesuffix('.onnx')}.int8.onnx"


def int8_graph(fp32: Path, fp32_meta: dict, sha: str | None) -> tuple[Path, dict]:
    """The int8 graph of the prepared fp32 graph ``fp32`` (its metadata ``fp32_meta``): quantized once into the cache
    (by its checkpoint's ``sha``; without one, into a private temporary folder) and reused."""
    from streamhand.cache import cache_dir
    from streamhand.model_files import read_onnx_metadata

    folder = cache_dir("onnx", sha[:16]) if sha else private_folder("streamhand-onnx-")
    dst = folder / int8_name(fp32.name)
    if dst.is_file():
        try:
            meta = read_onnx_metadata(dst)
            if meta == int8_metadata(fp32_meta):
                return dst, meta
        except ExportError:
            pass  # unreadable, stale or with signed weights: made again
    log.info("quantizing %s to int8 for the CPU (first use; cached in %s)", fp32.name, folder)
    return dst, quantize_graph(fp32, dst)
