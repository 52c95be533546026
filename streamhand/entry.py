"""The ``streamhand`` command's entry point: the command line (:mod:`streamhand.cli`), with a Ctrl-C that comes while
its modules still load said in one line (exit 130), as one that comes later is."""

from __future__ import annotations

import sys


def main() -> None:
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
