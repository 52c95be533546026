"""Every option of every command, generated bad values: one line naming the option or the file, exit 2, never a
traceback, and nothing started. The options are read from the two command lines themselves (``streamhand`` and
``python -m train``), so a new option is covered as soon as it exists; a new option whose values are not a number
must be given a kind in :data:`KINDS` (the test says so), which decides its bad values."""

from __future__ import annotations

import signal
import time
import typing
from pathlib import Path

import pytest
import typer.main

from tests.conftest import free_ports
from tests.helpers import ROOT, Ran, invoke

#: kinds of value for every option that is not a number or a switch
KINDS = {
    "streamhand run": {
        "--source": "choice", "--camera": "camera", "--video": "video_in", "--images": "images_in",
        "--serial": "serial", "--intrinsics": "data_in", "--detector": "choice", "--detector-runtime": "choice",
        "--tracking": "choice", "--model": "model_in", "--backend": "choice", "--engines": "folder_in",
        "--modalities": "choices", "--bind": "bind", "--connect": "endpoint", "--camera-id": "label",
        "--curve-server-key": "key_in", "--curve-allowed": "folder_in", "--report": "file_out",
        "--save": "file_out", "--save-video": "file_out", "--rerun": "file_out",
        "--realsense-file": "video_in", "--low-confidence": "choice", "--precision": "choice",
        "--config": "data_in",
    },
    "streamhand echo": {"--address": "endpoint", "--control": "endpoint", "--topic": "free",
                        "--curve-server-key": "key_in", "--curve-client-key": "key_in"},
    "streamhand view": {"--address": "endpoint", "--control": "endpoint", "--curve-server-key": "key_in",
                        "--curve-client-key": "key_in", "--save": "file_out"},
    "streamhand calibrate-hand": {"--serial": "serial", "--source": "choice", "--model": "model_in"},
    "streamhand bench": {"--backends": "choices", "--modalities": "choices", "--batch": "ints",
                         "--detectors": "choices", "--json": "file_out", "--model": "model_in"},
    "streamhand build-engine": {"--model": "model_in", "--modalities": "choices", "--precision": "choice",
                                "--batch": "ints", "--timing-cache": "file_out", "--out": "folder_out"},
    "streamhand keys": {"--out": "folder_out", "--name": "name"},
    "streamhand proxy": {"--bind": "bind"},
    "streamhand record": {"OUT": "file_out", "--address": "endpoint", "--control": "endpoint", "--topic": "free",
                          "--curve-server-key": "key_in", "--curve-client-key": "key_in"},
    "streamhand replay": {"FILE": "data_in", "--speed": "speed", "--bind": "bind"},
    "python -m train fit": {"--config": "data_in", "--resume": "model_in", "--out-dir": "folder_out"},
    "python -m train eval": {"--checkpoint": "model_in", "--data": "choice", "--root": "folder_in",
                             "--json": "file_out", "--keypoints": "choice", "--modalities": "choices",
                             "--pck-png": "file_out"},
    "python -m train synth-report": {"--checkpoint": "model_in", "--json": "file_out", "--frames": "folder_in"},
    "python -m train render-sheet": {"--out": "file_out"},
    "python -m train tune-smoothing": {"--seeds": "ints", "--model": "model_in", "--json": "file_out"},
    "python -m train hard-hands": {"--checkpoint": "model_in", "--kinds": "choices", "--json": "file_out",
                                   "--examples-png": "file_out"},
    "python -m train mediapipe-pairs": {"--cache": "folder_out"},
    "python -m train calibrate-std": {"--checkpoint": "model_in", "--cache": "folder_out", "--world": "choice"},
    "python -m train fit-error-model": {"--checkpoint": "model_in", "--cache": "folder_out", "--world": "choice",
                                        "--json": "file_out", "--reliability-png": "file_out"},
    "python -m train card": {"--checkpoint": "model_in", "--out": "file_out", "--metrics": "data_in",
                             "--summary": "free"},
    "python -m train ensemble": {"CHECKPOINTS": "model_in", "--out": "file_out"},
    "python -m train latent-walk": {"--checkpoint": "model_in", "--out": "file_out", "--modality": "choice"},
    "python -m train embed": {"--checkpoint": "model_in", "--out": "file_out"},
    "python -m train compare": {"--out": "folder_out", "--only": "choices", "--frames": "folder_in",
                                "--rhd-root": "folder_in", "--stb-root": "folder_in", "--json": "file_out"},
}  # fmt: skip
#: options whose every value is valid text, with the reason (no generated bad value exists)
FREE = {"free": "any text is a valid value (a topic prefix, a one-line summary)"}

#: bad values per kind; ``{dir}`` a folder, ``{file}`` a text file, ``{empty}`` an empty file, ``{junk}`` random bytes,
#: ``{missing}`` a path that does not exist
BAD = {
    "choice": ["bogus", "", "🙂", "AUTO,", "x" * 300],
    "choices": ["bogus", "2d,bogus", "🙂", ",", "x" * 300],
    "ints": ["0", "a,b", "-1", "1,,x", ""],
    "speed": ["0", "-1", "fast", "", "inf"],
    "camera": ["99", "/dev/no-such-camera", "-1", "", "🙂"],
    "serial": ["0", "nope", "", "🙂", "x" * 300],
    "label": ["", " ", "x" * 65, "a\nb", "\t"],
    "name": ["", "../x", "a/b", ".", ".."],
    "endpoint": ["127.0.0.1:5560", "tcp://", "tcp://127.0.0.1:notaport", "udp://127.0.0.1:5", "", "tcp://127.0.0.1:99999"],
    "bind": ["999.1.1.1", "not an address", "", "tcp://127.0.0.1", "1.2.3"],
    "video_in": ["{missing}", "{dir}", "{empty}", "{junk}", "{file}"],
    "images_in": ["{missing}", "{dir}", "{empty}", "{junk}", "{file}"],
    "data_in": ["{missing}", "{dir}", "{empty}", "{junk}", "{file}"],
    "model_in": ["{missing}", "{dir}", "{empty}", "{junk}", "{file}"],
    "key_in": ["{missing}", "{dir}", "{empty}", "{junk}", "{file}"],
    "folder_in": ["{missing}", "{file}", "{empty}", "{junk}", "/dev/null"],
    "file_out": ["{dir}", "{file}/x.out", "/proc/no-such/x.out", "", "/"],
    "folder_out": ["{file}", "{file}/x", "/proc/no-such/d", "/dev/null", "/sys/no-such"],
}
INT_BAD, FLOAT_BAD = ["abc", "", "1.5", "1e3", "0x10"], ["abc", "", "1,5", "1.2.3", "ten"]


def _apps():
    from streamhand.cli import app as streamhand_app
    from train.__main__ import app as train_app

    return {"streamhand": streamhand_app, "python -m train": train_app}


def _number_type(option) -> type | None:
    """int or float for a number option (ranges included). Typer 0.29 describes a parameter's type itself
    (``type_descriptor``); earlier releases hand it to click (``option.type``, named "integer", "float range")."""
    desc = getattr(option, "type_descriptor", None)
    if desc is not None:
        args = [a for a in typing.get_args(desc.annotation) if a is not type(None)] or [desc.annotation]
        return args[0] if args[0] in (int, float) else None
    name = getattr(option.type, "name", "")
    return int if name.startswith("integer") else float if name.startswith("float") else None


def _bounds(option) -> tuple:
    """A number option's (min, max), None where open: on the option (typer 0.29) or on click's range type."""
    where = option if hasattr(option, "type_descriptor") else option.type
    return getattr(where, "min", None), getattr(where, "max", None)


def _name(p) -> str:
    """An option's first flag; a positional argument's metavar-like name in capitals (OUT, FILE)."""
    return p.name.upper() if _positional(p) else p.opts[0]


def _positional(p) -> bool:
    return not getattr(p, "opts", [""])[0].startswith("-")


def _options() -> list[tuple[str, str, str, object]]:
    """(program, command, option name, click parameter) for every option and argument of every command but --help."""
    out = []
    for program, app in _apps().items():
        for name, cmd in typer.main.get_command(app).commands.items():
            out.extend((program, name, _name(p), p) for p in cmd.params if p.opts[0] != "--help")
    return out


def _cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for program, command, opt, p in _options():
        if getattr(p, "is_flag", False):
            cases.append((program, command, opt, "=yes"))  # a switch takes no value
            continue
        kind = _number_type(p)
        if kind is not None:
            bad = list(INT_BAD if kind is int else FLOAT_BAD)
            lo, hi = _bounds(p)
            if lo is not None:
                bad.append(str(kind(lo) - (1 if kind is int else 0.001)))
            if hi is not None:
                bad.append(str(kind(hi) + 1))
            cases.extend((program, command, opt, v) for v in bad)
            continue
        kind = KINDS.get(f"{program} {command}", {}).get(opt, "unclassified")
        if kind in FREE:
            continue
        cases.extend((program, command, opt, v) for v in BAD.get(kind, ["<unclassified>"]))
    return cases


CASES = _cases()


def test_every_option_has_a_kind_and_five_bad_values():
    counts: dict[tuple[str, str, str], int] = {}
    for program, command, opt, _ in CASES:
        counts[(program, command, opt)] = counts.get((program, command, opt), 0) + 1
    unclassified = [k for k, (_, _, _, v) in zip(counts, CASES) if v == "<unclassified>"]
    assert not [c for c in CASES if c[3] == "<unclassified>"], f"give these options a kind in KINDS: {unclassified}"
    switches = {(p, c, o) for p, c, o, x in _options() if getattr(x, "is_flag", False)}
    few = {k: n for k, n in counts.items() if n < 5 and k not in switches}
    assert not few, few
    free = [(p, c, o) for p, c, o, _ in _options() if KINDS.get(f"{p} {c}", {}).get(o) in FREE]
    assert len(free) <= 3, free  # the exemptions stay few


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "folder").mkdir()
    (d / "notes.txt").write_text("hello, this is not what the option wants\n")
    (d / "empty.bin").write_bytes(b"")
    (d / "junk.bin").write_bytes(bytes(range(256)) * 8)
    return {"{dir}": str(d / "folder"), "{file}": str(d / "notes.txt"), "{empty}": str(d / "empty.bin"),
            "{junk}": str(d / "junk.bin"), "{missing}": str(d / "no-such" / "thing.x")}  # fmt: skip


def _base(program: str, command: str, tiny: Path, tmp: Path) -> list[str]:
    """What a command needs besides the option under test, chosen so that a bad value that slipped through would
    cost little (one demo frame, a tiny checkpoint, a few steps) and be seen: the test expects exit 2."""
    pub, control, front, back = free_ports(4)
    ports = ["--port", str(pub), "--control-port", str(control)]
    return {
        "streamhand run": ["--frames", "1", "--no-realtime", *ports],
        "streamhand echo": ["--count", "1", "--timeout", "0.3"],
        "streamhand view": [],
        "streamhand calibrate-hand": ["--source", "demo", "--frames", "10"],
        "streamhand bench": ["--iters", "5", "--backends", "onnxruntime", "--modalities", "2d", "--batch", "1",
                             "--detectors", ""],
        "streamhand build-engine": ["--out", str(tmp / "engines")],
        "streamhand keys": ["--out", str(tmp / "keys")],
        "streamhand proxy": ["--frontend-port", str(front), "--backend-port", str(back)],
        # the positional argument first: dropped when it is what is under test
        "streamhand record": [str(tmp / "r.mcap"), "--timeout", "0.3"],
        "streamhand replay": [_recording(tmp), *ports, "--speed", "max", "--delay", "0"],
        "python -m train fit": ["--config", str(ROOT / "configs" / "train" / "smoke.yaml"), "--steps", "2",
                                "--out-dir", str(tmp / "runs"), "--no-progress"],
        "python -m train eval": ["--checkpoint", str(tiny), "--n", "5"],
        "python -m train synth-report": ["--n", "2"],
        "python -m train render-sheet": ["--n", "2", "--out", str(tmp / "sheet.png"), "--no-progress"],
        "python -m train hard-hands": ["--n", "1", "--kinds", "clean"],
        "python -m train tune-smoothing": ["--seeds", "1", "--frames", "10", "--model", str(tiny)],
        "python -m train mediapipe-pairs": ["--n", "2", "--cache", str(tmp / "cache")],
        "python -m train calibrate-std": ["--checkpoint", str(tiny), "--n", "10", "--cache", str(tmp / "cache")],
        "python -m train fit-error-model": ["--checkpoint", str(tiny), "--n", "20", "--held-n", "20", "--cache",
                                            str(tmp / "cache")],
        "python -m train card": ["--checkpoint", str(tiny), "--out", str(tmp / "card.pt")],
        "python -m train ensemble": [str(tiny), "--out", str(tmp / "ensemble.pt")],
        "python -m train latent-walk": ["--checkpoint", str(tiny), "--out", str(tmp / "walk.png")],
        "python -m train embed": ["--checkpoint", str(tiny), "--out", str(tmp / "embed.png")],
        "python -m train compare": ["--steps", "2", "--out", str(tmp / "compare"), "--no-progress"],
    }[f"{program} {command}"]  # fmt: skip


class _TooLong(Exception):
    pass


def _run(program: str, args: list[str], seconds: int = 60) -> Ran:
    """Run in this process; a command that has not refused its input within ``seconds`` is stopped (it started
    work it should not have)."""

    def stop(*_):
        raise _TooLong(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, stop)
    pending = signal.alarm(seconds)  # pytest-timeout's own alarm, if any: put back afterwards
    t0 = time.monotonic()
    try:
        app = _apps()[program]
        return invoke(*args, app=app)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if pending:
            signal.alarm(max(1, pending - int(time.monotonic() - t0)))


def _recording(tmp: Path) -> str:
    """A small valid recording (for replay's options)."""
    from streamhand.stream.recording import McapRecorder

    rec = McapRecorder(tmp / "good.mcap")
    rec.write("log.info", b"\x80")
    return str(rec.close())


def _without_own(base: list[str], opt: str) -> list[str]:
    """``base`` without the option under test (and its value); a positional argument under test is the first."""
    if not opt.startswith("-"):
        return base[1:]
    out, skip = [], False
    for a in base:
        if skip:
            skip = False
            continue
        if a == opt:
            skip = True
            continue
        out.append(a)
    return out


@pytest.mark.parametrize(("program", "command", "opt", "value"), CASES)
def test_bad_value_is_one_line_naming_it(program, command, opt, value, places, tiny_checkpoint, tmp_path):
    value = "".join(places.get(v, v) for v in _split(value))
    base = _without_own(_base(program, command, tiny_checkpoint, tmp_path), opt)
    if not opt.startswith("-"):  # a positional argument
        words = [command, value, *base]
    elif value.startswith("="):
        words = [command, *base, f"{opt}{value}"]
    else:
        words = [command, *base, opt, value]
    r = _run(program, words)
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr and "failed unexpectedly" not in err, err[-1500:]
    assert r.returncode == 2, (r.returncode, err[-1500:])
    named = [opt, value.strip(), Path(value).name] if value.strip() else [opt]
    named += [value.strip("=")] if value.startswith("=") else []
    assert any(n and n in err for n in named), err[-1500:]


def _split(value: str) -> list[str]:
    import re

    return [p for p in re.split(r"(\{\w+\})", value) if p != ""] or [value]
