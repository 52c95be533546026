"""The one error convention of ``streamhand`` and ``python -m train``.

A user's mistake (a bad option, a file that is not what it claims) is one line on stderr, ``error: ...``, naming
the option or file, and exit code 2; the commands raise ``typer.Exit(2)`` for those themselves, and the usage
errors of the command-line parser (a value of the wrong type, an unknown option) are put on one line here too.
Anything else that escapes a command is a defect: :class:`Commands` (the typer group class both command lines
use) writes its full traceback to a log file, prints one line that says what failed and where the traceback is,
and exits 1.
"""

from __future__ import annotations

import datetime
import errno
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import typer
from typer.core import TyperGroup

from streamhand.cache import cache_dir


def fail(msg: str, code: int = 2) -> NoReturn:
    """The convention's one line for a user's mistake (``error: msg`` on stderr), and its exit code."""
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def torch_missing(e: ImportError) -> bool:
    """Whether ``e`` is PyTorch missing (the ONNX-Runtime-only install), not another import failing (a broken
    PyTorch, or a module that is missing beside it, is raised on as it is)."""
    return getattr(e, "name", None) == "torch"


def fail_without_torch(what: str, e: ImportError) -> NoReturn:
    """One line and exit 2 where ``what`` needs PyTorch and it is not installed; another ImportError is raised on."""
    if not torch_missing(e):
        raise e
    fail(f"{what} needs PyTorch, which is not installed (pip install 'streamhand[torch]')")


def check_output_or_fail(path: str | Path | None, option: str, folder: bool = False) -> None:
    """One line and exit 2, before any work, if ``path`` cannot take a command's output: a file to write, or with
    ``folder`` a folder to write into (``None``: the option was not given)."""
    from streamhand.outputs import OutputError, check_output, check_output_dir

    if path is None:
        return
    try:
        (check_output_dir if folder else check_output)(path, option)
    except OutputError as e:
        fail(str(e))


def check_distinct_or_fail(outputs: list[tuple[str | Path | None, str]],
                           inputs: list[tuple[str | Path | None, str]] = ()) -> None:  # fmt: skip
    """One line and exit 2, before any work, where an output would overwrite an input or another output
    (:func:`streamhand.outputs.check_distinct`)."""
    from streamhand.outputs import OutputError, check_distinct

    try:
        check_distinct(outputs, inputs)
    except OutputError as e:
        fail(str(e))


#: how many crash logs are kept: writing one removes the oldest beyond these (they grew without bound)
CRASH_LOGS_KEPT = 50


def crash_log(exc: BaseException, command: str) -> Path | None:
    """Write ``exc``'s traceback (with the command line) to ``<cache>/logs/``, keeping the newest
    :data:`CRASH_LOGS_KEPT` there; the file, or None if it could not be written."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        folder = cache_dir("logs")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        text = f"command: {command}\nargv: {sys.argv!r}\n\n" + "".join(traceback.format_exception(exc))
        path.write_text(text, encoding="utf-8", errors="backslashreplace")  # not the code page: any name fits
    except (OSError, ValueError):  # ValueError: a name the file system's encoding cannot hold
        return None
    try:  # the names sort by their time stamp: the oldest first
        for old in sorted(folder.glob("crash-*.log"))[:-CRASH_LOGS_KEPT]:
            old.unlink(missing_ok=True)
    except OSError:  # a log that cannot be removed is no reason to lose this one
        pass
    return path


def first_line(exc: BaseException, default: str = "") -> str:
    """The first line of what ``exc`` says (``default`` where it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else default


def unexpected(exc: BaseException, command: str) -> str:
    """The one line for a failure no check foresaw; the traceback goes to a log file."""
    path = crash_log(exc, command)
    what = first_line(exc)
    where = (f"the traceback is in {path}" if path else
             f"the traceback could not be written into {cache_dir('logs')}: point STREAMHAND_CACHE at a writable "
             "folder to keep it")  # fmt: skip
    return f"error: {command} failed unexpectedly: {type(exc).__name__}{': ' + what if what else ''} ({where})"


def environment_failure(e: BaseException) -> str | None:
    """What ``e`` says of the place the command runs in, where that is its cause, else None: memory ran out, its
    working folder was removed (a relative path cannot be read any more), or what the command prints cannot be
    written (standard output on a full disk or a closed descriptor: the failure comes from the printing libraries;
    standard output is then pointed at nothing, so that the interpreter's final flush does not fail again)."""
    if (isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't start new thread" in str(e))
            or (type(e).__module__.startswith("cv2") and "Insufficient memory" in str(e))):  # OpenCV's own
        what = "no thread could be started (memory ran out)" if isinstance(e, RuntimeError) else "memory ran out"
        return (f"{what}: close other programs, give a smaller input, or raise the limit put on this process "
                "(`ulimit -v`, a container's memory)")  # fmt: skip
    if isinstance(e, FileNotFoundError):
        try:
            os.getcwd()
        except FileNotFoundError:
            return "the working folder no longer exists: give absolute paths, or run from a folder that exists"
        return None
    if not isinstance(e, OSError) or e.errno not in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EBADF):
        return None
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename.replace("\\", "/") if tb is not None else ""
    if not any(f"/{lib}/" in where for lib in ("click", "_click", "rich", "typer")):  # not the command's printing
        return None
    _quiet_stdout()
    return f"cannot write the output: {e.strerror or type(e).__name__}"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail on the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


class Commands(TyperGroup):
    """A typer command group whose unexpected failures follow the convention above (exit 1, one line, a log);
    :func:`commands` names the program."""

    program = "streamhand"

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from streamhand.outputs import made_folders

        failed = True
        try:
            result = super().invoke(ctx)
            failed = False
            return result
        except Exception as e:  # the one place that catches what nothing else did
            failed = getattr(e, "exit_code", 1) != 0  # typer.Exit(0) ends a command that went well
            where = f"{self.program} {ctx.invoked_subcommand or ''}".strip()
            if type(e).__module__.startswith(("click", "typer")):  # exits, usage errors, aborts: click's own
                if getattr(e, "exit_code", None) == 2 and hasattr(e, "format_message"):  # a usage error: one line
                    fail(f"{' '.join(e.format_message().split())} (see {where} --help)")
                raise
            if isinstance(e, BrokenPipeError):  # the reader went away (`streamhand info | head`): not a failure
                _quiet_stdout()
                raise typer.Exit(0) from None
            said = environment_failure(e)
            if said is not None:  # the place the command runs in, not the command: one line, no crash log
                typer.echo(f"error: {said}", err=True)
                raise typer.Exit(2 if isinstance(e, FileNotFoundError) else 1) from None
            typer.echo(unexpected(e, where), err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM where a command turns it into one): said, exit 130
            typer.echo(f"stopped: {self.program} {ctx.invoked_subcommand or ''} interrupted".replace("  ", " "),
                       err=True)  # fmt: skip
            raise typer.Exit(130) from None
        finally:
            made_folders(failed)  # a refused or failed command leaves no empty folder it made for its outputs


def commands(program: str) -> type[Commands]:
    """The :class:`Commands` of ``program`` (``streamhand``, ``python -m train``), for ``typer.Typer(cls=...)``."""
    return type("Commands", (Commands,), {"program": program})
