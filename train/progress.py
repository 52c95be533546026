"""Progress on long work: rich's bar on standard error where that is a terminal, and where it is not (output to a
file, a batch job, ``nohup``) a log line every minute instead — how far, and about how long is left."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)
T = TypeVar("T")


class Heartbeat:
    """Where ``bar`` cannot draw (its console is not a terminal), a log line every ``every_s`` seconds and at the
    last item: ``label``, how far of ``total`` (``unit`` before the count, e.g. "step "), the bar's own figures and
    about how long is left."""

    def __init__(self, bar: Progress, label: str, total: int, every_s: float = 60.0, unit: str = ""):
        self.on = not bar.live.console.is_terminal and not bar.disable
        self.label, self.total, self.every_s, self.unit = label, total, every_s, unit
        self._start = self._last = time.monotonic()

    def __call__(self, done: int, info: str = "", s_per_item: float | None = None) -> None:
        """At ``done`` items, with the bar's ``info`` (its figures, two spaces apart) and the seconds an item takes
        (None: the time since the heartbeat began over ``done``)."""
        now = time.monotonic()
        if not self.on or (now - self._last < self.every_s and done < self.total):
            return
        self._last = now
        parts = [f"{self.label}: {self.unit}{done}/{self.total}" if self.total else f"{self.label}: {self.unit}{done}"]
        parts += [info.replace("  ", ", ")] if info else []
        if self.total:
            per = (now - self._start) / max(done, 1) if s_per_item is None else s_per_item
            left = max(self.total - done, 0) * per
            parts.append(f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left")
        log.info("%s", ", ".join(parts))


def progress_bar(*columns: Any, disable: bool = False, console: Console | None = None) -> Progress:
    """rich's ``Progress`` drawn on ``console``, standard error by default, so that standard output stays the
    command's own (a table, a JSON); where that is not a terminal it leaves nothing behind (a :class:`Heartbeat`
    logs instead)."""
    console = console or Console(stderr=True)
    return Progress(*columns, console=console, disable=disable, transient=not console.is_terminal)


def track(sequence: Iterable[T], description: str = "", total: int | None = None, disable: bool = False,
          console: Console | None = None, every_s: float = 60.0) -> Iterator[T]:  # fmt: skip
    """rich's ``track``, drawn on standard error (standard output stays the command's own), with a
    :class:`Heartbeat` where that is not a terminal."""
    if total is None and hasattr(sequence, "__len__"):
        total = len(sequence)  # type: ignore[arg-type]
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with progress_bar(*cols, disable=disable, console=console) as bar:
        task = bar.add_task(description, total=total)
        beat = Heartbeat(bar, description, total or 0, every_s)
        for i, item in enumerate(sequence, 1):
            yield item
            bar.update(task, completed=i)
            beat(i)
