"""Data shipped inside the package (no network needed)."""
import os

import numpy as np

_DATA = os.path.join(os.path.dirname(__file__), "data")


def load_digits(scale=True):
    """The 1797 8x8 handwritten digits (UCI optdigits test part, CC BY 4.0; see
    data/LICENSE-digits.txt). Returns X (1797, 64) float64 (divided by 16 when scale=True,
    else 0-16) and y (1797,) int64 in 0..9."""
    with np.load(os.path.join(_DATA, "digits.npz")) as f:
        X, y = f["X"].astype(np.float64), f["y"].astype(np.int64)
    return (X / 16.0 if scale else X), y


def train_test_split(X, y, test_size=0.25, seed=0, stratify=True):
    """A reproducible split; stratified by class when `stratify` (y holds class labels)."""
    X, y = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    if stratify:
        test = []
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            test.extend(idx[:int(round(test_size * len(idx)))])
        test = np.sort(np.array(test, dtype=np.int64))
    else:
        test = np.sort(rng.permutation(len(y))[:int(round(test_size * len(y)))])
    mask = np.ones(len(y), bool)
    mask[test] = False
    return X[mask], X[test], y[mask], y[test]


def load_idx(path):
    """An array from an IDX file (the MNIST format), gzip-compressed or not. Checks the header
    and the size, so a truncated or foreign file raises ValueError."""
    import gzip

    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[data[2]])
    offset = 4 + 4 * ndim
    if len(data) != offset + int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: size does not match its IDX header {shape} (truncated file?)")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def load_mnist(directory, kind="train"):
    """MNIST from the four standard IDX files in `directory` (.gz or not): X (n, 784) float32
    scaled to [0, 1] and y (n,) int64. kind is "train" (60,000) or "test" (10,000)."""
    import os

    prefix = {"train": "train", "test": "t10k"}.get(kind)
    if prefix is None:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")

    def find(name):
        for candidate in (name + ".gz", name):
            path = os.path.join(directory, candidate)
            if os.path.exists(path):
                return path
        raise FileNotFoundError(f"{name}[.gz] not found in {directory}")

    images = load_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = load_idx(find(f"{prefix}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise ValueError("MNIST images and labels differ in count")
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.int64)
