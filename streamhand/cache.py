"""Where streamhand keeps what it can remake: ``$STREAMHAND_CACHE``, else ``$XDG_CACHE_HOME/streamhand``, else
``~/.cache/streamhand`` (demo clips, ONNX exports, converted hand networks)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    base = os.environ.get("STREAMHAND_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "streamhand"
    )
    return Path(base, *parts)
