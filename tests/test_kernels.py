"""The kernel API itself: every backend exposes exactly the kernels of fastnn.kernels.KERNELS.

Numerical behaviour is tested in test_kernels_loss.py, test_kernels_dense.py and
test_kernels_optim.py.
"""

import importlib
import inspect

import pytest

import fastnn.kernels as fk
from fastnn.kernels import KERNELS

from conftest import COMPILED_NAMES, _load_backend

ALL_KERNEL_NAMES = {name for names in KERNELS.values() for name in names}


def _public_functions(module):
    """Public callables defined in ``module`` itself (numba dispatchers, Cython functions,
    plain functions); imported helpers, classes, submodules and constants are left out."""
    names = set()
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj) or inspect.isclass(obj):
            continue
        if callable(obj) and getattr(obj, "__module__", None) == module.__name__:
            names.add(name)
    return names


def test_reference_defines_exactly_the_kernels(reference):
    assert _public_functions(reference) == ALL_KERNEL_NAMES


def test_kernels_table_has_no_duplicates():
    flat = [name for names in KERNELS.values() for name in names]
    assert len(flat) == len(set(flat))


def test_activation_codes_are_distinct_and_named():
    codes = [fk.IDENTITY, fk.LOGISTIC, fk.TANH, fk.RELU, fk.LEAKY_RELU, fk.SOFTMAX]
    assert len(set(codes)) == len(codes)
    assert sorted(fk.ACTIVATIONS.values()) == sorted(codes)


def test_backend_package_exposes_every_kernel(kernels):
    missing = sorted(name for name in ALL_KERNEL_NAMES if not callable(getattr(kernels, name, None)))
    assert missing == [], f"{kernels.__name__} lacks {missing}"
    if hasattr(kernels, "__all__"):
        assert set(kernels.__all__) >= ALL_KERNEL_NAMES


@pytest.mark.parametrize("group", sorted(KERNELS))
@pytest.mark.parametrize("compiled", COMPILED_NAMES)
def test_backend_module_defines_exactly_its_kernels(compiled, group):
    """kernels/<backend>/<group> defines the kernels of KERNELS[group] and no other public
    function (helpers are private); the reference is one module and is checked above."""
    kernels = _load_backend(compiled)
    module = importlib.import_module(f"{kernels.__name__}.{group}")
    assert _public_functions(module) == set(KERNELS[group])
    # the package re-exports these very objects
    for name in KERNELS[group]:
        assert getattr(kernels, name) is getattr(module, name)


def test_kernel_signatures_match_reference(kernels, reference):
    """Same parameter names in the same order (where the backend exposes a signature)."""
    for name in sorted(ALL_KERNEL_NAMES):
        fn = getattr(kernels, name)
        fn = getattr(fn, "py_func", fn)  # numba dispatcher -> the Python function
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue  # a builtin without a signature (Cython binding=False)
        assert list(sig.parameters) == list(inspect.signature(getattr(reference, name)).parameters), name


def test_cython_activation_codes_equal_fastnn_kernels():
    """The .pxd enum (exposed as fastnn.kernels.cython.dense.ACTIVATION_CODES) must agree
    with fastnn.kernels, or every Cython activation would silently be the wrong one."""
    try:
        dense = importlib.import_module("fastnn.kernels.cython.dense")
    except ImportError as exc:
        pytest.skip(f"cython backend not built/importable: {exc}")
    codes = getattr(dense, "ACTIVATION_CODES", None)
    assert codes is not None, "fastnn.kernels.cython.dense exposes no ACTIVATION_CODES"
    assert dict(codes) == fk.ACTIVATIONS
    train = importlib.import_module("fastnn.kernels.cython.train")
    assert dict(train.LOSS_CODES) == fk.LOSSES
    assert dict(train.OPTIMIZER_CODES) == fk.OPTIMIZERS


def test_cython_table_columns_and_config_slots_equal_fastnn_kernels():
    """The Cython enums of the layer table's columns and of train_epoch's config slots
    must agree with fastnn.kernels.layout and fastnn.kernels: the compiled epoch reads
    offsets by these numbers."""
    from fastnn.kernels import layout

    try:
        train = importlib.import_module("fastnn.kernels.cython.train")
    except ImportError as exc:
        pytest.skip(f"cython backend not built/importable: {exc}")
    expected = {name: getattr(layout, name) for name in layout.COLUMNS}
    expected.update(N_COLUMNS=layout.N_COLUMNS, DENSE=layout.DENSE)
    assert dict(train.TABLE_COLUMNS) == expected
    slots = {name: getattr(fk, name) for name in fk.CONFIG}
    assert dict(train.CONFIG_SLOTS) == {**slots, "N_CONFIG": fk.N_CONFIG}
