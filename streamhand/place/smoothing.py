"""One Euro filter (Casiez et al., CHI 2012), over every joint at once (one compiled step a frame:
:mod:`streamhand.jit`), one filter per track."""

from __future__ import annotations

import math

import numpy as np

from streamhand.jit import f64, njit

#: the defaults (``streamhand run``'s too: :class:`streamhand.runtime_config.SmoothConfig`): One Euro's cutoff at rest
#: (Hz), its rise per m/s of joint speed (Hz) and the speed estimate's cutoff (Hz), as ``python -m train
#: tune-smoothing`` chose them on rendered clips other than the demo's (docs/usage.md, "Smoothing")
MIN_CUTOFF, BETA, D_CUTOFF = 4.0, 40.0, 2.0


@njit
def _alpha(cutoff: float, dt: float) -> float:
    """The smoothing factor of a first-order low-pass filter with ``cutoff`` (Hz) sampled ``dt`` (s) apart."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuro:
    """Smooths an array signal; ``min_cutoff`` (Hz) trades jitter for lag at rest, ``beta`` (Hz per unit of the
    signal's speed: per m/s for joints in metres) opens the filter when it moves, ``d_cutoff`` smooths that speed."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, d_cutoff: float = D_CUTOFF):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One Euro needs min_cutoff > 0, d_cutoff > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = f64(x)
        if self._x is None or self._dx is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        _step(x.reshape(-1), self._x.reshape(-1), self._dx.reshape(-1), t - self._t, self.min_cutoff, self.beta,
              self.d_cutoff)  # fmt: skip
        self._t = t
        return self._x.copy()


@njit
def _step(x: np.ndarray, prev: np.ndarray, speed: np.ndarray, dt: float, min_cutoff: float, beta: float,
          d_cutoff: float) -> None:  # fmt: skip
    """One frame of the filter, in place on the filtered signal ``prev`` and its filtered speed ``speed`` (1-D)."""
    a_d = _alpha(d_cutoff, dt)
    for i in range(len(x)):
        speed[i] = a_d * ((x[i] - prev[i]) / dt) + (1 - a_d) * speed[i]
        a = _alpha(min_cutoff + beta * abs(speed[i]), dt)
        prev[i] = a * x[i] + (1 - a) * prev[i]


class TrackSmoother:
    """One :class:`OneEuro` per track id; ``end`` forgets a track."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, enabled: bool = True,
                 d_cutoff: float = D_CUTOFF):
        self.min_cutoff, self.beta, self.enabled, self.d_cutoff = min_cutoff, beta, enabled, d_cutoff
        self._filters: dict[int, OneEuro] = {}

    def __call__(self, track_id: int, x: np.ndarray, t: float) -> np.ndarray:
        if not self.enabled:
            return np.asarray(x, dtype=np.float64)
        f = self._filters.setdefault(track_id, OneEuro(self.min_cutoff, self.beta, self.d_cutoff))
        return f(x, t)

    def end(self, track_id: int) -> None:
        self._filters.pop(track_id, None)
