"""The ``streamhand`` command's entry point: the command line (:mod:`streamhand.cli`), with a Ctrl-C that comes while
its modules still load said in one line (exit 130), as one that comes later is."""

from __future__ import annotations

import sys


def tolerant_output() -> None:
    """Standard output and error write what their encoding cannot hold as escapes instead of failing: a Windows
    program's output redirected or piped is in its code page (cp1252), where a camera named "Küche-カメラ" or a
    cache path under a Cyrillic user name ended ``echo`` and ``info`` with a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be changed now: left as it is
                pass


def main() -> None:
    tolerant_output()
    try:
        import typer.main

        from streamhand.cli import app

        command = typer.main.get_command(app)  # typer reads every command's options here: a second or so too
    except KeyboardInterrupt:
        sys.stderr.write("stopped: streamhand interrupted while starting\n")
        raise SystemExit(130) from None
    try:
        command()
    except OSError as e:  # writing the help or a usage error, before any command runs (`--help > /dev/full`)
        from streamhand.errors import environment_failure

        said = environment_failure(e) if not isinstance(e, BrokenPipeError) else ""
        if said is None:
            raise
        if said:
            sys.stderr.write(f"error: {said}\n")
        raise SystemExit(1 if said else 0) from None
