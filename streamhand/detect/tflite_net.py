"""Runtime executor of a converted TFLite network (an ``nn.Module``), with no TFLite code at run time.

It owns the op set of MediaPipe's hand networks after conversion (:mod:`streamhand.export.hand_networks`):
a plain description (a list of op dicts with static attributes, plus named constant tensors) saved with
``torch.save`` and loadable with ``weights_only=True``. Inside, activations are NCHW; layouts, padding and
float16 weights were settled at conversion, so the forward pass is a fixed sequence of torch ops with no
data-dependent control flow: it traces to ONNX (opset 17, dynamic batch) and runs on CPU or CUDA.

Input: ``(B, H, W, 3)`` float32 in [0, 1] (NHWC, as the TFLite model takes it). Outputs: the model's outputs
in its own order and shapes, with the batch size ``B`` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

FORMAT = "streamhand-tflite-net/1"


#: TFLite's element-wise binary ops
_BINARY = {"add": torch.add, "mul": torch.mul, "sub": torch.sub, "div": torch.div, "maximum": torch.maximum,
           "minimum": torch.minimum}  # fmt: skip


def _act(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "NONE":
        return x
    if act == "RELU":
        return F.relu(x)
    if act == "RELU6":
        return torch.clamp(x, 0.0, 6.0)
    if act == "RELU_N1_TO_1":
        return torch.clamp(x, -1.0, 1.0)
    if act == "TANH":
        return torch.tanh(x)
    raise ValueError(f"unsupported fused activation {act!r}")


class TFLiteNet(nn.Module):
    """Executes a converted op list (see the module docstring); build it with :meth:`load` or from a dict."""

    def __init__(self, desc: dict[str, Any]):
        super().__init__()
        if desc.get("format") != FORMAT:
            raise ValueError(f"not a converted network description (format {desc.get('format')!r}, want {FORMAT})")
        self.meta: dict[str, Any] = dict(desc.get("meta", {}))
        self.input_name: str = desc["input"]
        self.input_shape: list[int] = list(desc["input_shape"])  # NHWC, batch 1
        self.output_names: list[str] = list(desc["outputs"])
        self.output_labels: list[str] = list(desc.get("output_labels", desc["outputs"]))
        self.ops: list[dict[str, Any]] = [dict(op) for op in desc["ops"]]
        self._const: dict[str, str] = {}  # constant name -> buffer attribute
        for i, (name, value) in enumerate(desc["consts"].items()):
            attr = f"c{i}"
            self.register_buffer(attr, torch.as_tensor(value, dtype=torch.float32).clone())
            self._const[name] = attr

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> TFLiteNet:
        desc = torch.load(str(path), map_location=map_location, weights_only=True)
        if not isinstance(desc, dict):
            raise ValueError(f"{Path(path).name}: not a converted network description")
        return cls(desc)

    def _get(self, env: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        if name in env:
            return env[name]
        return getattr(self, self._const[name])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[str, torch.Tensor] = {self.input_name: x.permute(0, 3, 1, 2)}  # NHWC in, NCHW inside
        for op in self.ops:
            kind = op["op"]
            if kind == "conv":
                y = self._get(env, op["x"])
                if any(op["pre_pad"]):
                    y = F.pad(y, op["pre_pad"])
                b = self._get(env, op["b"]) if op["b"] else None
                y = F.conv2d(y, self._get(env, op["w"]), b, stride=op["stride"], padding=op["padding"],
                             dilation=op["dilation"], groups=op["groups"])  # fmt: skip
                y = _act(y, op["act"])
            elif kind == "maxpool":
                y = self._get(env, op["x"])
                if any(op["pre_pad"]):
                    y = F.pad(y, op["pre_pad"], value=float("-inf"))
                y = F.max_pool2d(y, op["kernel"], op["stride"])
                y = _act(y, op["act"])
            elif kind == "avgpool":  # SAME padding is refused at conversion (TFLite excludes the padding)
                y = F.avg_pool2d(self._get(env, op["x"]), op["kernel"], op["stride"])
                y = _act(y, op["act"])
            elif kind == "pad":
                y = F.pad(self._get(env, op["x"]), op["pad"], value=float(op.get("value", 0.0)))
            elif kind in _BINARY:
                y = _act(_BINARY[kind](self._get(env, op["a"]), self._get(env, op["b"])), op.get("act", "NONE"))
            elif kind == "prelu":
                x_in = self._get(env, op["x"])
                y = F.relu(x_in) - self._get(env, op["alpha"]) * F.relu(-x_in)
            elif kind == "act":
                y = _act(self._get(env, op["x"]), op["act"])
            elif kind == "sigmoid":
                y = torch.sigmoid(self._get(env, op["x"]))
            elif kind == "resize_bilinear":
                y = F.interpolate(self._get(env, op["x"]), size=op["size"], mode="bilinear",
                                  align_corners=op["align_corners"])  # fmt: skip
            elif kind == "resize_nearest":
                y = F.interpolate(self._get(env, op["x"]), size=op["size"], mode="nearest")
            elif kind == "reshape":
                y = self._get(env, op["x"])
                if op["from_nchw"]:
                    y = y.permute(0, 2, 3, 1)  # TFLite reshapes NHWC memory order
                y = y.reshape([-1, *op["shape"][1:]])
            elif kind == "concat":
                y = torch.cat([self._get(env, n) for n in op["xs"]], dim=op["axis"])
                y = _act(y, op.get("act", "NONE"))
            elif kind == "mean":
                y = torch.mean(self._get(env, op["x"]), dim=op["dims"], keepdim=op["keepdim"])
            elif kind == "linear":
                b = self._get(env, op["b"]) if op["b"] else None
                y = F.linear(self._get(env, op["x"]), self._get(env, op["w"]), b)
                y = _act(y, op["act"])
            elif kind == "softmax":
                y = torch.softmax(self._get(env, op["x"]) * op["beta"], dim=-1)
            else:
                raise ValueError(f"unsupported op {kind!r}")
            env[op["out"]] = y
        return tuple(env[name] for name in self.output_names)  # flat outputs (the converter refuses others)
