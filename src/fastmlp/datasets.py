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
