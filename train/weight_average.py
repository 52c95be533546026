"""A running average of a model's weights during training (an exponential moving average, as in Polyak averaging
and timm's ModelEma): the average of the last ~1 / (1 - decay) steps' weights, which generalises more steadily than
the last step's. The average is what a run validates and saves; the live weights keep training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class WeightAverage:
    """The exponential moving average of ``model``'s floating-point state (weights and buffers, such as batch norm
    statistics). Early on it follows the weights faster (``decay`` ramps up as (1 + n) / (10 + n) over the first
    updates), so the random start does not linger in it."""

    def __init__(self, model: torch.nn.Module, decay: float, updates: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight average decay must be in (0, 1), not {decay}")
        self.model, self.decay, self.updates = model, decay, updates
        self.names = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point]
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if k in self.names}

    def update(self) -> None:
        """Fold the model's current weights into the average (after each optimiser step)."""
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        live = self.model.state_dict()
        with torch.no_grad():
            avg = [self.average[k] for k in self.names]
            torch._foreach_lerp_(avg, [live[k].detach() for k in self.names], 1.0 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The model's state with the averaged weights in place of its own."""
        return {**self.model.state_dict(), **{k: v.clone() for k, v in self.average.items()}}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restart the average from ``state`` (a saved average, on resuming)."""
        for k in self.names:
            self.average[k].copy_(state[k])

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model carries the averaged weights inside the block (to validate or save it), its own after."""
        live = {k: v.detach().clone() for k, v in self.model.state_dict().items() if k in self.names}
        self.model.load_state_dict(self.average, strict=False)
        try:
            yield
        finally:
            self.model.load_state_dict(live, strict=False)
