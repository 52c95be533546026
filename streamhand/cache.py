"""Where streamhand keeps what it can remake: ``$STREAMHAND_CACHE``, else ``$XDG_CACHE_HOME/streamhand``, else
``~/.cache/streamhand`` (demo clips, ONNX exports, converted hand networks, crash logs). Every part of it may be
deleted at any time: what a run needs is made again."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (not made here), or ``parts`` under it."""
    base = os.environ.get("STREAMHAND_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "streamhand"
    )
    return Path(base, *parts)


def _bytes_under(path: str) -> int:
    """The bytes of the files under ``path`` (links not followed; what cannot be read counts nothing)."""
    total = 0
    try:
        with os.scandir(path) as entries:
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        total += _bytes_under(e.path)
                    else:
                        total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    except OSError:
        pass
    return total


def cache_usage() -> dict[str, int]:
    """The bytes the cache holds by part, largest first: each folder in it as ``"name/"``, the demo clips together as
    ``"demo clips"``, any other file as its name. Empty where the cache is not there (or cannot be read)."""
    parts: dict[str, int] = {}
    try:
        entries = list(os.scandir(cache_dir()))
    except OSError:
        return {}
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                key, size = f"{e.name}/", _bytes_under(e.path)
            else:
                key = "demo clips" if e.name.startswith("demo-") else e.name
                size = e.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        parts[key] = parts.get(key, 0) + size
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))
