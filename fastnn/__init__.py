"""fastnn: multilayer perceptrons trained on the CPU with compiled hot loops.

``fastnn.functional`` and ``fastnn.optim`` expose the kernels with PyTorch's names and
semantics; ``available_backends()`` lists the kernel implementations that work here.
"""

from ._backends import available_backends

__all__ = ["available_backends"]
__version__ = "0.1.0"
