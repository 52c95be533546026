"""Compiling the per-frame arithmetic: :func:`njit` turns a function of arrays and scalars, written as plain loops,
into machine code with numba (compiled on its first call, cached on disk beside the module, so a later process
loads it in well under a second). The keypoint encodings, the placement and the error model run once a frame on a
few hands: as numpy they are a few hundred tiny calls, each paying numpy's dispatch, and a pipeline stage that
wakes once a frame pays it again with cold caches; compiled they are one call each. Where numba cannot be imported
(a platform without its wheels), the same functions run as plain Python: the same answers, slower (``COMPILED``
says which; on a 2-core CPU the demo's infer and place + publish stages took 1.9 and 7.9 ms a frame that way,
against 1.2 and 0.7 compiled)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba

    #: whether the functions below run compiled (numba imported, and not switched off by ``NUMBA_DISABLE_JIT=1``)
    COMPILED = not numba.config.DISABLE_JIT
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a platform without its wheels working
    numba = None
    COMPILED = False
    log.warning("numba is not installed: the per-frame arithmetic runs as plain Python (slower)")


#: the functions compiled without a disk cache, in every process anew: numba found no folder it may write to
UNCACHED: list[str] = []
#: the functions whose disk cache failed in this process (a damaged file, a full disk), each with why: compiled in
#: memory instead, as in :data:`UNCACHED`
NOT_KEPT: dict[str, str] = {}
_WARNED: set[str] = set()  # the folders (or "write") already warned of in this process


class _SafeCache:
    """numba's disk cache of one compiled function, where the cache failing does not fail the call. numba reads its
    files with ``pickle`` and lets every error through: a truncated ``.nbi``/``.nbc`` (a disk that filled, a copy cut
    short) raised ``UnpicklingError`` on every run, and a full disk raised ``OSError`` [Errno 28] when it saved. Here
    either stops this function's cache for the process (compiled in memory) with one warning, naming the folder to
    delete where its files are damaged. Only loading and saving pass through here: no cost once compiled."""

    def __init__(self, cache: Any, name: str) -> None:
        self._cache, self._name = cache, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._cache, attr)

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        """The cached machine code for ``sig``, or None (compile it): also where the cache cannot be read."""
        try:
            return self._cache.load_overload(sig, target_context)
        except Exception as e:  # any error reading a cache file: it is damaged
            self._give_up(e, damaged=not isinstance(e, OSError))
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        """Keep the machine code for ``sig`` on disk, where it can be."""
        try:
            self._cache.save_overload(sig, data)
        except Exception as e:  # a full disk, or an index file damaged since it was read
            self._give_up(e, damaged=not isinstance(e, OSError))

    def _give_up(self, e: Exception, damaged: bool) -> None:
        self._cache.disable()
        folder = str(self._cache.cache_path)
        cause = f"{type(e).__name__}: {e}"
        if damaged:
            NOT_KEPT[self._name] = f"numba's cache in {folder} is damaged ({cause}): delete that folder"
            warned = folder
            said = (f"numba's cache in {folder} is damaged ({cause}): the per-frame arithmetic is compiled in memory, "
                    f"in every process, until that folder is deleted (it is rebuilt): rm -rf '{folder}'")  # fmt: skip
        else:
            NOT_KEPT[self._name] = f"numba's cache in {folder} cannot be written ({cause})"
            warned = "write"  # a full disk fails every folder on it: said once
            said = (f"numba's cache in {folder} cannot be written or read ({cause}): the per-frame arithmetic is "
                    "compiled in memory, tens of seconds before its first frame, until there is room (or set "
                    "NUMBA_CACHE_DIR to another folder)")  # fmt: skip
        if warned not in _WARNED:
            _WARNED.add(warned)
            log.warning("%s", said)


def njit(fn: F) -> F:
    """``fn`` compiled (no Python objects inside; releases the GIL; cached on disk), or ``fn`` itself without
    numba. The plain function stays reachable as ``fn.py_func`` either way. Where neither the package's folder nor
    the user's cache folder can be written (a read-only install and home, as in some containers) and
    ``NUMBA_CACHE_DIR`` names no writable one, it is compiled without a cache, in every process (:data:`UNCACHED`);
    where the cache's files are damaged or the disk is full, the same (:class:`_SafeCache`, :data:`NOT_KEPT`)."""
    if numba is None:  # pragma: no cover
        fn.py_func = fn  # type: ignore[attr-defined]
        return fn
    try:
        compiled = numba.njit(cache=True, nogil=True)(fn)
        if COMPILED and hasattr(compiled, "_cache"):  # NUMBA_DISABLE_JIT=1 gives the plain function back; the
            compiled._cache = _SafeCache(compiled._cache, fn.__qualname__)  # dispatcher's cache: numba's own name
        return compiled
    except RuntimeError as e:  # numba's "cannot cache function ...: no locator available"
        if "no locator available" not in str(e):
            raise
        if not UNCACHED:
            log.warning("no writable folder for numba's cache (set NUMBA_CACHE_DIR to one): the per-frame arithmetic "
                        "is compiled afresh in every process, tens of seconds before its first frame")  # fmt: skip
        UNCACHED.append(fn.__qualname__)
        return numba.njit(nogil=True)(fn)


def carray(x: Any, dtype: Any = None) -> np.ndarray:
    """``x`` as the compiled functions take an array: C-ordered, writable, of ``dtype`` (``x``'s own where None); no
    copy where it already is one. numba compiles a function once for each kind of argument, and a read-only array is
    a kind of its own: a broadcast that needed no copy is read-only (one hand's intrinsics are, two hands' are not),
    so without this a run would compile again, mid-stream, the first time a second hand appeared."""
    return np.require(x, dtype, ("C", "W"))


def f64(x: Any) -> np.ndarray:
    """``x`` as a C-ordered, writable float64 array: what the compiled functions take (:func:`carray`)."""
    return carray(x, np.float64)


def cache_folder(fn: Any) -> str | None:
    """Where numba keeps the machine code of the compiled ``fn`` (None: not kept, compiled in every process)."""
    cache = getattr(fn, "_cache", None)  # a numba dispatcher's cache; a NullCache where caching is off
    path = getattr(cache, "cache_path", None)
    return str(path) if path else None
