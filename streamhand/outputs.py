"""Files a command writes (reports, JSON figures, keys): checked before any work starts, written atomically at the
end, so that a bad path costs one line and no computed result is lost.

:func:`check_output` says in one line (naming the option) why a path cannot be written: a folder where a file is
meant, a parent that is missing, not a folder or not writable. Commands call it when they parse their options; the
folders it makes for an output are removed again where the command fails and they are still empty.
:func:`write_text_atomic` writes through a temporary file beside the target and renames it; if the write still
fails (the disk filled, the folder vanished), the temporary file is removed and :class:`OutputError` says why.
A file written while a command runs (a recording, a video) goes to :func:`part_path` and is put under its name by
:func:`finish_part`, which says where it stays where that fails (:class:`OutputUnfinished`).
"""

from __future__ import annotations

import errno
import glob
import math
import numbers
import os
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO


class OutputError(ValueError):
    """A path a command cannot write (the message is one line, naming the option)."""


class OutputUnfinished(OutputError):
    """An output written to its end that could not be put under its name (the file held open by another program, as
    Excel holds a .csv on Windows; the folder no longer writable): the message says where what was written stays."""


_made: list[Path] = []  # folders this process made for its outputs, the deepest first


def made_folders(failed: bool) -> None:
    """As a command ends: where it ``failed`` (refused its input, or stopped on an error), the folders made for its
    outputs that are still empty are removed; either way they are forgotten."""
    while _made:
        d = _made.pop(0)
        if failed:
            try:
                d.rmdir()  # only an empty folder goes
            except OSError:
                pass


def _make_folder(folder: Path, p: Path, option: str) -> None:
    """Make ``folder``, where ``p`` goes, if it is missing: :class:`OutputError` naming ``p`` where a file stands in
    its way or it cannot be made. What it makes is noted for :func:`made_folders`."""
    blocker = next((a for a in (folder, *folder.parents) if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"{option} {p}: {blocker} is a file, not a folder")
    # where each folder on the way really is (``new/../keep`` is ``keep``, which may be there already): only those
    # not there yet count as made
    real = dict.fromkeys(Path(os.path.realpath(a)) for a in (folder, *folder.parents))
    missing = [a for a in real if not a.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{option} {p}: cannot write there ({e.strerror or type(e).__name__})") from None
    _made[:0] = missing


def check_output(path: str | Path | None, option: str) -> Path | None:
    """``path`` if a file can be written there, else :class:`OutputError`; its parent folder is created where it is
    missing, and a probe file beside the target proves the folder takes files. None passes through (the option
    was not given)."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        example = p / ("out" + (p.suffix if p.suffix else ".json"))  # a folder named like the file: its kind
        raise OutputError(f"{option} {p}: is a folder; give a file name, e.g. {example}")
    if _special(p):  # /dev/stdout, a named pipe: written into as it is, never replaced
        if not os.access(p, os.W_OK):
            raise OutputError(f"{option} {p}: cannot write there (not writable)")
        return p
    target = _through_link(p)  # a link is written through: its target's folder is the one that must take files
    _make_folder(target.parent, p, option)
    probe = target.with_name(f".{target.name}.{os.getpid()}.probe")  # per process: two commands checking at once
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise OutputError(f"{option} {p}: cannot write there ({e.strerror or type(e).__name__})") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"{option} {p}: the file is not writable")
    return p


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (the same path once resolved, or, both existing, the same inode)."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_distinct(outputs: Iterable[tuple[str | Path | None, str]],
                   inputs: Iterable[tuple[str | Path | None, str]] = ()) -> None:  # fmt: skip
    """:class:`OutputError` where an output (``(path, option)``; None: not given) names a file that an input of the
    same command reads, or another output writes: the command would overwrite its own input, or one result
    another, without a word."""
    outs = [(Path(p), o) for p, o in outputs if p is not None]
    ins = [(Path(p), o) for p, o in inputs if p is not None]
    for i, (p, option) in enumerate(outs):
        for q, other in ins:
            if _same_file(p, q):
                raise OutputError(f"{option} {p}: that is the input {other}; write the output elsewhere")
        for q, other in outs[:i]:
            if _same_file(p, q):
                raise OutputError(f"{option} {p}: {other} writes there too; give each its own file")


def check_output_dir(path: str | Path, option: str) -> Path:
    """A folder a command will write files into (created if missing): not a file, writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} {p}: is a file; give a folder")
    _make_folder(p, p, option)
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {p}: folder is not writable")
    return p


def json_finite(v: object) -> object:
    """``v`` with every NaN and infinity as None: JSON has neither (Python writes them, other readers refuse the
    file), so a figure that could not be measured is written as null."""
    if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral):  # numpy's floats too
        return float(v) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: json_finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_finite(x) for x in v]
    return v


def part_path(path: Path) -> Path:
    """The hidden name a file is written under before it is renamed to ``path`` (``.STEM.PID.part.SUFFIX``): per
    process (two writers each rename a whole file), keeping the suffix (OpenCV and Rerun pick a container by it).
    The part files of ``path`` that processes no longer alive left (killed, the machine switched off) are removed
    once unchanged for :data:`PART_FILE_IDLE_S` (a process of that number may be another container's, writing on a
    shared volume: a live writer keeps its file changing)."""
    path = _through_link(path)
    tail = f".part{path.suffix}"
    _remove_dead(path.parent.glob(f".{glob.escape(path.stem)}.*{glob.escape(tail)}"), tail, PART_FILE_IDLE_S)
    return path.with_name(f".{path.stem}.{os.getpid()}{tail}")


def _through_link(path: Path) -> Path:
    """Where a file written to ``path`` goes: a symbolic link's target (``latest.json`` pointing at today's report is
    written through, the link kept, not replaced by a file), else ``path``."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def finish_part(part: Path, path: Path, option: str) -> None:
    """The finished part file ``part`` (:func:`part_path`) under its name ``path``, or :class:`OutputUnfinished`
    naming ``option`` and saying where what was written stays (the name held open by another program, as Excel holds
    a .csv on Windows, or the folder not writable any more)."""
    try:
        os.replace(part, _through_link(path))
    except OSError as e:
        raise unfinished(option, path, e, f"what was saved is in {part}") from None


def unfinished(option: str, path: Path, e: OSError, kept: str) -> OutputUnfinished:
    """:class:`OutputUnfinished` for the output ``path`` given as ``option`` that ``e`` stopped; ``kept`` says where
    what was written stays."""
    return OutputUnfinished(f"{option} {path}: could not be written ({e.strerror or type(e).__name__}); {kept}")


def cut_short(file: IO, option: str, path: Path, e: OSError, kept: str) -> OutputUnfinished:
    """An output whose ``file`` (its part file) could not take more (the disk full, a file-size limit): closed as it
    is, what its buffer still held given up, and :func:`unfinished` saying where what was written stays."""
    try:
        file.close()
    except OSError:  # what the buffer still held cannot be written either
        pass
    return unfinished(option, path, e, kept)


def remove_abandoned(path: Path) -> None:
    """Delete the part files (``NAME.PID.tmp``) that processes no longer alive left beside ``path`` (one killed by
    SIGKILL cannot remove its own); one still being written by a live process stays."""
    _remove_dead(path.parent.glob(glob.escape(path.name) + ".*.tmp"))


def sweep_abandoned(folder: Path) -> None:
    """:func:`remove_abandoned` for every part file (``*.PID.tmp``) in ``folder`` (a cache's)."""
    _remove_dead(folder.glob("*.*.tmp"))


#: how long a part file of a process that is not here must have been left unchanged before it is removed
PART_FILE_IDLE_S = 3600.0


def _remove_dead(parts: Iterable[Path], tail: str = ".tmp", idle_s: float = 0.0) -> None:
    for old in parts:
        if idle_s > 0:
            try:
                if time.time() - old.stat().st_mtime < idle_s:
                    continue
            except OSError:
                continue
        pid = old.name[: -len(tail)].rpartition(".")[2]
        if pid.isdigit() and _process_gone(int(pid)):
            try:
                old.unlink(missing_ok=True)
            except OSError:  # a read-only folder, or another user's file: left for one who may remove it
                pass


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs: signal 0 asks without touching it; on Windows, where ``os.kill(pid, 0)``
    sends a console Ctrl+C (0 is ``CTRL_C_EVENT``) to that process and all of its console, Windows is asked."""
    if sys.platform == "win32":
        return _windows_process_gone(pid)
    try:
        os.kill(pid, 0)  # alive (or not ours to ask): leave it
    except ProcessLookupError:
        return True
    except (OverflowError, OSError):  # not ours to ask (PermissionError), a pid past the system's range
        return False
    return False


def _windows_process_gone(pid: int) -> bool:
    """Windows: no process ``pid`` (``OpenProcess`` fails with ERROR_INVALID_PARAMETER), or one that has exited
    (``GetExitCodeProcess`` other than STILL_ACTIVE). Anything else, or an error asking: not gone."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 87  # ERROR_INVALID_PARAMETER: no such process
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value != 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def private_folder(prefix: str) -> Path:
    """A new temporary folder that is removed with everything in it when the process ends (the graphs of a model
    that has no file, and so no place in the cache)."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _special(p: Path) -> bool:
    """Whether ``p`` is there and neither a folder nor a regular file: a device, a named pipe, or a name for one of
    the process's own streams (``/dev/stdout`` leads to ``/proc/self/fd/1``, a regular file where output is
    redirected: it is still written into, never replaced)."""
    if not p.exists() or p.is_dir():
        return False
    if not p.is_file():
        return True
    hop = p
    for _ in range(16):  # the links on the way: one through /dev or /proc names a stream, not a file to replace
        if str(hop).startswith(("/dev/", "/proc/")):
            return True
        if not hop.is_symlink():
            return False
        hop = Path(os.path.join(hop.parent, os.readlink(hop)))
    return False


def write_text_atomic(path: str | Path, text: str, option: str = "") -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (into a device or a named pipe, such as
    ``/dev/stdout``, directly: a rename would replace it); :class:`OutputError` if it fails."""
    p = Path(path)
    where = f"{option} {p}" if option else str(p)
    if _special(p):
        try:  # appended (a redirected standard output keeps what came before); a pipe nobody reads: said, not waited on
            flags = os.O_WRONLY | os.O_APPEND | (os.O_NONBLOCK if stat.S_ISFIFO(os.stat(p).st_mode) else 0)
            fd = os.open(p, flags)
            if hasattr(os, "set_blocking"):  # Windows before Python 3.12 has none (and no named pipes opened so)
                os.set_blocking(fd, True)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            why = "no program reads the pipe" if e.errno == errno.ENXIO else e.strerror or type(e).__name__
            raise OutputError(f"{where}: could not be written ({why})") from None
        return p
    p = _through_link(p)
    remove_abandoned(p)
    tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")  # per process: two writers at once each rename a whole file
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(f"{where}: could not be written ({e.strerror or type(e).__name__})") from None
    return p
