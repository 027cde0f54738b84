"""Compiled loops for the decoders whose work is one step per word or per nibble (EVT 3.0, RVL).

A stream format that is a state machine over its words reads best, and runs fastest, as one
loop over the words. numba compiles such a loop to machine code (a dependency of the package;
on a ROS install, ``pip install numba`` or Debian's ``python3-numba``). Without numba the very
same function runs as plain Python: the outputs are identical, but about a hundred times
slower, so /diagnostics says which (:func:`available`).

A loop is compiled on its first call, so a node that never decodes EVT 3.0 or RVL never loads
numba and LLVM (about 110 MB of resident memory beside torch, measured). The compiled code is
cached next to this package (``__pycache__``): only the first run on a machine pays the compile
time (about 3 s per loop); later ones load it (about 0.2 s).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np


@functools.cache
def available() -> bool:
    """Whether numba can be imported (imports it: call it only where a kernel will run)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


class kernel:  # noqa: N801 - used as a decorator
    """A loop over arrays and integers (no Python objects inside), compiled with numba on its
    first call (GIL released while it runs), or run as plain Python where numba is missing.
    A kernel must not call another kernel. ``py_func`` is the uncompiled function, so tests
    can check that both give the same answer."""

    def __init__(self, fn: Callable) -> None:
        self.py_func = fn
        self._run: Callable | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        if self._run is None:
            self._run = _compile(self.py_func) if available() else self.py_func
        return self._run(*args)


def _compile(fn: Callable) -> Callable:
    from numba import njit

    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache directory (a read-only install, no home)
        return njit(cache=False, nogil=True)(fn)


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: numba compiles one version per argument type, writable or not,
    so a kernel's input is always passed read-only (bytes and array.array alike)."""
    v = a.view()
    v.flags.writeable = False
    return v
