"""Build-time reader of TFLite flatbuffers (``.tflite``), without the ``tflite`` or ``tensorflow`` packages.

It owns the parts of the public TFLite schema (``schema.fbs``) that float models use: the model's first
subgraph (tensors, inputs, outputs, operators), operator codes and buffers, and the option tables of the
ops that MediaPipe's hand networks contain. Field slots are ``4 + 2 * field_index`` in schema field order
(a union takes two fields: its type, then its value). Weights stored as float16 are read as they are;
the DEQUANTIZE ops that turn them into float32 are kept in the op list for the converter to fold.

Only the converter (:mod:`streamhand.export.hand_networks`) uses this module; the runtime never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table

#: TFLite BuiltinOperator codes (schema.fbs enum order), for the ops we may meet
BUILTIN_OPS: dict[int, str] = {
    0: "ADD",
    1: "AVERAGE_POOL_2D",
    2: "CONCATENATION",
    3: "CONV_2D",
    4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE",
    6: "DEQUANTIZE",
    9: "FULLY_CONNECTED",
    14: "LOGISTIC",
    17: "MAX_POOL_2D",
    18: "MUL",
    19: "RELU",
    20: "RELU_N1_TO_1",
    21: "RELU6",
    22: "RESHAPE",
    23: "RESIZE_BILINEAR",
    25: "SOFTMAX",
    28: "TANH",
    32: "CUSTOM",
    34: "PAD",
    39: "TRANSPOSE",
    40: "MEAN",
    41: "SUB",
    42: "DIV",
    43: "SQUEEZE",
    45: "STRIDED_SLICE",
    54: "PRELU",
    55: "MAXIMUM",
    57: "MINIMUM",
    60: "PADV2",
    97: "RESIZE_NEAREST_NEIGHBOR",
    98: "LEAKY_RELU",
    117: "HARD_SWISH",
}

#: TFLite TensorType -> numpy dtype
TENSOR_TYPES: dict[int, Any] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    9: np.int8,
    10: np.float64,
}

#: ActivationFunctionType
ACTIVATIONS: dict[int, str] = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS: dict[int, str] = {0: "SAME", 1: "VALID"}


def _slot(i: int) -> int:
    return 4 + 2 * i


class _T:
    """A flatbuffers table with typed field getters (field index in schema order)."""

    def __init__(self, buf: bytearray, pos: int):
        self.tab = Table(buf, pos)
        self.buf = buf

    def _off(self, i: int) -> int:
        return int(self.tab.Offset(_slot(i)))

    def scalar(self, i: int, flags: Any, default: Any = 0) -> Any:
        o = self._off(i)
        return self.tab.Get(flags, o + self.tab.Pos) if o else default

    def i8(self, i: int, default: int = 0) -> int:
        return int(self.scalar(i, nt.Int8Flags, default))

    def u8(self, i: int, default: int = 0) -> int:
        return int(self.scalar(i, nt.Uint8Flags, default))

    def i32(self, i: int, default: int = 0) -> int:
        return int(self.scalar(i, nt.Int32Flags, default))

    def u32(self, i: int, default: int = 0) -> int:
        return int(self.scalar(i, nt.Uint32Flags, default))

    def u64(self, i: int, default: int = 0) -> int:
        return int(self.scalar(i, nt.Uint64Flags, default))

    def boolean(self, i: int, default: bool = False) -> bool:
        return bool(self.scalar(i, nt.BoolFlags, default))

    def string(self, i: int) -> str:
        o = self._off(i)
        return self.tab.String(o + self.tab.Pos).decode("utf-8", "replace") if o else ""

    def vec_np(self, i: int, flags: Any) -> np.ndarray:
        o = self._off(i)
        if not o:
            return np.zeros(0, flags.py_type if flags is not nt.Uint8Flags else np.uint8)
        return self.tab.GetVectorAsNumpy(flags, o)

    def vec_tables(self, i: int) -> list[_T]:
        o = self._off(i)
        if not o:
            return []
        n = self.tab.VectorLen(o)
        start = self.tab.Vector(o)
        return [_T(self.buf, self.tab.Indirect(start + 4 * k)) for k in range(n)]

    def table(self, i: int) -> _T | None:
        o = self._off(i)
        return _T(self.buf, self.tab.Indirect(o + self.tab.Pos)) if o else None


@dataclass
class TFLiteTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: Any  # numpy dtype
    buffer: int
    data: np.ndarray | None  # constant data (in the tensor's shape and dtype), None for activations


@dataclass
class TFLiteOp:
    index: int
    op: str  # BuiltinOperator name (or "CUSTOM:<code>" / "OP_<n>" for ops without a name here)
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TFLiteModel:
    path: str
    version: int
    description: str
    tensors: list[TFLiteTensor]
    inputs: list[int]
    outputs: list[int]
    ops: list[TFLiteOp]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        return dict(sorted(counts.items()))


def _act(t: _T, i: int) -> str:
    return ACTIVATIONS.get(t.i8(i), f"ACT_{t.i8(i)}")


def _pad(t: _T, i: int) -> str:
    return PADDINGS.get(t.i8(i), f"PAD_{t.i8(i)}")


def _options(op: str, t: _T | None) -> dict[str, Any]:
    """The builtin option table of ``op`` as a dict (field indices from schema.fbs)."""
    if t is None:
        return {}
    if op == "CONV_2D":
        return {"padding": _pad(t, 0), "stride_w": t.i32(1), "stride_h": t.i32(2), "activation": _act(t, 3),
                "dilation_w": t.i32(4, 1), "dilation_h": t.i32(5, 1)}  # fmt: skip
    if op == "DEPTHWISE_CONV_2D":
        return {"padding": _pad(t, 0), "stride_w": t.i32(1), "stride_h": t.i32(2), "depth_multiplier": t.i32(3),
                "activation": _act(t, 4), "dilation_w": t.i32(5, 1), "dilation_h": t.i32(6, 1)}  # fmt: skip
    if op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return {"padding": _pad(t, 0), "stride_w": t.i32(1), "stride_h": t.i32(2), "filter_w": t.i32(3),
                "filter_h": t.i32(4), "activation": _act(t, 5)}  # fmt: skip
    if op in ("ADD", "MUL", "SUB", "DIV"):
        return {"activation": _act(t, 0)}
    if op == "CONCATENATION":
        return {"axis": t.i32(0), "activation": _act(t, 1)}
    if op == "RESHAPE":
        return {"new_shape": [int(v) for v in t.vec_np(0, nt.Int32Flags)]}
    if op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        # ResizeBilinearOptions: new_height, new_width (deprecated), align_corners, half_pixel_centers;
        # ResizeNearestNeighborOptions: align_corners, half_pixel_centers
        base = 2 if op == "RESIZE_BILINEAR" else 0
        return {"align_corners": t.boolean(base), "half_pixel_centers": t.boolean(base + 1)}
    if op == "FULLY_CONNECTED":
        return {"activation": _act(t, 0), "weights_format": t.i8(1), "keep_num_dims": t.boolean(2)}
    if op == "SOFTMAX":
        return {"beta": float(t.scalar(0, nt.Float32Flags, 0.0))}
    if op == "LEAKY_RELU":
        return {"alpha": float(t.scalar(0, nt.Float32Flags, 0.0))}
    if op == "MEAN":
        return {"keep_dims": t.boolean(0)}
    return {}


def _buffer_bytes(raw: bytes, buffers: list[_T], index: int) -> bytes | None:
    if index <= 0 or index >= len(buffers):
        return None
    b = buffers[index]
    data = b.vec_np(0, nt.Uint8Flags)
    if data.size:
        return data.tobytes()
    offset, size = b.u64(1), b.u64(2)  # models over 2 GB keep their data after the flatbuffer
    if offset > 1 and size:
        return raw[offset : offset + size]
    return None


def read_tflite(path: str | Path) -> TFLiteModel:
    """Read the first subgraph of a ``.tflite`` file (float models; quantised ones are refused)."""
    p = Path(path)
    raw = p.read_bytes()
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ValueError(f"{p.name}: not a TFLite flatbuffer (no TFL3 identifier)")
    buf = bytearray(raw)
    root = _T(buf, flatbuffers.encode.Get(nt.UOffsetTFlags.packer_type, buf, 0))
    # Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4
    codes = []
    for c in root.vec_tables(1):
        # OperatorCode: deprecated_builtin_code 0 (byte), custom_code 1, version 2, builtin_code 3 (int)
        code = max(c.i8(0), c.i32(3))
        name = BUILTIN_OPS.get(code, f"OP_{code}")
        if code == 32:
            name = f"CUSTOM:{c.string(1)}"
        codes.append(name)
    subgraphs = root.vec_tables(2)
    if not subgraphs:
        raise ValueError(f"{p.name}: the model has no subgraph")
    buffers = root.vec_tables(4)
    sg = subgraphs[0]
    tensors: list[TFLiteTensor] = []
    # SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4
    for ti, t in enumerate(sg.vec_tables(0)):
        # Tensor: shape 0, type 1, buffer 2, name 3, quantization 4
        shape = tuple(int(v) for v in t.vec_np(0, nt.Int32Flags))
        ttype = t.i8(1)
        if ttype not in TENSOR_TYPES:
            raise ValueError(f"{p.name}: tensor {t.string(3)!r} has an unsupported type {ttype}")
        dtype = TENSOR_TYPES[ttype]
        q = t.table(4)
        if q is not None and q.vec_np(2, nt.Float32Flags).size and dtype in (np.int8, np.uint8):
            raise ValueError(f"{p.name}: quantised tensor {t.string(3)!r}: only float models are supported")
        bi = t.u32(2)
        data_bytes = _buffer_bytes(raw, buffers, bi)
        data = None
        if data_bytes is not None:
            data = np.frombuffer(data_bytes, dtype=dtype).copy()
            data = data.reshape(shape) if shape else data.reshape(())
        tensors.append(TFLiteTensor(ti, t.string(3), shape, dtype, bi, data))
    ops = []
    for oi, o in enumerate(sg.vec_tables(3)):
        # Operator: opcode_index 0, inputs 1, outputs 2, builtin_options_type 3, builtin_options 4
        name = codes[o.u32(0)]
        opts = _options(name, o.table(4))
        ops.append(TFLiteOp(oi, name, [int(v) for v in o.vec_np(1, nt.Int32Flags)],
                            [int(v) for v in o.vec_np(2, nt.Int32Flags)], opts))  # fmt: skip
    return TFLiteModel(
        path=str(p),
        version=root.u32(0),
        description=root.string(3),
        tensors=tensors,
        inputs=[int(v) for v in sg.vec_np(1, nt.Int32Flags)],
        outputs=[int(v) for v in sg.vec_np(2, nt.Int32Flags)],
        ops=ops,
    )
