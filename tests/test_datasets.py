"""fastnn.datasets.load_cifar10 on small files written in CIFAR-10's Python format."""

import pickle

import numpy as np
import pytest

from fastnn.datasets import CIFAR10_URL, load_cifar10


def _write(folder, sizes=(3, 2, 2, 1, 2, 4), seed=0):
    """data_batch_1..5 and test_batch with the given numbers of images; returns them."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    batches = []
    for name, n in zip([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], sizes):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n}, f)
        batches.append((data, labels))
    return batches


def test_reads_every_batch_in_order(tmp_path):
    batches = _write(tmp_path / "cifar-10-batches-py")
    for path in (tmp_path, tmp_path / "cifar-10-batches-py"):  # the folder or its parent
        (X, y), (X_test, y_test) = load_cifar10(path)
        assert X.shape == (10, 3, 32, 32) and X.dtype == np.float32
        assert X_test.shape == (4, 3, 32, 32) and y.dtype == np.int64
        np.testing.assert_array_equal(y, sum((labels for _, labels in batches[:5]), []))
        np.testing.assert_array_equal(y_test, batches[5][1])
        data = batches[1][0]  # image 3 is the first of data_batch_2
        # channel c, row r, column k is value c * 1024 + r * 32 + k of the row
        for c, r, k in ((0, 0, 0), (1, 5, 7), (2, 31, 31)):
            assert X[3, c, r, k] == np.float32(data[0, c * 1024 + r * 32 + k]) / np.float32(255)
        assert 0.0 <= X.min() and X.max() <= 1.0


def test_missing_files_say_where_the_data_comes_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="downloads nothing") as info:
        load_cifar10(tmp_path)
    assert CIFAR10_URL in str(info.value) and "data_batch_1" in str(info.value)
    _write(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch missing"):
        load_cifar10(tmp_path)


def test_malformed_batches_are_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write(folder)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 Python batch"):
        load_cifar10(folder)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"data_batch_3: expected data \(n, 3072\)"):
        load_cifar10(folder)
