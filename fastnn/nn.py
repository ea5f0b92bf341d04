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

The layers: Linear, Conv2d, MaxPool2d, the activations (each fuses into the layer
before it), Dropout (after a Linear) and Flatten (free: a sample is C x H x W in memory,
as in PyTorch). Parameters move to and from PyTorch's ``state_dict`` layout as NumPy
arrays (:func:`state_dict`, :func:`load_state_dict`): ``"0.weight"`` (out_features,
in_features) or (out_channels, in_channels, kh, kw), ``"0.bias"`` (out,), named by the
layer's index in the Sequential, so a model can be checked against PyTorch, or moved
from it, without torch being a dependency.

>>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
...                     nn.Flatten(), nn.Linear(64, 10))
>>> print(net.summary((1, 8, 8)))
     module                                                                      output  params
(0)  Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))              4x8x8      40
(1)  ReLU()                                                                       4x8x8       0
(2)  MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)   4x4x4       0
(3)  Flatten(start_dim=1, end_dim=-1)                                                64       0
(4)  Linear(in_features=64, out_features=10, bias=True)                              10     650
input 1x8x8, 690 parameters
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from . import kernels as _k
from .kernels import layout

__all__ = ["Module", "Sequential", "Linear", "Conv2d", "MaxPool2d", "ReLU", "LeakyReLU", "Tanh", "Sigmoid",
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


def _pair(owner, name, value, least):
    """An int or a pair of ints, as PyTorch takes kernel_size, stride and padding."""
    pair = (value, value) if isinstance(value, Integral) else value
    if (not isinstance(pair, tuple) or len(pair) != 2
            or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= least
                       for v in pair)):
        raise ValueError(f"{type(owner).__name__}: {name} must be an integer >= {least} or "
                         f"a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _only_default(owner, **given):
    defaults = {"dilation": 1, "groups": 1, "padding_mode": "zeros", "return_indices": False,
                "ceil_mode": False}
    for name, value in given.items():
        if value != defaults[name] and not (name == "dilation" and value == (1, 1)):
            raise ValueError(f"{type(owner).__name__}: {name}={value!r} is not supported "
                             f"(only {defaults[name]!r})")


@dataclass(frozen=True, repr=False)
class Conv2d(Module):
    """y[f] = b[f] + sum_c W[f, c] (x) x[c]: 2-D cross-correlation with zero padding and
    stride, as PyTorch's Conv2d; W (out_channels, in_channels, kh, kw). ``kernel_size``,
    ``stride`` and ``padding`` are an int or an (h, w) pair."""

    in_channels: int
    out_channels: int
    kernel_size: tuple
    stride: tuple = 1
    padding: tuple = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"

    def __post_init__(self):
        _check_int(self, "in_channels", self.in_channels)
        _check_int(self, "out_channels", self.out_channels)
        for name, least in (("kernel_size", 1), ("stride", 1), ("padding", 0)):
            object.__setattr__(self, name, _pair(self, name, getattr(self, name), least))
        _only_default(self, dilation=self.dilation, groups=self.groups,
                      padding_mode=self.padding_mode)
        if self.bias is not True:
            raise ValueError("Conv2d(bias=False) is not supported: every fastnn layer has a "
                             "bias")

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size="
                f"{self.kernel_size}, stride={self.stride}"
                + (f", padding={self.padding}" if self.padding != (0, 0) else "") + ")")


@dataclass(frozen=True, repr=False)
class MaxPool2d(Module):
    """y[c, i, j] = the maximum of x[c] over the window at (i stride, j stride), floor
    mode, padding with -inf, as PyTorch's MaxPool2d (ties: the first maximum, row by
    row; NaN wins). ``stride`` defaults to ``kernel_size``."""

    kernel_size: tuple
    stride: tuple = None
    padding: tuple = 0
    dilation: int = 1
    return_indices: bool = False
    ceil_mode: bool = False

    def __post_init__(self):
        given = self.kernel_size, self.stride, self.padding
        object.__setattr__(self, "_given", given)  # PyTorch prints them as given
        object.__setattr__(self, "kernel_size", _pair(self, "kernel_size", self.kernel_size, 1))
        stride = self.kernel_size if self.stride is None else self.stride
        object.__setattr__(self, "stride", _pair(self, "stride", stride, 1))
        object.__setattr__(self, "padding", _pair(self, "padding", self.padding, 0))
        _only_default(self, dilation=self.dilation, return_indices=self.return_indices,
                      ceil_mode=self.ceil_mode)
        if 2 * self.padding[0] > self.kernel_size[0] or 2 * self.padding[1] > self.kernel_size[1]:
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half the "
                             f"kernel size {self.kernel_size}")

    def __repr__(self):
        k, s, p = self._given
        return (f"MaxPool2d(kernel_size={k}, stride={k if s is None else s}, padding={p}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode})")


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
    (2, 23)
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
        """[(the module index of each Linear, Conv2d and MaxPool2d, its layout spec)],
        the output shape, and the shape after every module; ValueError naming the first
        module that does not fit."""
        shape = _shape(input_shape)
        specs, shapes = [], []
        state = None  # what the last layer has fused: None, "act" or "drop"
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
            elif isinstance(m, (Conv2d, MaxPool2d)):
                if len(shape) != 3:
                    raise ValueError(f"{where} needs (C, H, W) inputs, but its input has "
                                     f"shape {shape}")
                if isinstance(m, Conv2d) and shape[0] != m.in_channels:
                    raise ValueError(f"{where} takes {m.in_channels} channels, but its "
                                     f"input has shape {shape}")
                for side in (0, 1):
                    if m.kernel_size[side] > shape[1 + side] + 2 * m.padding[side]:
                        raise ValueError(f"{where}: its kernel {m.kernel_size} is larger "
                                         f"than its input {shape[1:]} with padding "
                                         f"{m.padding}")
                spec = (layout.Conv2d(shape, m.out_channels, m.kernel_size, m.stride,
                                      m.padding) if isinstance(m, Conv2d) else
                        layout.MaxPool2d(shape, m.kernel_size, m.stride, m.padding))
                specs.append((i, spec))
                shape = _window_output(shape, m)
                state = None
            elif isinstance(m, _Activation):
                if not specs or isinstance(self._modules[i - 1], Flatten):
                    raise ValueError(f"{where} must follow a Linear, Conv2d or MaxPool2d: "
                                     "fastnn applies each activation in the pass of the "
                                     "layer before it")
                j, d = specs[-1]
                if state == "act":
                    raise ValueError(f"{where} follows another activation of the same "
                                     "layer; fastnn fuses one activation per layer")
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
                if not isinstance(specs[-1][1], layout.Dense):
                    raise ValueError(f"{where} after {self._modules[specs[-1][0]]!r}: "
                                     "dropout is supported after Linear layers only")
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
        for (i, d), (_, after) in zip(specs, specs[1:]):
            if isinstance(d, layout.Dense) and d.dropout and not isinstance(after, layout.Dense):
                raise ValueError(f"the Dropout after module {i}: dropout is supported "
                                 "before Linear layers only")
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
        table = layout.build_table([d for _, d in specs])
        params = {i: int(r[layout.W_LEN] + r[layout.B_LEN]) for (i, _), r in zip(specs, table)}
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
        """The module index of each table row (Linear, Conv2d, MaxPool2d): the names of
        its state_dict entries."""
        return [i for i, _ in self._specs(input_shape)[0]]


def _window_output(shape, m):
    """(C, H, W) after a Conv2d or MaxPool2d: (H + 2 padding - kernel) // stride + 1."""
    c = m.out_channels if isinstance(m, Conv2d) else shape[0]
    return (c,) + tuple((shape[1 + s] + 2 * m.padding[s] - m.kernel_size[s]) // m.stride[s] + 1
                        for s in (0, 1))


def _shape(input_shape):
    shape = (input_shape,) if isinstance(input_shape, Integral) else tuple(input_shape)
    if not shape or not all(isinstance(s, Integral) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (features,) or (C, H, W) of integers >= 1, "
                         f"got {input_shape!r}")
    return tuple(int(s) for s in shape)


def init_params(table, random_state, dtype):
    """PyTorch's default initialisation of every Linear and Conv2d: weights
    kaiming-uniform with a = sqrt(5), i.e. uniform in +-1/sqrt(fan_in) (fan_in =
    in_features, or in_channels * kh * kw), and biases uniform in +-1/sqrt(fan_in); drawn
    from ``random_state`` (a np.random.RandomState) layer by layer, the weights in
    PyTorch's order ((out, in) or (out, in, kh, kw)), then the bias."""
    flat = np.empty(layout.n_params(table), dtype=dtype)
    for row, W, b in zip(table, *layout.unflatten(flat, table)):
        if not b.size:
            continue  # a pool layer
        torch_W = _torch_view(row, W)
        bound = 1.0 / np.sqrt(torch_W[0].size)
        torch_W[...] = random_state.uniform(-bound, bound, torch_W.shape)
        b[...] = random_state.uniform(-bound, bound, b.shape)
    return flat


def _torch_view(row, W):
    """W as PyTorch lays it out: a dense layer's transposed, a conv layer's as it is."""
    return W.T if row[layout.OP] == layout.DENSE else W


def state_dict(module, input_shape, params, table):
    """PyTorch's ``state_dict`` of the flat parameters: {"<i>.weight": (out, in) or (out,
    in, kh, kw), "<i>.bias": (out,)} for the Linear or Conv2d at index i (copies)."""
    out = {}
    for i, row, W, b in zip(module.linear_indices(input_shape), table,
                            *layout.unflatten(params, table)):
        if b.size:
            out[f"{i}.weight"] = _torch_view(row, W).copy()
            out[f"{i}.bias"] = b.copy()
    return out


def load_state_dict(module, input_shape, table, state, dtype):
    """The flat parameters of a PyTorch-layout ``state`` (arrays, or anything
    ``np.asarray`` takes: torch tensors too); ValueError for a missing, extra or
    misshapen entry."""
    flat = np.empty(layout.n_params(table), dtype=dtype)
    expected = set()
    for i, row, W, b in zip(module.linear_indices(input_shape), table,
                            *layout.unflatten(flat, table)):
        if not b.size:
            continue
        for name, target in ((f"{i}.weight", _torch_view(row, W)), (f"{i}.bias", b)):
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
