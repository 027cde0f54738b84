"""Compiled loops for the decoders whose work is one step per word or per run (EVT 3.0, RVL).

A stream format that is a state machine over its words reads best, and runs fastest, as one
loop over the words. numba compiles such a loop to machine code (the ``[ros]`` extra installs
it; on a ROS install, ``pip install numba`` or Debian's ``python3-numba``). Without numba the
very same function runs as plain Python: the outputs are identical, but about a hundred times
slower, so :data:`COMPILED` is reported in the node's start log.

Compiled functions are cached next to this package (``__pycache__``), so only the first run
on a machine pays the compile time (about a second per loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

F = TypeVar("F", bound=Callable)

try:
    from numba import njit as _njit

    COMPILED = True
except ImportError:
    _njit = None
    COMPILED = False


def kernel(fn: F) -> F:
    """Compile ``fn`` with numba (no Python objects inside, GIL released) when it is installed.

    The uncompiled function stays reachable as ``fn.py_func`` either way, so tests can check
    that both give the same answer."""
    if _njit is None:
        fn.py_func = fn  # type: ignore[attr-defined]
        return fn
    return _njit(cache=True, nogil=True)(fn)


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: numba compiles one version per argument type, writable or not,
    so a kernel's input is always passed read-only (bytes and array.array alike)."""
    v = a.view()
    v.flags.writeable = False
    return v
