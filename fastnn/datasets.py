"""Data sets fastnn reads from disk. fastnn downloads nothing.

>>> from fastnn.datasets import load_cifar10
>>> (X_train, y_train), (X_test, y_test) = load_cifar10("~/data")  # doctest: +SKIP
>>> X_train.shape, X_train.dtype, y_train[:3]                      # doctest: +SKIP
((50000, 3, 32, 32), dtype('float32'), array([6, 9, 9]))
"""

import pickle
from pathlib import Path

import numpy as np

__all__ = ["load_cifar10"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST = "test_batch"


def load_cifar10(path):
    """CIFAR-10 from its Python batches: ``((X_train, y_train), (X_test, y_test))``.

    ``path`` is the folder ``cifar-10-batches-py`` (the tarball at CIFAR10_URL, unpacked)
    or the folder that holds it. X is (n, 3, 32, 32) float32 in [0, 1] (pixels / 255,
    C x H x W as PyTorch takes them), y int64 class indices (CIFAR10_CLASSES names them):
    50000 training images from ``data_batch_1`` .. ``data_batch_5``, 10000 test images
    from ``test_batch``.

    Raises FileNotFoundError naming the missing files and where the data comes from
    (fastnn downloads nothing), ValueError for a batch that is not in CIFAR-10's format.
    """
    folder = Path(path).expanduser()
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    missing = [name for name in _TRAIN + (_TEST,) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 is not in {folder}: {', '.join(missing)} missing. fastnn downloads "
            f"nothing; get the Python version from {CIFAR10_URL} (163 MB), unpack it (tar "
            "xzf) and pass the folder that holds cifar-10-batches-py")
    train = [_batch(folder / name) for name in _TRAIN]
    return ((np.concatenate([X for X, _ in train]), np.concatenate([y for _, y in train])),
            _batch(folder / _TEST))


def _batch(file):
    """One batch: a pickled dict with b"data" (n, 3072) uint8 (1024 red, 1024 green,
    1024 blue values per image, rows of 32) and b"labels" (n ints in 0..9)."""
    with open(file, "rb") as f:
        try:
            batch = pickle.load(f, encoding="bytes")
        except Exception as exc:  # a truncated or foreign file: say which
            raise ValueError(f"{file} is not a CIFAR-10 Python batch: {exc}") from exc
    if not (isinstance(batch, dict) and b"data" in batch and b"labels" in batch):
        raise ValueError(f"{file} is not a CIFAR-10 Python batch (no b'data' and b'labels')")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or (
            len(labels) != len(data)) or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise ValueError(f"{file}: expected data (n, 3072) uint8 and n labels in 0..9, got "
                         f"data {data.shape} {data.dtype} and {labels.shape} labels")
    X = (data.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255.0))
    return X, labels
