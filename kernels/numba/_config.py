"""The one place for Numba compilation flags used by every kernel in this package, the
argument-type check of the public kernels, and the one line announcing a cold compile of
the training kernels.

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

``kernel`` (the public kernels; helpers use ``jit``): a dispatcher that checks argument
types against ``fastnn.kernels._checks`` whenever it compiles or loads a signature, from
a Python call or from another kernel being compiled. A bad dtype, rank, layout or
writeability then raises the ValueError or TypeError the other implementations raise,
naming the argument, instead of Numba's TypingError (or a compiled variant that accepts
it). Only signatures that pass are ever compiled, so a call whose types are compiled
already (every call of a fit after the first) is dispatched by Numba's C code as before,
at no cost: the check runs once per signature, not per call.

A cold compile of the training kernels takes 15-25 s per dtype on 2 cores, silently.
``CompileNotice`` prints one line on stderr when it starts. It listens to Numba's
``"numba:compile"`` event, which Numba broadcasts only for a real compilation: after the
in-memory overloads and the on-disk cache both missed (``Dispatcher.compile``), so loads
from the cache stay silent without fastnn guessing at cache files.
"""

import functools
import sys

import numba
from numba.core import event, types
from numba.core.registry import CPUDispatcher
from numba.np.numpy_support import as_dtype

from .. import _checks

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")


_PYTHON_NAMES = ((types.NoneType, "NoneType"), (types.UnicodeType, "str"),
                 ((types.List, types.ListType), "list"), (types.BaseTuple, "tuple"))


def _describe(numba_type):
    """The numba type of an argument described as _checks.describe describes values."""
    if isinstance(numba_type, types.Omitted):
        return None  # a default left out
    if isinstance(numba_type, types.Array):
        try:
            dtype = as_dtype(numba_type.dtype)
        except NotImplementedError:
            return str(numba_type)
        return _checks.Array(dtype, numba_type.ndim, numba_type.layout == "C",
                             numba_type.mutable)
    if isinstance(numba_type, (types.Integer, types.Boolean)):  # Python bools: Boolean
        return _checks.INTEGER
    if isinstance(numba_type, types.Float):
        return _checks.FLOAT
    for kind, name in _PYTHON_NAMES:  # as type(value).__name__ names them
        if isinstance(numba_type, kind):
            return name
    return str(numba_type)


class CheckedDispatcher(CPUDispatcher):
    """A kernel's dispatcher that compiles (or loads from the cache) only signatures whose
    argument types pass fastnn.kernels._checks."""

    def compile(self, sig):
        if isinstance(sig, tuple):  # argument types (Python calls, calls from kernels)
            _checks.check_described(self.py_func.__name__, [_describe(t) for t in sig])
        return super().compile(sig)


def kernel(func):
    """``jit`` for a public kernel, with its argument types checked (CheckedDispatcher)."""
    dispatcher = jit(func)
    if not isinstance(dispatcher, CPUDispatcher):  # NUMBA_DISABLE_JIT=1: func itself
        return _checks.checked(func)
    dispatcher.__class__ = CheckedDispatcher  # the same dispatcher, same options and cache
    return dispatcher

# train.py's entry points -> (what the line calls them, a cold compile's duration on 2
# cores, measured with an empty NUMBA_CACHE_DIR). train_epoch and forward_backward pull in
# every dense, loss and optimizer kernel; forward only the dense ones.
TRAINING, PREDICTION = "training kernels", "prediction kernel"
ANNOUNCED_KERNELS = {
    "train_epoch": (TRAINING, "about 15-25 s"),
    "forward_backward": (TRAINING, "about 15-25 s"),
    "forward": (PREDICTION, "about 5 s"),
}
# Announcing the training kernels covers forward too: compiled after them it reuses their
# compiled callees and takes about a second.
_COVERS = {TRAINING: (TRAINING, PREDICTION), PREDICTION: (PREDICTION,)}


class CompileNotice(event.Listener):
    """Prints ``fastnn: compiling the numba training kernels for float64 (...)`` on stderr
    when a train.py entry point starts compiling; once per process, kind and dtype (the
    dtype of the first argument, X).

    Numba holds its global compiler lock while broadcasting the event, so calls are
    serialised even when several threads fit at once.
    """

    module = __name__.rpartition(".")[0] + ".train"

    def __init__(self):
        self.announced = set()  # (kind, dtype name)

    def on_start(self, ev):
        dispatcher = ev.data["dispatcher"]
        py_func = getattr(dispatcher, "py_func", None)
        if getattr(py_func, "__module__", None) != self.module:
            return
        entry = ANNOUNCED_KERNELS.get(py_func.__name__)
        args = ev.data["args"]
        dtype = getattr(args[0], "dtype", None) if args else None
        if entry is None or dtype is None:
            return  # a helper compiled inside an entry point, already announced
        kind, duration = entry
        if (kind, str(dtype)) in self.announced:
            return
        self.announced.update((k, str(dtype)) for k in _COVERS[kind])
        cache_path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
        where = (f"cached afterwards in {cache_path}" if cache_path
                 else "not cached: numba's on-disk cache is off")
        line = f"fastnn: compiling the numba {kind} for {dtype} ({duration} on first use; {where})"
        if sys.stderr is not None:
            print(line, file=sys.stderr, flush=True)

    def on_end(self, ev):
        pass


notice = CompileNotice()
event.register("numba:compile", notice)
