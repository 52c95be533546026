"""CUDA graph replay for small networks, whose kernels take less time to run than to launch one by one: each
key (a batch size, a modality set) is captured once on static copies of its inputs and replayed after that.

:meth:`GraphReplay.host` runs a graph from host arrays to host arrays with one transfer each way: the inputs
go through page-locked buffers (asynchronous copies), the outputs are packed into one float32 tensor inside the
graph and come back in one copy and one synchronisation. At batch 1 the lifter's own kernels take tens of
microseconds, so the transfers and synchronisations are most of its time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch


def _capture(fn: Callable[..., Any], static: Sequence[torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, Any]:
    """Warm ``fn`` up on a side stream, then record one call of it on ``static``."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(*static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*static)
    return graph, out


class _HostGraph:
    """One captured graph with its page-locked input buffers and its packed output."""

    def __init__(
        self, fn: Callable[..., Sequence[torch.Tensor | None]], arrays: Sequence[np.ndarray], device: torch.device
    ):
        self.fn = fn  # keeps what the graph reads alive
        self.pinned_in = [torch.empty(a.shape, dtype=torch.float32, pin_memory=True) for a in arrays]
        for p, a in zip(self.pinned_in, arrays):
            p.numpy()[...] = a
        self.static = [p.to(device) for p in self.pinned_in]
        self.shapes: list[tuple[int, ...] | None] = []

        def packed(*xs: torch.Tensor) -> torch.Tensor:
            outs = fn(*xs)
            self.shapes = [None if o is None else tuple(o.shape) for o in outs]
            return torch.cat([o.reshape(-1).float() for o in outs if o is not None])

        self.graph, self.out = _capture(packed, self.static)
        self.pinned_out = torch.empty(self.out.shape, dtype=torch.float32, pin_memory=True)

    def __call__(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        for p, s, a in zip(self.pinned_in, self.static, arrays):
            p.numpy()[...] = a
            s.copy_(p, non_blocking=True)
        self.graph.replay()
        self.pinned_out.copy_(self.out, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        flat, res, i = self.pinned_out.numpy(), [], 0
        for shape in self.shapes:
            if shape is None:
                res.append(None)
                continue
            n = int(np.prod(shape))
            res.append(flat[i : i + n].reshape(shape).copy())  # the buffer is overwritten by the next call
            i += n
        return res


class GraphReplay:
    def __init__(self, device: torch.device | str = "cuda") -> None:
        self.device = torch.device(device)
        self._graphs: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._graphs)

    def host(
        self, key: Any, make_fn: Callable[[], Callable[..., Sequence[torch.Tensor | None]]], *arrays: np.ndarray
    ) -> list[np.ndarray | None]:
        """``fn(*arrays)`` through the graph of ``key``, where ``fn = make_fn()`` is made and captured on first use
        (warm-up on a side stream, then one recorded call); what ``fn`` reads besides its inputs stays as it was
        at capture. From float32 host arrays to float32 host arrays (``fn`` returns a sequence of tensors; None
        outputs stay None), one transfer and one synchronisation each way."""
        with torch.cuda.device(self.device):  # streams, capture and synchronisation on the graph's own GPU
            entry = self._graphs.get(key)
            if entry is None:
                entry = self._graphs[key] = _HostGraph(make_fn(), arrays, self.device)
            return entry(arrays)
