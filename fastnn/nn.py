"""fastnn.nn: networks written as in PyTorch, as data.

Layer specs with ``torch.nn``'s names, arguments, defaults and reprs. They hold no
weights and no autograd: :meth:`Sequential.table` turns a network, for an input shape,
into the layer table (``fastnn.kernels.layout``) the compiled kernels run, fusing each
activation, and then a Dropout, into the Linear before it (the kernels apply them in
that layer's pass). ``fastnn.NeuralNetClassifier`` / ``NeuralNetRegressor`` train one.

>>> from fastnn import nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
>>> net
Sequential(
  (0): Linear(in_features=4, out_features=8, bias=True)
  (1): ReLU()
  (2): Dropout(p=0.2, inplace=False)
  (3): Linear(in_features=8, out_features=3, bias=True)
)

Today the layers are dense (Linear, the activations, Dropout, Flatten); Conv2d and
MaxPool2d come with the convolution kernels. Parameters move to and from PyTorch's
``state_dict`` layout as NumPy arrays (:func:`state_dict`, :func:`load_state_dict`):
``"0.weight"`` (out_features, in_features), ``"0.bias"`` (out_features,), named by the
Linear's index in the Sequential, so a model can be checked against PyTorch, or moved
from it, without torch being a dependency.
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from . import kernels as _k
from .kernels import layout

__all__ = ["Module", "Sequential", "Linear", "ReLU", "LeakyReLU", "Tanh", "Sigmoid",
           "Identity", "Dropout", "Flatten", "state_dict", "load_state_dict", "init_params"]


class Module:
    """A layer spec. Subclasses are frozen dataclasses: equal when their arguments are,
    and printed as PyTorch prints them."""


def _check_int(owner, name, value):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{type(owner).__name__}: {name} must be an integer >= 1, "
                         f"got {value!r}")


@dataclass(frozen=True)
class Linear(Module):
    """y = x @ W.T + b, W (out_features, in_features) as PyTorch stores it."""

    in_features: int
    out_features: int
    bias: bool = True

    def __post_init__(self):
        _check_int(self, "in_features", self.in_features)
        _check_int(self, "out_features", self.out_features)
        if self.bias is not True:
            raise ValueError("Linear(bias=False) is not supported: every fastnn layer has a "
                             "bias (leave it at 0 by not training it is not possible either)")


class _Activation(Module):
    code = _k.IDENTITY

    def __repr__(self):
        return f"{type(self).__name__}()"


@dataclass(frozen=True, repr=False)
class ReLU(_Activation):
    """max(x, 0)."""

    code = _k.RELU


@dataclass(frozen=True, repr=False)
class Tanh(_Activation):
    """tanh(x)."""

    code = _k.TANH


@dataclass(frozen=True, repr=False)
class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""

    code = _k.LOGISTIC


@dataclass(frozen=True, repr=False)
class Identity(_Activation):
    """x (a placeholder, as PyTorch's)."""

    code = _k.IDENTITY


@dataclass(frozen=True)
class LeakyReLU(_Activation):
    """x if x > 0 else negative_slope * x."""

    negative_slope: float = 0.01
    code = _k.LEAKY_RELU

    def __post_init__(self):
        if not isinstance(self.negative_slope, Real) or not self.negative_slope >= 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a number >= 0, got "
                             f"{self.negative_slope!r}")


@dataclass(frozen=True)
class Dropout(Module):
    """Inverted dropout in training: each unit zeroed with probability p, the kept ones
    scaled by 1 / (1 - p); the identity in prediction. ``inplace`` is accepted for
    PyTorch's signature and changes nothing."""

    p: float = 0.5
    inplace: bool = False

    def __post_init__(self):
        if not isinstance(self.p, Real) or isinstance(self.p, bool) or not 0 <= self.p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {self.p!r} (p = 1 would "
                             "drop every unit)")


@dataclass(frozen=True)
class Flatten(Module):
    """Every dimension but the batch's into one (PyTorch's default Flatten): a (C, H, W)
    sample becomes C * H * W features in C x H x W order, so it costs nothing."""

    start_dim: int = 1
    end_dim: int = -1

    def __post_init__(self):
        if (self.start_dim, self.end_dim) != (1, -1):
            raise ValueError("Flatten: only start_dim=1, end_dim=-1 (every dimension but "
                             f"the batch's) is supported, got {self!r}")


class Sequential(Module):
    """Modules applied in order, as ``torch.nn.Sequential``.

    Parameters
    ----------
    *modules : Module
        Linear layers, each followed by at most one activation (ReLU, LeakyReLU, Tanh,
        Sigmoid, Identity) and one Dropout, in PyTorch's order; an optional leading
        Flatten; the last module a Linear (the loss takes its raw outputs).

    Examples
    --------
    >>> from fastnn import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> print(net.summary((1, 8, 8)))
         module                                             output  params
    (0)  Flatten(start_dim=1, end_dim=-1)                       64       0
    (1)  Linear(in_features=64, out_features=32, bias=True)     32   2,080
    (2)  ReLU()                                                 32       0
    (3)  Linear(in_features=32, out_features=10, bias=True)     10     330
    input 1x8x8, 2,410 parameters
    >>> net.table((1, 8, 8)).shape  # one row per Linear: fastnn.kernels.layout
    (2, 17)
    """

    def __init__(self, *modules):
        for i, m in enumerate(modules):
            if not isinstance(m, Module) or isinstance(m, Sequential):
                raise TypeError(f"Sequential: module {i} is {m!r}, not a fastnn.nn layer "
                                "(Linear, ReLU, Dropout, ...)")
        self._modules = tuple(modules)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self._modules[i])
        return self._modules[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __eq__(self, other):
        return isinstance(other, Sequential) and self._modules == other._modules

    def __hash__(self):
        return hash(self._modules)

    def __repr__(self):
        if not self._modules:
            return "Sequential()"
        lines = [f"  ({i}): {m!r}" for i, m in enumerate(self._modules)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"

    # ------------------------------------------------------------------ to the table

    def _specs(self, input_shape):
        """[(the module index of the Linear, layout.Dense)], the output shape, and the
        shape after every module; ValueError naming the first module that does not fit."""
        shape = _shape(input_shape)
        specs, shapes = [], []
        state = None  # what the last Dense has fused: None, "act" or "drop"
        for i, m in enumerate(self._modules):
            where = f"module {i} ({m!r})"
            if isinstance(m, Flatten):
                shape = (int(np.prod(shape)),)
            elif isinstance(m, Linear):
                if len(shape) != 1:
                    raise ValueError(f"{where} needs flat inputs, but its input has shape "
                                     f"{shape}: add Flatten() before it")
                if shape[0] != m.in_features:
                    raise ValueError(f"{where} takes {m.in_features} features, but its input "
                                     f"has {shape[0]}")
                specs.append((i, layout.Dense(m.in_features, m.out_features, _k.IDENTITY)))
                shape, state = (m.out_features,), None
            elif isinstance(m, _Activation):
                if not specs or isinstance(self._modules[i - 1], Flatten):
                    raise ValueError(f"{where} must follow a Linear: fastnn applies each "
                                     "activation in the pass of the layer before it")
                j, d = specs[-1]
                if state == "act":
                    raise ValueError(f"{where} follows another activation of the same "
                                     "Linear; fastnn fuses one activation per layer")
                if state == "drop" and not isinstance(m, (ReLU, LeakyReLU, Identity)):
                    raise ValueError(f"{where} after Dropout: put the Dropout after the "
                                     "activation (only ReLU-like ones commute with it)")
                if m.code != _k.IDENTITY:
                    slope = m.negative_slope if isinstance(m, LeakyReLU) else 0.0
                    specs[-1] = (j, d._replace(activation=m.code, negative_slope=float(slope)))
                state = "act" if state is None else state
            elif isinstance(m, Dropout):
                if not specs or isinstance(self._modules[i - 1], Flatten):
                    raise ValueError(f"{where} must follow a Linear (or its activation): "
                                     "fastnn drops units in the pass of the layer before it")
                if state == "drop":
                    raise ValueError(f"{where} follows another Dropout of the same layer")
                j, d = specs[-1]
                specs[-1] = (j, d._replace(dropout=float(m.p)))
                state = "drop"
            else:
                raise ValueError(f"{where} is not supported yet")
            shapes.append(shape)
        if not specs:
            raise ValueError("the network has no Linear layer")
        last = self._modules[-1]
        if not isinstance(last, Linear):
            raise ValueError(f"the network ends with module {len(self) - 1} ({last!r}): the "
                             "last module must be a Linear, whose raw outputs the loss takes "
                             "(the estimators apply softmax, the logistic or nothing to them)")
        return specs, shape, shapes

    def table(self, input_shape):
        """The layer table of this network for samples of ``input_shape`` ((features,) or
        (C, H, W))."""
        specs, _, _ = self._specs(input_shape)
        return layout.build_table([d for _, d in specs])

    def output_shape(self, input_shape):
        return self._specs(input_shape)[1]

    def summary(self, input_shape):
        """Each module's output shape and parameter count, and the totals, as text."""
        specs, _, shapes = self._specs(input_shape)
        params = {i: d.n_in * d.n_out + d.n_out for i, d in specs}
        rows = [(f"({i})", repr(m), "x".join(map(str, s)), f"{params.get(i, 0):,}")
                for i, (m, s) in enumerate(zip(self._modules, shapes))]
        head = ("", "module", "output", "params")
        widths = [max(len(r[c]) for r in rows + [head]) for c in range(4)]
        fmt = "  ".join(f"{{:{'<' if c == 1 else '>'}{w}}}" for c, w in enumerate(widths))
        lines = [fmt.format(*head)] + [fmt.format(*r) for r in rows]
        total = sum(params.values())
        lines.append(f"input {'x'.join(map(str, _shape(input_shape)))}, "
                     f"{total:,} parameters")
        return "\n".join(lines)

    def linear_indices(self, input_shape):
        """The module index of each Linear: the names of its state_dict entries."""
        return [i for i, _ in self._specs(input_shape)[0]]


def _shape(input_shape):
    shape = (input_shape,) if isinstance(input_shape, Integral) else tuple(input_shape)
    if not shape or not all(isinstance(s, Integral) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (features,) or (C, H, W) of integers >= 1, "
                         f"got {input_shape!r}")
    return tuple(int(s) for s in shape)


def init_params(table, random_state, dtype):
    """PyTorch's default initialisation of every Linear: weights kaiming-uniform with
    a = sqrt(5), i.e. uniform in +-1/sqrt(fan_in), and biases uniform in +-1/sqrt(fan_in);
    drawn from ``random_state`` (a np.random.RandomState) layer by layer, the weights in
    PyTorch's (out, in) order, then the bias."""
    flat = np.empty(layout.n_params(table), dtype=dtype)
    for W, b in zip(*layout.unflatten(flat, table)):
        bound = 1.0 / np.sqrt(W.shape[0])
        W[...] = random_state.uniform(-bound, bound, W.shape[::-1]).T
        b[...] = random_state.uniform(-bound, bound, b.shape)
    return flat


def state_dict(module, input_shape, params, table):
    """PyTorch's ``state_dict`` of the flat parameters: {"<i>.weight": (out, in),
    "<i>.bias": (out,)} for the Linear at index i (copies)."""
    out = {}
    for i, W, b in zip(module.linear_indices(input_shape), *layout.unflatten(params, table)):
        out[f"{i}.weight"] = W.T.copy()
        out[f"{i}.bias"] = b.copy()
    return out


def load_state_dict(module, input_shape, table, state, dtype):
    """The flat parameters of a PyTorch-layout ``state`` (arrays, or anything
    ``np.asarray`` takes: torch tensors too); ValueError for a missing, extra or
    misshapen entry."""
    flat = np.empty(layout.n_params(table), dtype=dtype)
    expected = set()
    for i, W, b in zip(module.linear_indices(input_shape), *layout.unflatten(flat, table)):
        for name, target in ((f"{i}.weight", W.T), (f"{i}.bias", b)):
            expected.add(name)
            if name not in state:
                raise ValueError(f"state_dict has no {name!r}")
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {value.shape}, the "
                                 f"network's is {target.shape}")
            target[...] = value
    extra = sorted(set(state) - expected)
    if extra:
        raise ValueError(f"state_dict has entries the network does not: {extra}")
    return flat
