"""The one place for Numba compilation flags used by every kernel in this package.

- ``cache=True``: compiled machine code is written next to the sources (``__pycache__``,
  or ``NUMBA_CACHE_DIR``) and reloaded by later processes instead of recompiled. A cache
  entry is invalidated only by a change to its own source file: train.py's entries hold
  compiled copies of the dense/loss/optim kernels it calls and go stale when those change.
  After editing a kernel, clear ``kernels/numba/__pycache__`` (or use a fresh
  ``NUMBA_CACHE_DIR``) before testing.
- ``nogil=True``: kernels release the GIL, so threads (joblib) can run them in parallel.
- ``error_model="numpy"``: float division by zero gives inf/nan as in NumPy (the reference)
  instead of raising ZeroDivisionError; it also lets LLVM vectorise loops with divisions.
- No ``fastmath``: it may assume no NaN/inf and drop the ``> 0`` / ``== 0`` guards.
- No ``parallel``; no eager signatures (they would compile at import). Signatures are
  compiled lazily, one per combination of dtype and read-only flags actually used.
"""

import functools

import numba

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
