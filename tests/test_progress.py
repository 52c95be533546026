"""Progress on long work (``train/progress.py``): a bar on a terminal, a log line a minute where the output is a
file, nothing where progress is off; every item passes through unchanged."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress, TextColumn

from train.progress import Heartbeat, progress_bar, track


def _console(terminal: bool) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal)


@pytest.mark.parametrize(
    ("terminal", "every_s", "beats"),
    [
        (False, 0.0, [50, 100, 150, 200]),  # a log file: a line at every call when due
        (False, 3600.0, [200]),  # not yet due: only the last step's line
        (True, 0.0, []),  # a terminal: the bar draws itself, no lines
    ],
)
def test_a_heartbeat_logs_where_the_bar_cannot_draw(caplog, terminal, every_s, beats):
    beat = Heartbeat(Progress(console=_console(terminal)), "train x", 200, every_s, unit="step ")
    with caplog.at_level("INFO", logger="train.progress"):
        for done in (50, 100, 150, 200):
            beat(done, "loss 0.100  1,344 samples/s", 0.5)
    lines = [r.getMessage() for r in caplog.records]
    assert [int(m.split("step ")[1].split("/")[0]) for m in lines] == beats
    if beats and beats[0] == 50:
        assert lines[0] == "train x: step 50/200, loss 0.100, 1,344 samples/s, about 75 s left"
        assert lines[-1].endswith("about 0 s left")
    assert Heartbeat(Progress(console=_console(False), disable=True), "x", 1).on is False


@pytest.mark.parametrize(
    ("terminal", "disable", "logged"),
    [(False, False, True), (True, False, False), (False, True, False)],
)
def test_track_passes_every_item_and_says_how_far_it_is(caplog, terminal, disable, logged):
    items = [object() for _ in range(5)]
    with caplog.at_level("INFO", logger="train.progress"):
        got = list(track(iter(items), "render + MediaPipe", total=5, disable=disable, console=_console(terminal),
                         every_s=0.0))  # fmt: skip
    assert got == items
    lines = [r.getMessage() for r in caplog.records]
    if logged:
        assert [m.split(", ")[0] for m in lines] == [f"render + MediaPipe: {i}/5" for i in range(1, 6)]
        assert all("left" in m for m in lines)
    else:
        assert lines == []


def test_track_counts_what_has_no_length_and_stops_where_its_consumer_stops(caplog):
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    with caplog.at_level("INFO", logger="train.progress"):
        got = []
        for x in track(endless(), "frames", console=_console(False), every_s=0.0):
            got.append(x)
            if x == 2:
                break
    assert got == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records] == ["frames: 1", "frames: 2"]  # the third is left at the break


@pytest.mark.parametrize("terminal", [True, False])
def test_the_bar_draws_on_standard_error_and_leaves_nothing_where_that_is_no_terminal(terminal):
    assert progress_bar().console.stderr  # standard output stays the command's own (a table, a JSON)
    console = _console(terminal)
    with progress_bar(TextColumn("{task.description}"), console=console) as bar:
        bar.add_task("train smoke", total=2, completed=2)
    assert ("train smoke" in console.file.getvalue()) is terminal
