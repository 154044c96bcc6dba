"""Where the offline datasets live: $FASTMLP_DATA, else ../shared/data beside the repository."""
import os
from pathlib import Path

import numpy as np
import pytest

DATA = Path(os.environ.get("FASTMLP_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def require(relative):
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"dataset {path} is not present (set FASTMLP_DATA to the shared/data folder)")
    return path


def load_npz(relative):
    with np.load(require(relative), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
