"""Third-party log noise, off by default: OpenCV's and FFmpeg's native warnings (a missing camera, a broken
video), TensorFlow Lite's and absl's start-up lines from MediaPipe, matplotlib's and PIL's debug chatter.
Our own one-line errors stay alone on stderr; ``-v`` shows the native lines again (at DEBUG level).

MediaPipe's C++ writes straight to file descriptor 2 while its graph starts and on its first frames, where
no environment variable reaches. :func:`native_stderr_filtered` catches that descriptor for such a stretch
and writes back whatever is not native noise (so nothing of ours is lost, only delayed)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger("streamhand.native")

#: lines that native libraries print on their own: glog/absl (``W0000 00:00:...``), TensorFlow Lite's
#: delegate notice, absl's pre-initialisation warning, OpenCV's ``[ WARN:...]``, FFmpeg's ``[mov,... @ 0x...]``
NATIVE_NOISE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d|INFO: Created TensorFlow Lite|WARNING: All log messages before absl::"
    r"|\[ ?(WARN|ERROR|INFO):\d|\[[\w,]+ @ 0x[0-9a-f]+\])"
)
_lock = threading.Lock()


def configure(verbose: bool) -> None:
    """Set the native libraries' own log levels (before they are imported) and quiet chatty Python loggers."""
    os.environ.setdefault("GLOG_minloglevel", "0" if verbose else "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    if not verbose:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    for name in ("matplotlib", "PIL", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _matplotlib_config_folder()


@contextlib.contextmanager
def opencv_silenced() -> Iterator[None]:
    """OpenCV's own log lines off for the block (a camera index that is not there prints two), where the environment
    came too late for them (a program that imported cv2 before streamhand), unless streamhand logs at DEBUG (``-v``);
    the level it had is put back."""
    import cv2

    if logging.getLogger("streamhand").isEnabledFor(logging.DEBUG) or not hasattr(cv2, "setLogLevel"):
        yield
        return
    before = cv2.getLogLevel()
    cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        cv2.setLogLevel(before)


def _matplotlib_config_folder() -> None:
    """MediaPipe's import pulls in matplotlib, which warns (two long lines, every run) where its config folder cannot
    be written (a read-only home: a container, a service user); it is then given one in streamhand's cache (or a
    temporary one, as matplotlib would make itself), without the warning."""
    if "MPLCONFIGDIR" in os.environ:
        return
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    folder = os.path.join(home, "matplotlib")
    made = next((p for p in (folder, home, os.path.dirname(home)) if os.path.exists(p)), "")
    if os.path.isdir(made) and os.access(made, os.W_OK):  # there, or matplotlib can make it
        return
    from streamhand.cache import cache_dir

    for place in (cache_dir("matplotlib"), None):  # ours where it can be made, else a new temporary one
        try:
            if place is None:
                os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="streamhand-matplotlib-")
            else:
                place.mkdir(parents=True, exist_ok=True)
                os.environ["MPLCONFIGDIR"] = str(place)
            return
        except OSError:
            continue


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Catch file descriptor 2 for the block; afterwards write back every line that is not native noise (those
    go to the DEBUG log). Re-entrant calls from other threads do nothing extra. An exception anywhere in it (a
    Ctrl-C) gives descriptor 2 back: standard error is never left pointing at the catch."""
    if not _lock.acquire(blocking=False):
        yield
        return
    try:
        if sys.stderr is None:  # started with standard error closed: descriptor 2, if any, is another file's now
            yield
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        with tempfile.TemporaryFile() as tmp:
            saved = None
            try:
                try:
                    saved = os.dup(2)
                except OSError:  # no usable descriptor 2 (embedded interpreters): nothing to filter
                    saved = None
                if saved is not None:
                    os.dup2(tmp.fileno(), 2)
                yield
            finally:
                if saved is not None:
                    with contextlib.suppress(Exception):
                        sys.stderr.flush()
                    os.dup2(saved, 2)
                    os.close(saved)
            if saved is not None:
                tmp.seek(0)
                _replay(tmp.read().decode(errors="replace"))
    finally:
        _lock.release()


def _replay(text: str) -> None:
    for line in text.split("\n"):
        # a line redrawn in place (a live status line) may run straight into a native line: judge each piece
        pieces = re.split(r"(\r|\x1b\[K)", line)
        kept = []
        for piece in pieces:
            if NATIVE_NOISE.match(piece):
                log.debug("%s", piece)
            else:
                kept.append(piece)
        out = "".join(kept)
        if out.strip("\r\x1b[K \t"):
            sys.stderr.write(out + "\n")
    sys.stderr.flush()
