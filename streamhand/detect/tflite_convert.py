"""MediaPipe's bundled hand networks as plain network descriptions: which ``.tflite`` files of the installed
mediapipe package they are, and the conversion of a read TFLite model (:mod:`streamhand.detect.tflite_reader`) into
the op list and constants that :class:`streamhand.detect.tflite_net.TFLiteNet` executes -- TFLite's NHWC layout,
OHWI / 1HWO weights, SAME padding (asymmetric where TFLite pads more at the bottom/right) and float16 weights behind
DEQUANTIZE ops settled once. In memory, with no files written: :mod:`streamhand.export.hand_networks` caches the
descriptions and their ONNX exports for the network detector, and an RGB expert on MediaPipe's trunk
(:mod:`streamhand.models.mediapipe_trunk`) builds its backbone from one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamhand.detect.tflite_net import FORMAT
from streamhand.detect.tflite_reader import TFLiteModel

PALM = "palm_detection_full"
LANDMARK = "hand_landmark_full"
#: source file inside the mediapipe package, and readable names for the model's outputs (in its order)
NETWORKS: dict[str, tuple[str, list[str]]] = {
    PALM: ("modules/palm_detection/palm_detection_full.tflite", ["boxes", "scores"]),
    LANDMARK: ("modules/hand_landmark/hand_landmark_full.tflite",
               ["landmarks", "presence", "handedness", "world_landmarks"]),
}  # fmt: skip
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2, -4: 0}


def mediapipe_model_path(name: str) -> Path:
    """The installed mediapipe package's ``.tflite`` file for ``name`` (PALM or LANDMARK)."""
    import mediapipe  # build time only

    if name not in NETWORKS:
        raise ValueError(f"unknown hand network {name!r} (known: {', '.join(NETWORKS)})")
    return Path(os.path.dirname(mediapipe.__file__)) / NETWORKS[name][0]


def describe(name: str) -> dict[str, Any]:
    """The description of the installed package's network ``name`` (PALM or LANDMARK), converted in memory."""
    from streamhand.detect.tflite_reader import read_tflite

    return convert_tflite(read_tflite(mediapipe_model_path(name)), NETWORKS[name][1])


def _same_pads(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding along one axis: (before, after), the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def convert_tflite(model: TFLiteModel, output_labels: list[str] | None = None) -> dict[str, Any]:
    """A plain network description (see :mod:`streamhand.detect.tflite_net`) of ``model``'s first subgraph."""
    if len(model.inputs) != 1:
        raise ValueError(f"{Path(model.path).name}: expected one input, got {len(model.inputs)}")
    tensors = model.tensors
    consts: dict[str, np.ndarray] = {}
    const_data: dict[int, np.ndarray] = {t.index: t.data for t in tensors if t.data is not None}
    layout: dict[int, str] = {model.inputs[0]: "nchw"}
    ops: list[dict[str, Any]] = []

    def name(i: int) -> str:
        return f"t{i}"

    def const_operand(i: int, like: int) -> str:
        """Register constant tensor ``i`` for an elementwise op with activation ``like``."""
        a = np.asarray(const_data[i], np.float32)
        if layout.get(like) == "nchw" and a.ndim > 0:
            a = a.reshape((1,) * (4 - a.ndim) + a.shape).transpose(0, 3, 1, 2)
        key = f"k{i}"
        consts[key] = a
        return key

    def operand(i: int, like: int) -> str:
        return const_operand(i, like) if i in const_data else name(i)

    def spatial(i: int, op: str) -> None:
        if layout.get(i) != "nchw":
            raise ValueError(f"{op}: input tensor {tensors[i].name!r} is not an image-shaped activation")

    for op in model.ops:
        kind, ins, outs, o = op.op, op.inputs, op.outputs, op.options
        out = outs[0]
        if kind == "DEQUANTIZE":
            if ins[0] not in const_data:
                raise ValueError(f"DEQUANTIZE of a non-constant tensor {tensors[ins[0]].name!r} is not supported")
            const_data[out] = const_data[ins[0]].astype(np.float32)
            continue
        if all(i in const_data for i in ins if i >= 0):
            raise ValueError(f"{kind} on constants only (op {op.index}) is not supported")
        d: dict[str, Any] = {"out": name(out)}
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x = ins[0]
            spatial(x, kind)
            w = np.asarray(const_data[ins[1]], np.float32)
            _, h, wd, cin = tensors[x].shape
            if kind == "CONV_2D":
                wt = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
                groups = 1
                if wt.shape[1] != cin:
                    raise ValueError(f"CONV_2D op {op.index}: grouped convolutions are not supported")
            else:
                wt = w.transpose(3, 0, 1, 2)  # 1HWO -> O1HW
                groups = cin
                if o.get("depth_multiplier", 1) * cin != wt.shape[0]:
                    raise ValueError(f"DEPTHWISE_CONV_2D op {op.index}: channels do not match depth_multiplier")
            kh, kw = wt.shape[2:]
            sh, sw, dh, dw = o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"]
            if o["padding"] == "SAME":
                pt, pb = _same_pads(h, kh, sh, dh)
                pl, pr = _same_pads(wd, kw, sw, dw)
            else:
                pt = pb = pl = pr = 0
            sym = pt == pb and pl == pr
            wkey, bkey = f"w{op.index}", ""
            consts[wkey] = wt
            if len(ins) > 2 and ins[2] >= 0:
                bkey = f"b{op.index}"
                consts[bkey] = np.asarray(const_data[ins[2]], np.float32)
            d.update(op="conv", x=name(x), w=wkey, b=bkey, stride=[sh, sw], dilation=[dh, dw], groups=groups,
                     padding=[pt, pl] if sym else [0, 0], pre_pad=[0, 0, 0, 0] if sym else [pl, pr, pt, pb],
                     act=o["activation"])  # fmt: skip
            layout[out] = "nchw"
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            x = ins[0]
            spatial(x, kind)
            _, h, wd, _ = tensors[x].shape
            kh, kw, sh, sw = o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"]
            pt, pb = _same_pads(h, kh, sh) if o["padding"] == "SAME" else (0, 0)
            pl, pr = _same_pads(wd, kw, sw) if o["padding"] == "SAME" else (0, 0)
            if kind == "AVERAGE_POOL_2D" and any((pt, pb, pl, pr)):
                raise ValueError(f"AVERAGE_POOL_2D op {op.index}: padded average pooling is not supported")
            d.update(op="maxpool" if kind == "MAX_POOL_2D" else "avgpool", x=name(x), kernel=[kh, kw],
                     stride=[sh, sw], pre_pad=[pl, pr, pt, pb], act=o["activation"])  # fmt: skip
            layout[out] = "nchw"
        elif kind in ("PAD", "PADV2"):
            x = ins[0]
            p = np.asarray(const_data[ins[1]]).astype(int)
            value = float(np.asarray(const_data[ins[2]]).reshape(-1)[0]) if len(ins) > 2 and ins[2] >= 0 else 0.0
            if layout.get(x) == "nchw":
                (n0, n1), (h0, h1), (w0, w1), (c0, c1) = p.tolist()
                pad = [w0, w1, h0, h1, c0, c1] + ([n0, n1] if n0 or n1 else [])
            else:
                pad = [int(v) for pair in p[::-1].tolist() for v in pair]
            d.update(op="pad", x=name(x), pad=pad, value=value)
            layout[out] = layout.get(x, "plain")
        elif kind in ("ADD", "MUL", "SUB", "DIV", "MAXIMUM", "MINIMUM"):
            a, b = ins[0], ins[1]
            ref = a if a not in const_data else b
            d.update(op=kind.lower(), a=operand(a, ref), b=operand(b, ref), act=o.get("activation", "NONE"))
            layout[out] = layout.get(ref, "plain")
        elif kind == "PRELU":
            x = ins[0]
            d.update(op="prelu", x=name(x), alpha=const_operand(ins[1], x))
            layout[out] = layout.get(x, "plain")
        elif kind in ("RELU", "RELU6", "RELU_N1_TO_1", "TANH"):
            d.update(op="act", x=name(ins[0]), act=kind)
            layout[out] = layout.get(ins[0], "plain")
        elif kind == "LOGISTIC":
            d.update(op="sigmoid", x=name(ins[0]))
            layout[out] = layout.get(ins[0], "plain")
        elif kind in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
            x = ins[0]
            spatial(x, kind)
            size = [int(v) for v in np.asarray(const_data[ins[1]]).reshape(-1)]
            if kind == "RESIZE_BILINEAR":
                if not (o["half_pixel_centers"] or o["align_corners"]):
                    raise ValueError(f"RESIZE_BILINEAR op {op.index}: legacy (no half-pixel) sampling not supported")
                d.update(op="resize_bilinear", x=name(x), size=size, align_corners=bool(o["align_corners"]))
            else:
                if o["half_pixel_centers"] or o["align_corners"]:
                    raise ValueError(f"RESIZE_NEAREST_NEIGHBOR op {op.index}: only legacy sampling is supported")
                d.update(op="resize_nearest", x=name(x), size=size)
            layout[out] = "nchw"
        elif kind == "RESHAPE":
            x = ins[0]
            shape = list(tensors[out].shape)
            d.update(op="reshape", x=name(x), shape=shape, from_nchw=layout.get(x) == "nchw")
            layout[out] = "plain"
        elif kind == "CONCATENATION":
            xs = [i for i in ins]
            nchw = layout.get(xs[0]) == "nchw"
            axis = _NHWC_TO_NCHW_AXIS[o["axis"]] if nchw else o["axis"]
            d.update(op="concat", xs=[operand(i, xs[0]) for i in xs], axis=axis, act=o["activation"])
            layout[out] = "nchw" if nchw else "plain"
        elif kind == "MEAN":
            x = ins[0]
            axes = [int(v) for v in np.asarray(const_data[ins[1]]).reshape(-1)]
            if layout.get(x) == "nchw":
                axes = [_NHWC_TO_NCHW_AXIS[a] for a in axes]
                layout[out] = "nchw" if o["keep_dims"] else "plain"
                if o["keep_dims"] is False and sorted(axes) != [2, 3]:
                    raise ValueError(f"MEAN op {op.index}: only a spatial mean is supported")
            else:
                layout[out] = "plain"
            d.update(op="mean", x=name(x), dims=axes, keepdim=bool(o["keep_dims"]))
        elif kind == "FULLY_CONNECTED":
            x = ins[0]
            if layout.get(x) == "nchw" or len(tensors[x].shape) != 2:
                raise ValueError(f"FULLY_CONNECTED op {op.index}: only (batch, features) inputs are supported")
            wkey, bkey = f"w{op.index}", ""
            consts[wkey] = np.asarray(const_data[ins[1]], np.float32)
            if len(ins) > 2 and ins[2] >= 0:
                bkey = f"b{op.index}"
                consts[bkey] = np.asarray(const_data[ins[2]], np.float32)
            d.update(op="linear", x=name(x), w=wkey, b=bkey, act=o["activation"])
            layout[out] = "plain"
        elif kind == "SOFTMAX":
            d.update(op="softmax", x=name(ins[0]), beta=o.get("beta", 1.0))
            layout[out] = "plain"
        else:
            raise ValueError(f"{Path(model.path).name}: op {kind} (op {op.index}) is not supported")
        ops.append(d)
    for i in model.outputs:
        if layout.get(i) == "nchw":
            raise ValueError(f"output {tensors[i].name!r} is image-shaped; only flat outputs are supported")
    inp = tensors[model.inputs[0]]
    return {
        "format": FORMAT,
        "input": name(inp.index),
        "input_shape": list(inp.shape),
        "outputs": [name(i) for i in model.outputs],
        "output_labels": list(output_labels or [tensors[i].name for i in model.outputs]),
        "ops": ops,
        "consts": {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in consts.items()},
        "meta": {"tflite_outputs": [tensors[i].name for i in model.outputs], "op_counts": model.op_counts()},
    }
